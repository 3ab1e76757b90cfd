package model

import "time"

// TokenHealth is the state of an account's content token as Orchard last saw it. Only ACTIVE
// and EXPIRING_SOON accounts receive writes at Apple (R12); the others keep their stored data
// readable and wait for an admin (renew the token, take the account over).
type TokenHealth string

const (
	TokenHealthActive           TokenHealth = "ACTIVE"
	TokenHealthExpiringSoon     TokenHealth = "EXPIRING_SOON"
	TokenHealthExpired          TokenHealth = "EXPIRED"
	TokenHealthRevoked          TokenHealth = "REVOKED"
	TokenHealthInvalid          TokenHealth = "INVALID"
	TokenHealthClaimedElsewhere TokenHealth = "CLAIMED_ELSEWHERE"
)

// ExpiringSoonWindow is how long before its expiry a token is shown as EXPIRING_SOON.
const ExpiringSoonWindow = 30 * 24 * time.Hour

// Usable reports whether Orchard may send writes to Apple for an account in this state.
func (h TokenHealth) Usable() bool {
	return h == TokenHealthActive || h == TokenHealthExpiringSoon
}

// SyncStatus is where an account's reconcile stands.
type SyncStatus string

const (
	SyncStatusNever   SyncStatus = "NEVER"   // no pass has finished yet
	SyncStatusRunning SyncStatus = "RUNNING" // a pass is under way
	SyncStatusOK      SyncStatus = "OK"      // the last pass succeeded
	SyncStatusFailed  SyncStatus = "FAILED"  // the last pass failed; see the account's last error
	SyncStatusHeld    SyncStatus = "HELD"    // Apple asked us to wait (Retry-After); resumes by itself
)

// Account is one Apple license account: a content token for one organisational unit
// ("location") of an Apple Business or School Manager organisation (R1). Licenses are
// segmented per account; the same app bought in two accounts is two pools.
type Account struct {
	ID   int64  `gorm:"primaryKey"`
	Name string // display name chosen by the admin
	// OrgName, LocationName, CountryCode, DefaultPlatform and WebsiteURL are Apple's, from
	// the token file and client config.
	OrgName         string
	LocationName    string
	CountryCode     string
	DefaultPlatform string
	WebsiteURL      string `gorm:"column:website_url"`
	// AppleUID is Apple's library id (uId) of the location.
	AppleUID string `gorm:"column:apple_uid"`
	// LocationKey equals AppleUID while the account is live and is NULL once it is removed;
	// a unique index on it refuses a second live token for the same location.
	LocationKey *string
	// TokenCiphertext is the token file, AES-256-GCM sealed with ORCHARD_SECRET_KEY.
	TokenCiphertext []byte
	// TokenFingerprint is a short non-secret digest of the token for logs and support.
	TokenFingerprint string
	TokenExpiresAt   time.Time
	// NotificationSecretCiphertext seals the shared secret Apple sends with notifications.
	NotificationSecretCiphertext []byte
	NotificationsEnabled         bool
	Health                       TokenHealth
	HealthChangedAt              time.Time
	// ClaimedByID and ClaimedByName name the other manager when Health is CLAIMED_ELSEWHERE.
	ClaimedByID   *string
	ClaimedByName *string
	LastError     *string
	// ThrottledUntil holds every Apple request for this account until then (R3).
	ThrottledUntil *time.Time
	ThrottleReason *string
	// Version ids of Apple's data sets as of the last pass; AssignmentsVersionID and
	// UsersVersionID drive incremental (sinceVersionId) passes.
	AssetsVersionID      string
	AssignmentsVersionID string
	UsersVersionID       string
	SyncStatus           SyncStatus
	LastSyncedAt         *time.Time
	LastFullSyncAt       *time.Time
	NextSyncAt           *time.Time // next incremental pass
	NextFullSyncAt       *time.Time // next full pass
	CreatedAt            time.Time
	UpdatedAt            time.Time
	// RemovedAt marks an account removed by an admin; the row stays for the audit trail.
	RemovedAt *time.Time
	// RemovalRequestedAt marks a removal waiting for its licenses to be reclaimed first.
	RemovalRequestedAt *time.Time
}

// EffectiveHealth is the health to show at now: a stored ACTIVE turns EXPIRING_SOON within
// ExpiringSoonWindow of expiry and EXPIRED past it, even before a pass notices.
func (a *Account) EffectiveHealth(now time.Time) TokenHealth {
	if a.Health != TokenHealthActive && a.Health != TokenHealthExpiringSoon {
		return a.Health
	}
	switch {
	case !a.TokenExpiresAt.IsZero() && !now.Before(a.TokenExpiresAt):
		return TokenHealthExpired
	case !a.TokenExpiresAt.IsZero() && a.TokenExpiresAt.Sub(now) <= ExpiringSoonWindow:
		return TokenHealthExpiringSoon
	default:
		return TokenHealthActive
	}
}

// HeldAt reports whether Apple's Retry-After still holds the account at now.
func (a *Account) HeldAt(now time.Time) bool {
	return a.ThrottledUntil != nil && now.Before(*a.ThrottledUntil)
}
