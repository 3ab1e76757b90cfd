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
	// AccountID is the first of a license label's accounts (the whole ordered list is in
	// label_accounts); NULL means any account.
	AccountID *int64
	// LicenseKind is USER or DEVICE for license labels.
	LicenseKind *LicenseKind
	// InstallOnEnroll and InstallOnSignIn say when an app label installs the app.
	InstallOnEnroll bool
	InstallOnSignIn bool
	// CapCount, when set, bounds the licenses a license label hands out (active assignments
	// made through it).
	CapCount *int64
	// GraceSeconds is how long a holder that left the label's scope keeps its license before
	// it is reclaimed (0: at once, as R4a says). A directory that removes and re-adds a user
	// within the grace time causes no Apple request at all.
	GraceSeconds int64
	// DeletedAt marks a deleted label: it covers no one, and the evaluation hands its licenses
	// to other labels of the app that cover their holders, or takes them back.
	DeletedAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LabelAccount is one of the accounts a license label takes licenses from, with its place in
// the label's priority order (0 first).
type LabelAccount struct {
	LabelID   int64 `gorm:"primaryKey;autoIncrement:false"`
	AccountID int64 `gorm:"primaryKey;autoIncrement:false"`
	Position  int
}

// LabelGroup makes a label apply to a group's members.
type LabelGroup struct {
	LabelID int64 `gorm:"primaryKey;autoIncrement:false"`
	GroupID int64 `gorm:"primaryKey;autoIncrement:false"`
}
