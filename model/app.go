package model

import (
	"strings"
	"time"
)

// AppKind tells apps from books: books are only ever assigned to users and are not revocable.
type AppKind string

const (
	AppKindApp  AppKind = "APP"
	AppKindBook AppKind = "BOOK"
)

// Platform is a device platform, also used for the platforms an app supports.
type Platform string

const (
	PlatformIOS      Platform = "IOS"
	PlatformIPadOS   Platform = "IPADOS"
	PlatformMacOS    Platform = "MACOS"
	PlatformTvOS     Platform = "TVOS"
	PlatformWatchOS  Platform = "WATCHOS"
	PlatformVisionOS Platform = "VISIONOS"
)

// App is an app or book known by Apple's adamId. Apps are shared by all accounts; what an
// account bought of an app is a LicensePool.
type App struct {
	ID       int64 `gorm:"primaryKey"`
	AdamID   string
	Kind     AppKind
	Name     string
	BundleID string
	IconURL  string `gorm:"column:icon_url"`
	// Platforms is a comma-separated list of Platform values (see PlatformList).
	Platforms string
	// IsB2B marks custom (B2B) apps: assignable in every country (R11), visible in metadata
	// only with the owning account's token.
	IsB2B            bool `gorm:"column:is_b2b"`
	MinimumOSVersion string
	Version          string
	// IsFree marks apps offered at no cost; they still consume licenses (R5).
	IsFree bool
	// MetadataRefreshedAt is when name, icon and availability were last looked up (daily).
	MetadataRefreshedAt *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// PlatformList splits Platforms.
func (a *App) PlatformList() []Platform { return SplitPlatforms(a.Platforms) }

// SplitPlatforms parses a comma-separated platform list.
func SplitPlatforms(s string) []Platform {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]Platform, 0, len(parts))
	for _, p := range parts {
		out = append(out, Platform(p))
	}
	return out
}

// JoinPlatforms is the inverse of SplitPlatforms.
func JoinPlatforms(ps []Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// AppCountry records whether an app is sold in a country's storefront, as last looked up.
// A country without a row is unknown (not yet looked up), which is not the same as "not sold".
type AppCountry struct {
	AppID       int64  `gorm:"primaryKey;autoIncrement:false"`
	CountryCode string `gorm:"primaryKey"`
	Available   bool
	CheckedAt   time.Time
}
