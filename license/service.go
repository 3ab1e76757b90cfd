// Package license is Orchard's domain service: every rule of doc/design.md §1 that decides an intent
// (assign, reclaim, convert, policy) and the management of accounts and API keys. It records
// intents in the database through package db; it never speaks HTTP or GraphQL, and it asks
// Apple nothing inline except to validate a token an admin is adding.
package license

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
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

	watchMu sync.Mutex
	watched map[*db.DB]bool // database handles whose transitions policy observes

	evaluations atomic.Int64 // policy evaluations carried out (see Evaluations)
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
	s := &Service{db: d, log: opts.Logger, now: opts.Now, apple: opts.Apple, sealer: opts.Sealer,
		publicURL: opts.PublicURL, kick: opts.Kick, watched: map[*db.DB]bool{}}
	s.WatchTransitions(d)
	return s
}

// SetKick sets the hook told about queued work (the scheduler is built after the service).
func (s *Service) SetKick(kick func(accountID int64)) { s.kick = kick }

// SettingInvitationURL names the setting that keeps Apple's invitation link template (from the
// service configuration, where it contains %25inviteCode%25 or %inviteCode%).
const SettingInvitationURL = "apple_invitation_url"

// InvitationURL is the link a user opens to link their Apple Account to a registration, or ""
// when Orchard has not read Apple's template yet.
func (s *Service) InvitationURL(ctx context.Context, inviteCode string) (string, error) {
	tmpl, err := s.db.Setting(ctx, SettingInvitationURL)
	if errors.Is(err, model.ErrNotFound) || tmpl == "" {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	code := url.QueryEscape(inviteCode)
	out := strings.ReplaceAll(tmpl, "%25inviteCode%25", code)
	return strings.ReplaceAll(out, "%inviteCode%", code), nil
}
