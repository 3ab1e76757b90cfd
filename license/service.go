// Package license is Orchard's domain service: every rule of DESIGN §1 that decides an intent
// (assign, reclaim, convert, policy) and the management of accounts and API keys. It records
// intents in the database through package db; it never speaks HTTP or GraphQL, and it asks
// Apple nothing inline except to validate a token an admin is adding.
package license

import (
	"log/slog"
	"time"

	"orchard/apple"
	"orchard/db"
)

// Service carries out domain operations.
type Service struct {
	db        *db.DB
	log       *slog.Logger
	now       func() time.Time
	apple     *apple.Client
	sealer    *Sealer
	publicURL string
	kick      func(accountID int64)
}

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Apple validates and claims tokens of accounts being added (the one call to Apple a
	// mutation makes inline). Sealer seals tokens at rest. Both are needed for accounts.
	Apple  *apple.Client
	Sealer *Sealer
	// PublicURL, when set, is where Apple sends notifications
	// (PublicURL/apple/notifications/{accountID}).
	PublicURL string
	// Kick, if set, is told when work for an account was queued, so the scheduler starts at
	// once instead of at its next tick.
	Kick func(accountID int64)
}

// New returns a Service over d.
func New(d *db.DB, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = db.Now
	}
	if opts.Kick == nil {
		opts.Kick = func(int64) {}
	}
	return &Service{db: d, log: opts.Logger, now: opts.Now, apple: opts.Apple, sealer: opts.Sealer,
		publicURL: opts.PublicURL, kick: opts.Kick}
}

// SetKick sets the hook told about queued work (the scheduler is built after the service).
func (s *Service) SetKick(kick func(accountID int64)) { s.kick = kick }
