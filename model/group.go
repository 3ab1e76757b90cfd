package model

import "time"

// Group is a directory or device group; license and app labels apply to the members of groups
// (R4a, R10). A group holds users and devices. A dynamic group (Rule set) holds the devices that
// match its rule, which Orchard keeps current as devices are upserted; its members cannot be
// set by hand.
type Group struct {
	ID         int64 `gorm:"primaryKey"`
	ExternalID string
	Name       string
	// Rule is a dynamic group's rule as JSON (see GroupRule); nil for a directory group.
	Rule      *string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Dynamic reports whether the group's members follow a rule.
func (g *Group) Dynamic() bool { return g.Rule != nil }

// GroupDevice puts a device in a group.
type GroupDevice struct {
	GroupID   int64 `gorm:"primaryKey;autoIncrement:false"`
	DeviceID  int64 `gorm:"primaryKey;autoIncrement:false"`
	CreatedAt time.Time
}

// GroupMember puts a user in a group.
type GroupMember struct {
	GroupID   int64 `gorm:"primaryKey;autoIncrement:false"`
	UserID    int64 `gorm:"primaryKey;autoIncrement:false"`
	CreatedAt time.Time
}
