package model

import "time"

// UserStatus is a user's state in Orchard.
type UserStatus string

const (
	UserActive  UserStatus = "ACTIVE"
	UserRemoved UserStatus = "REMOVED" // removed by the directory; kept for history
)

// User is a person pushed by a directory integration. User licenses are assigned to the user's
// ClientUserID, a stable id Orchard generates and registers at Apple in each account that
// needs it.
type User struct {
	ID             int64 `gorm:"primaryKey"`
	ExternalID     string
	ClientUserID   string
	Email          string
	Name           string
	ManagedAppleID *string
	Status         UserStatus
	CreatedAt      time.Time
	UpdatedAt      time.Time
	RemovedAt      *time.Time
}

// AppleUserStatus is a user's registration in one Apple account.
type AppleUserStatus string

const (
	AppleUserRegistering AppleUserStatus = "REGISTERING" // users/create queued or in flight
	AppleUserRegistered  AppleUserStatus = "REGISTERED"  // registered; invitation not yet accepted
	AppleUserAssociated  AppleUserStatus = "ASSOCIATED"  // linked to an Apple Account
	AppleUserRetiring    AppleUserStatus = "RETIRING"
	AppleUserRetired     AppleUserStatus = "RETIRED"
	AppleUserFailed      AppleUserStatus = "FAILED"
)

// AppleUser is a user as registered at one Apple account (Apple's users are per location).
// UserID is NULL for users found at Apple that no directory has pushed here.
type AppleUser struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	UserID       *int64
	ClientUserID string
	Email        string
	Status       AppleUserStatus
	// InviteCode is Apple's code for the invitation link, while the user has not accepted it.
	InviteCode   *string
	IDHash       *string `gorm:"column:id_hash"`
	ErrorMessage *string
	// SeenRunID is the last full sync pass that saw the user at Apple.
	SeenRunID *int64
	CreatedAt time.Time
	UpdatedAt time.Time
}
