package model

import (
	"strconv"
	"strings"
	"time"
)

// Policy (doc/design.md §2.4): labels apply to groups, and licenses follow membership.

// LicenseSource says where a license label takes its licenses from.
type LicenseSource string

const (
	SourceAccount  LicenseSource = "ACCOUNT"  // one account
	SourceAccounts LicenseSource = "ACCOUNTS" // several accounts, in priority order
	SourceAny      LicenseSource = "ANY"      // any account that bought the app
)

// SourceOf names the source of a label with these accounts.
func SourceOf(accountIDs []int64) LicenseSource {
	switch len(accountIDs) {
	case 0:
		return SourceAny
	case 1:
		return SourceAccount
	}
	return SourceAccounts
}

// GroupRule is a dynamic group's rule over device attributes: a device is a member when it
// matches every condition given (an empty rule matches every active device). Conditions on
// lists match any of their values.
type GroupRule struct {
	Platforms []Platform `json:"platforms,omitempty"`
	// MinOSVersion: the device's OS version is at least this (numerically, 17.10 > 17.9).
	MinOSVersion string   `json:"minOsVersion,omitempty"`
	Countries    []string `json:"countries,omitempty"`
	SharedIPad   *bool    `json:"sharedIPad,omitempty"`
	Supervised   *bool    `json:"supervised,omitempty"`
	// Statuses defaults to ACTIVE only: a retired device leaves every dynamic group.
	Statuses []DeviceStatus `json:"statuses,omitempty"`
}

// Matches reports whether a device satisfies the rule.
func (r GroupRule) Matches(d *Device) bool {
	if len(r.Platforms) > 0 && !contains(r.Platforms, d.Platform) {
		return false
	}
	if r.MinOSVersion != "" && CompareVersions(d.OSVersion, r.MinOSVersion) < 0 {
		return false
	}
	if len(r.Countries) > 0 {
		ok := false
		for _, c := range r.Countries {
			if strings.EqualFold(c, d.CountryCode) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if r.SharedIPad != nil && *r.SharedIPad != d.SharedIPad {
		return false
	}
	if r.Supervised != nil && *r.Supervised != d.Supervised {
		return false
	}
	statuses := r.Statuses
	if len(statuses) == 0 {
		statuses = []DeviceStatus{DeviceActive}
	}
	return contains(statuses, d.Status)
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// CompareVersions compares dotted version numbers numerically ("17.10" > "17.9"; missing parts
// are 0; an empty or malformed version is lowest).
func CompareVersions(a, b string) int {
	pa, pb := strings.Split(strings.TrimSpace(a), "."), strings.Split(strings.TrimSpace(b), ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			n, err := strconv.Atoi(pa[i])
			if err != nil {
				n = -1
			}
			x = n
		}
		if i < len(pb) {
			n, err := strconv.Atoi(pb[i])
			if err != nil {
				n = -1
			}
			y = n
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// PolicyQueueItem is a durable "to evaluate" row, written in the same transaction as the
// change that makes it necessary, so that whichever replica holds the policy lease finds it:
// an app to evaluate, or every labelled app (AppID nil), not before a time (a grace time that
// runs out). With UserID or DeviceID (and AppID) it names one holder of the app whose
// membership changed: only that holder is evaluated.
type PolicyQueueItem struct {
	ID        int64 `gorm:"primaryKey"`
	AppID     *int64
	UserID    *int64
	DeviceID  *int64
	Reason    string
	NotBefore time.Time
	CreatedAt time.Time
}

// TableName keeps the queue's table name singular.
func (PolicyQueueItem) TableName() string { return "policy_queue" }

// PolicyWaiting is a holder a license label covers but cannot serve: the pool is empty, the
// label's cap is reached, or a rule refused it. Waiting holders are served first covered,
// first served, as soon as licenses appear.
type PolicyWaiting struct {
	LabelID   int64  `gorm:"primaryKey;autoIncrement:false"`
	HolderKey string `gorm:"primaryKey"`
	AppID     int64
	Kind      LicenseKind
	DeviceID  *int64
	UserID    *int64
	Code      Code
	Reason    string
	// FirstCoveredAt is when the holder was first covered and left waiting: the fair order.
	FirstCoveredAt time.Time
	UpdatedAt      time.Time
}

// TableName keeps the table name as the migration spells it.
func (PolicyWaiting) TableName() string { return "policy_waiting" }

// DepartureHow says how a member left a group.
type DepartureHow string

const (
	DepartureRemoved     DepartureHow = "REMOVED"      // removeGroupMembers / setGroupMembers
	DepartureNoMatch     DepartureHow = "NO_MATCH"     // stopped matching a dynamic group's rule
	DepartureUserRemoved DepartureHow = "USER_REMOVED" // removeUser
	DepartureRetired     DepartureHow = "RETIRED"      // retireDevice
)

// PolicyDeparture records that a user or device left a group, so that the reclaim that follows
// can say which group and how ("removed from group Teachers (label Keynote for teachers)").
type PolicyDeparture struct {
	ID       int64 `gorm:"primaryKey"`
	GroupID  int64
	UserID   *int64
	DeviceID *int64
	How      DepartureHow
	At       time.Time
}

// NodeID of a license label.
func (l *Label) NodeID() string {
	if l.Kind == LabelApp {
		return GlobalID("AppLabel", l.ID)
	}
	return GlobalID("LicenseLabel", l.ID)
}

// Codes of policy: why a covered holder is not served.
const (
	// CodeLabelCapReached: the label has handed out as many licenses as its cap allows.
	CodeLabelCapReached Code = "LABEL_CAP_REACHED"
	// CodeNeedsAppLabel: a shared iPad gets an app only when an app label covers it too (R10).
	CodeNeedsAppLabel Code = "NEEDS_APP_LABEL"
	// CodeAppleRefused: Apple refused the license the label asked for; it is asked again at
	// the next full evaluation after a day, or when the label changes.
	CodeAppleRefused Code = "APPLE_REFUSED"
	// CodeNoUser: a USER label covers a device that has no user.
	CodeNoUser Code = "NO_USER"
)
