package model

import "time"

// LicenseKind says whom a license is assigned to.
type LicenseKind string

const (
	LicenseKindDevice LicenseKind = "DEVICE" // to a serial number; needs no Apple Account
	LicenseKindUser   LicenseKind = "USER"   // to a registered user (clientUserId)
)

// AssignmentStatus is an assignment's place in its life. An assignment is born PENDING (a
// license reserved, its associate queued for Apple) or ASSIGNED (found at Apple); it moves
// only by the transition table (Transitions, in transition.go), whose transitions are listed
// here: for each state, each event that moves it, the next state, the pool counters' deltas
// and the effects. PENDING+RECLAIM is a PENDING assignment asked back on its way to Apple.
// The list is rendered from the table and checked by TestTransitionDiagram
// (go test ./model/ -run TestTransitionDiagram -update rewrites it).
//
//	PENDING
//	  ASSOCIATE_CONFIRMED ──▶ ASSIGNED          assigned +1, reserved -1; stamp assigned, release commands
//	  ASSOCIATE_REFUSED   ──▶ FAILED            assigned +0, reserved -1; release holder, record error
//	  ASSOCIATE_CANCELLED ──▶ FAILED            assigned +0, reserved -1; release holder, record error
//	  RECLAIM_ASKED       ──▶ PENDING+RECLAIM   assigned +0, reserved +0; record reclaim
//	  RECLAIM_UNSENT      ──▶ RECLAIMED         assigned +0, reserved -1; release holder, stamp reclaimed, record reclaim
//	  FOUND_AT_APPLE      ──▶ ASSIGNED          assigned +1, reserved -1; stamp assigned, release commands
//	PENDING+RECLAIM
//	  ASSOCIATE_CONFIRMED ──▶ RECLAIMING        assigned +1, reserved -1; stamp assigned, queue disassociate
//	  ASSOCIATE_REFUSED   ──▶ FAILED            assigned +0, reserved -1; release holder, record error
//	  ASSOCIATE_CANCELLED ──▶ FAILED            assigned +0, reserved -1; release holder, record error
//	  RECLAIM_ASKED       ──▶ PENDING+RECLAIM   assigned +0, reserved +0; record reclaim
//	  RECLAIM_UNSENT      ──▶ RECLAIMED         assigned +0, reserved -1; release holder, stamp reclaimed, record reclaim
//	  FOUND_AT_APPLE      ──▶ RECLAIMING        assigned +1, reserved -1; stamp assigned, queue disassociate
//	ASSIGNED
//	  RECLAIM_ASKED       ──▶ RECLAIMING        assigned +0, reserved +0; record reclaim, queue disassociate
//	  GONE_AT_APPLE       ──▶ REMOVED_AT_APPLE  assigned -1, reserved +0; release holder, stamp removed, record reclaim
//	RECLAIMING
//	  RECLAIM_CONFIRMED   ──▶ RECLAIMED         assigned -1, reserved +0; release holder, stamp reclaimed
//	  RECLAIM_REFUSED     ──▶ ASSIGNED          assigned +0, reserved +0; record error
//	  RECLAIM_CANCELLED   ──▶ ASSIGNED          assigned +0, reserved +0; clear reclaim
//	  GONE_AT_APPLE       ──▶ RECLAIMED         assigned -1, reserved +0; release holder, stamp reclaimed
//	RECLAIMED (final)
//	FAILED (final)
//	REMOVED_AT_APPLE (final)
type AssignmentStatus string

const (
	AssignmentPending        AssignmentStatus = "PENDING"
	AssignmentAssigned       AssignmentStatus = "ASSIGNED"
	AssignmentReclaiming     AssignmentStatus = "RECLAIMING"
	AssignmentReclaimed      AssignmentStatus = "RECLAIMED"
	AssignmentFailed         AssignmentStatus = "FAILED"
	AssignmentRemovedAtApple AssignmentStatus = "REMOVED_AT_APPLE"
)

// Active reports whether an assignment in this status holds (or is about to hold) a license.
func (s AssignmentStatus) Active() bool {
	return s == AssignmentPending || s == AssignmentAssigned || s == AssignmentReclaiming
}

// AssignmentOrigin says why an assignment exists.
type AssignmentOrigin string

const (
	OriginAdmin        AssignmentOrigin = "ADMIN"          // an API call
	OriginLabel        AssignmentOrigin = "LABEL"          // a license label's policy
	OriginConversion   AssignmentOrigin = "CONVERSION"     // an unmanaged app converted to managed (R6)
	OriginFoundAtApple AssignmentOrigin = "FOUND_AT_APPLE" // held at Apple, unknown here (drift)
)

// LicenseAssignment is one license of a pool held by (or on its way to) one device or user.
// Apple has no license ids: at Apple an assignment is (asset, serial number) or (asset,
// clientUserId), which SerialNumber and ClientUserID keep even when no Device or User row
// here matches.
type LicenseAssignment struct {
	ID        int64 `gorm:"primaryKey"`
	PoolID    int64
	AccountID int64
	AppID     int64
	Kind      LicenseKind
	// SerialNumber is set for DEVICE licenses, ClientUserID for USER licenses.
	SerialNumber *string
	ClientUserID *string
	DeviceID     *int64
	UserID       *int64
	// HolderKey is "D:<serial>" or "U:<clientUserId>" while the assignment is active and NULL
	// afterwards; a unique index on (pool_id, holder_key) allows one active assignment per pool
	// and holder.
	HolderKey *string
	Status    AssignmentStatus
	Origin    AssignmentOrigin
	// Reason is a human explanation of why the assignment was made; CausedBy names who or what
	// made it ("api-key:12", "label:4", "sync").
	Reason   string
	CausedBy string
	// ErrorNumber and ErrorMessage carry Apple's refusal of a FAILED assignment.
	ErrorNumber  *int
	ErrorMessage *string
	// ReclaimReason and ReclaimedBy say why and by whom the license was taken back.
	ReclaimReason *string
	ReclaimedBy   *string
	AssignedAt    *time.Time
	ReclaimedAt   *time.Time
	// RemovedAtAppleAt records drift: when a full pass found the license gone at Apple.
	RemovedAtAppleAt *time.Time
	// SeenRunID is the last full sync pass that saw the license at Apple.
	SeenRunID *int64
	// LabelID is the license label that made (or now keeps) an assignment of origin LABEL;
	// LabelOutSince is when its holder left the label's scope, while a grace time runs.
	LabelID       *int64
	LabelOutSince *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// HolderKeyFor returns the holder key of a device or user holder.
func HolderKeyFor(kind LicenseKind, serialNumber, clientUserID string) string {
	if kind == LicenseKindDevice {
		return "D:" + serialNumber
	}
	return "U:" + clientUserID
}
