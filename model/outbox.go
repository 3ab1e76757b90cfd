package model

import "time"

// OutboxAction is the Apple call an outbox item asks for.
type OutboxAction string

const (
	OutboxAssociate    OutboxAction = "ASSOCIATE"
	OutboxDisassociate OutboxAction = "DISASSOCIATE"
	OutboxRevoke       OutboxAction = "REVOKE"
	OutboxCreateUser   OutboxAction = "CREATE_USER"
	OutboxUpdateUser   OutboxAction = "UPDATE_USER"
	OutboxRetireUser   OutboxAction = "RETIRE_USER"
)

// OutboxStatus is an outbox item's progress.
type OutboxStatus string

const (
	OutboxQueued OutboxStatus = "QUEUED" // waiting for the dispatcher
	OutboxSent   OutboxStatus = "SENT"   // Apple accepted it; EventID set, completion awaited
	OutboxDone   OutboxStatus = "DONE"
	OutboxFailed OutboxStatus = "FAILED" // Apple refused it; the intent is reported as failed
)

// OutboxItem is one unit of work for Apple, written in the same transaction as the intent that
// needs it (doc/design.md §2.1), so an accepted intent survives any crash (R14). The dispatcher packs queued
// items of an account into as few Apple requests as the current limits allow.
type OutboxItem struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	Action       OutboxAction
	AssignmentID *int64
	AppleUserID  *int64
	AdamID       string
	PricingParam string
	SerialNumber *string
	ClientUserID *string
	Status       OutboxStatus
	Attempts     int
	// NotBefore delays the next attempt (backoff after a transient failure).
	NotBefore   time.Time
	EventID     *string
	LastError   *string
	CreatedAt   time.Time
	SentAt      *time.Time
	CompletedAt *time.Time
}

// TableName keeps the outbox's table name singular, as it is a queue rather than a collection.
func (OutboxItem) TableName() string { return "apple_outbox" }

// EventStatus is Apple's state of an asynchronous event.
type EventStatus string

const (
	EventPending  EventStatus = "PENDING"
	EventComplete EventStatus = "COMPLETE"
	EventFailed   EventStatus = "FAILED"
)

// AppleEvent is an asynchronous Apple event (an eventId) that Orchard waits on, completed by
// status polling or an ASSET_MANAGEMENT / USER_MANAGEMENT notification, whichever comes first.
type AppleEvent struct {
	EventID      string `gorm:"primaryKey"`
	AccountID    int64
	Action       OutboxAction
	Status       EventStatus
	NumRequested int
	NumCompleted int
	// Failures is Apple's failures array as JSON.
	Failures    string
	SentAt      time.Time
	NextPollAt  time.Time
	PolledAt    *time.Time
	CompletedAt *time.Time
}

// AppleNotification remembers a notification id for de-duplication (Apple delivers duplicates).
type AppleNotification struct {
	NotificationID string `gorm:"primaryKey"`
	AccountID      int64
	Type           string
	ReceivedAt     time.Time
	// AppliedAt is set once the notification's changes are recorded.
	AppliedAt *time.Time
}
