package model

import "time"

// SyncKind is a full or incremental reconcile pass.
type SyncKind string

const (
	SyncFull        SyncKind = "FULL"        // every asset and assignment page; finds removals
	SyncIncremental SyncKind = "INCREMENTAL" // assets, and assignments changed since the last versionId
)

// SyncTrigger says what started a pass.
type SyncTrigger string

const (
	TriggerSchedule     SyncTrigger = "SCHEDULE"
	TriggerManual       SyncTrigger = "MANUAL"
	TriggerNotification SyncTrigger = "NOTIFICATION"
	TriggerAccountAdded SyncTrigger = "ACCOUNT_ADDED"
)

// SyncRunStatus is a pass's outcome.
type SyncRunStatus string

const (
	SyncRunQueued    SyncRunStatus = "QUEUED" // asked for (syncAccount, a notification); not started
	SyncRunRunning   SyncRunStatus = "RUNNING"
	SyncRunSucceeded SyncRunStatus = "SUCCEEDED"
	SyncRunFailed    SyncRunStatus = "FAILED"
	SyncRunHeld      SyncRunStatus = "HELD" // stopped by Apple's Retry-After; resumes later
)

// SyncRun records one reconcile pass of an account (R2).
type SyncRun struct {
	ID         int64 `gorm:"primaryKey"`
	AccountID  int64
	Kind       SyncKind
	Trigger    SyncTrigger
	Status     SyncRunStatus
	StartedAt  time.Time
	FinishedAt *time.Time
	Pages      int
	ItemsSeen  int
	Added      int
	Changed    int
	Removed    int
	Error      *string
}

// Lease is a named claim on background work (an account's sync or dispatch) held by one
// replica until ExpiresAt, measured on the database's clock so replicas need not agree on time.
type Lease struct {
	Name      string `gorm:"primaryKey"`
	Holder    string
	ExpiresAt time.Time
}
