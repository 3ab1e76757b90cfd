package model

import "time"

// Group is a directory group; license labels apply to the members of groups (R4a).
type Group struct {
	ID         int64 `gorm:"primaryKey"`
	ExternalID string
	Name       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// GroupMember puts a user in a group.
type GroupMember struct {
	GroupID   int64 `gorm:"primaryKey;autoIncrement:false"`
	UserID    int64 `gorm:"primaryKey;autoIncrement:false"`
	CreatedAt time.Time
}
