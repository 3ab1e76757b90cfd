// Package license is Orchard's domain service: every rule of DESIGN §1 that decides an intent
// (assign, reclaim, convert, policy) and the management of accounts and API keys. It records
// intents in the database through package db; it never speaks HTTP or GraphQL, and it asks
// Apple nothing inline except to validate a token an admin is adding.
package license

import (
	"log/slog"
	"time"

	"orchard/db"
)

// Service carries out domain operations.
type Service struct {
	db  *db.DB
	log *slog.Logger
	now func() time.Time
}

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// New returns a Service over d.
func New(d *db.DB, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = db.Now
	}
	return &Service{db: d, log: opts.Logger, now: opts.Now}
}
