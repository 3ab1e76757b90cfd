package model

import "time"

// CommandKind is what a device must do with an app (doc/design.md §2.5).
type CommandKind string

const (
	CommandInstall        CommandKind = "INSTALL"
	CommandUpdate         CommandKind = "UPDATE"          // device-licensed apps are not updated by the App Store (R7)
	CommandTakeManagement CommandKind = "TAKE_MANAGEMENT" // an unmanaged app becomes managed (R6)
	CommandReinstall      CommandKind = "REINSTALL"       // after a restore (R8)
	CommandRemove         CommandKind = "REMOVE"
)

// CommandStatus is where a device command stands with the MDM.
type CommandStatus string

const (
	CommandPending      CommandStatus = "PENDING"      // waiting for the MDM to pick it up
	CommandAcknowledged CommandStatus = "ACKNOWLEDGED" // the MDM carried it out
	CommandFailed       CommandStatus = "FAILED"       // the MDM reported a failure
	CommandCancelled    CommandStatus = "CANCELLED"
)

// DeviceCommand is a record of what the MDM must do on a device; Orchard never talks to
// devices itself.
type DeviceCommand struct {
	ID           int64 `gorm:"primaryKey"`
	DeviceID     int64
	AppID        int64
	AssignmentID *int64
	Kind         CommandKind
	Status       CommandStatus
	Reason       string
	Result       *string
	// WaitsForAssignment is true while the command must wait for its license to be confirmed
	// by Apple ("install only after a successful notification").
	WaitsForAssignment bool
	CreatedAt          time.Time
	AcknowledgedAt     *time.Time
}
