package model

import "time"

// DeviceStatus is a device's state in the fleet.
type DeviceStatus string

const (
	DeviceActive  DeviceStatus = "ACTIVE"
	DeviceRetired DeviceStatus = "RETIRED" // its device licenses come back (R4b)
)

// Device is a managed device pushed by the MDM integration. Apple knows devices only by serial
// number.
type Device struct {
	ID           int64 `gorm:"primaryKey"`
	SerialNumber string
	UDID         *string `gorm:"column:udid"`
	Name         string
	Platform     Platform
	OSVersion    string `gorm:"column:os_version"`
	Model        string
	// CountryCode is where the device is used, for the cross-country rule (R11).
	CountryCode string
	SharedIPad  bool `gorm:"column:shared_ipad"`
	Supervised  bool
	// UserID is the device's owner or primary user.
	UserID    *int64
	Status    DeviceStatus
	RetiredAt *time.Time
	// RestoredAt is set when the device was restored or re-enrolled: its device-licensed apps
	// are not in backups and must be reinstalled (R8).
	RestoredAt *time.Time
	LastSeenAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// DeviceApp is one app in a device's reported inventory.
type DeviceApp struct {
	ID       int64 `gorm:"primaryKey"`
	DeviceID int64
	// AppID links the inventory entry to a known app (by bundle id), when there is one.
	AppID    *int64
	BundleID string
	Name     string
	Version  string
	// Managed is false for apps the user installed: candidates for conversion (R6).
	Managed    bool
	ReportedAt time.Time
}
