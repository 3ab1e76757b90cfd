package model

import "time"

// Role is an API key's authority. Each role includes the ones below it.
type Role string

const (
	RoleAdmin    Role = "ADMIN"    // accounts, tokens, keys, everything
	RoleOperator Role = "OPERATOR" // licenses, lifecycle, policy
	RoleViewer   Role = "VIEWER"   // read only
)

// Rank orders roles; a caller may do what a role of lower or equal rank may.
func (r Role) Rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleOperator:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.Rank() > 0 }

// APIKey is a credential for the GraphQL API. Only a SHA-256 hash of the secret is stored:
// keys are long random strings, so a fast hash is safe and keeps authentication cheap.
type APIKey struct {
	ID   int64 `gorm:"primaryKey"`
	Name string
	// Prefix is the key's first characters, shown to help people tell keys apart.
	Prefix     string
	Hash       string
	Role       Role
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Active reports whether the key may still be used.
func (k *APIKey) Active() bool { return k.RevokedAt == nil }
