package model

import "time"

// IdempotencyRecord remembers a mutation's answer under a client's idempotency key, so a
// retried call with the same key and input gets the same answer without repeating the work.
type IdempotencyRecord struct {
	ID int64 `gorm:"primaryKey"`
	// Scope is the API key id that used the key: keys of different callers never collide.
	Scope     string
	Key       string
	Operation string
	// RequestHash is a digest of the input; the same key with another input is refused.
	RequestHash string
	Response    string
	CreatedAt   time.Time
}

// Setting is a named instance-wide value, such as the stable id this installation claims
// Apple accounts with (mdmInfo.id), shared by every replica.
type Setting struct {
	Name      string `gorm:"primaryKey"`
	Value     string
	UpdatedAt time.Time
}
