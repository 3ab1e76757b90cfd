package model

import "time"

// LabelKind tells license labels from app labels.
type LabelKind string

const (
	// LabelLicense: members of the label's groups get the app's license from the account (or
	// any account) as USER or DEVICE licenses.
	LabelLicense LabelKind = "LICENSE"
	// LabelApp: the app is offered to (installed on) the devices of the label's groups; on a
	// shared iPad an app needs both kinds of label (R10).
	LabelApp LabelKind = "APP"
)

// Label is a policy: an app, the groups it covers and how.
type Label struct {
	ID    int64 `gorm:"primaryKey"`
	Kind  LabelKind
	Name  string
	AppID int64
	// AccountID restricts a license label to one account; NULL means any account.
	AccountID *int64
	// LicenseKind is USER or DEVICE for license labels.
	LicenseKind *LicenseKind
	// InstallOnEnroll and InstallOnSignIn say when an app label installs the app.
	InstallOnEnroll bool
	InstallOnSignIn bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// LabelGroup makes a label apply to a group's members.
type LabelGroup struct {
	LabelID int64 `gorm:"primaryKey;autoIncrement:false"`
	GroupID int64 `gorm:"primaryKey;autoIncrement:false"`
}
