package model

import "time"

// UnlimitedCount is Apple's totalCount for unlimited (free) assets.
const UnlimitedCount = 2147483647

// LicensePool is what one account owns of one app (an Apple asset: adamId + pricingParam).
//
// Total, AppleAssigned, AppleAvailable and Retired are Apple's counts as last synced.
// Assigned and Reserved are Orchard's own, kept in the same transaction as the assignment rows
// they count, so they can always be recomputed from the rows: Assigned counts rows held at
// Apple (ASSIGNED, RECLAIMING), Reserved counts rows on their way there (PENDING). A license is
// reserved only while Assigned + Reserved < Total (R13).
type LicensePool struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	AppID        int64
	AdamID       string
	PricingParam string
	TotalCount   int64
	// Unlimited pools (free apps by default) never run out.
	Unlimited           bool
	AppleAssignedCount  int64
	AppleAvailableCount int64
	RetiredCount        int64
	AssignedCount       int64
	ReservedCount       int64
	DeviceAssignable    bool
	Revocable           bool
	// LastSeenAt is when a full pass last saw the asset at Apple; GoneAtAppleAt is set when a
	// full pass no longer finds it (refunded or transferred away).
	LastSeenAt    *time.Time
	GoneAtAppleAt *time.Time
	// SeenRunID is the last full sync pass that saw the asset at Apple.
	SeenRunID *int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Available is what can still be handed out: total − assigned − reserved, never negative.
func (p *LicensePool) Available() int64 {
	if p.Unlimited {
		return UnlimitedCount - p.AssignedCount - p.ReservedCount
	}
	n := p.TotalCount - p.AssignedCount - p.ReservedCount
	if n < 0 {
		return 0
	}
	return n
}
