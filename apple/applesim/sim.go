// Package applesim simulates Apple's Apps and Books license API v2 (formerly VPP) for tests,
// benchmarks and demos: every endpoint of shared/apple-api.md with Apple's validations, error
// numbers, pagination, versioning, asynchronous events and notifications, plus fault switches,
// scripted changes "from Apple's side", a request log and a deterministic data generator.
//
// The simulator is an independent implementation of Apple's side. It does not import the
// client (package orchard/apple) so that tests of the client against it are meaningful.
//
// Where Apple's behaviour is unconfirmed, the simulator follows the project's decisions
// (doc/apple-api.md §15) by default and offers a switch in Options for the other behaviour.
package applesim

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a simulator. The zero value gives the project's defaults.
type Options struct {
	// PageSize is the number of assets, assignments or users per page; default 1000.
	PageSize int
	// EventDelay is how long an asynchronous event stays PENDING before it is processed;
	// default 50ms, negative for no delay at all. The event's effect on assets, assignments and users happens at that
	// moment, atomically, not when the request is accepted.
	EventDelay time.Duration
	// Clock replaces time.Now (token expiry, event due times, request log, rate limit).
	Clock func() time.Time

	// doc/apple-api.md §15 switches; the zero value is the project's default.

	// UnknownTokenHTTP401 answers an unknown or garbage token with HTTP 401 + 9622 instead
	// of HTTP 200 + 9622.
	UnknownTokenHTTP401 bool
	// ExpirationDateOnlyWithin15Days includes tokenExpirationDate only when the token expires
	// within 15 days, instead of always.
	ExpirationDateOnlyWithin15Days bool
	// ReassociateFails9616 fails an associate of an existing (asset, target) pair with 9616
	// instead of counting it as an idempotent success.
	ReassociateFails9616 bool
	// DisassociateMissingFails9619 fails a disassociate of a missing pair with 9619 instead of
	// counting it as an idempotent success.
	DisassociateMissingFails9619 bool
	// DeltaReportsRemovals lists assignments removed since sinceVersionId with
	// "removed": true instead of leaving them out of the delta.
	DeltaReportsRemovals bool
	// AssetsRejectSinceVersionID answers GET /assets?sinceVersionId=… with 9602 instead of
	// ignoring the parameter.
	AssetsRejectSinceVersionID bool

	// RequestsPerSecond limits authenticated requests per token; over the limit the answer
	// is HTTP 429 + 9646. 0 disables the limit (the default, for tests). Apple's is 15.
	RequestsPerSecond int

	// NotificationHTTPClient delivers notifications; default: a client with a 10 s timeout.
	NotificationHTTPClient *http.Client
	// DuplicateNotifications delivers every notification twice with the same notificationId,
	// as Apple sometimes does.
	DuplicateNotifications bool
	// NotificationAttempts is the number of delivery attempts per notification; default 3
	// (Apple: "up to 3 attempts").
	NotificationAttempts int
	// NotificationRetryBackoff is the wait before the n-th retry, multiplied by n; default 5s.
	// Apple spreads its attempts over 1–5 minutes; tests want milliseconds.
	NotificationRetryBackoff time.Duration
}

// Limits are the values service config advertises and the simulator enforces (apple-api.md
// doc/apple-api.md §3). MaxRequestPerSecond is advertised only; the enforced limit is Options.RequestsPerSecond
// or SetRequestsPerSecond.
type Limits struct {
	MaxAssets                    int
	MaxClientUserIDs             int
	MaxSerialNumbers             int
	MaxRevokeClientUserIDs       int
	MaxRevokeSerialNumbers       int
	MaxUsers                     int
	MaxNotificationLength        int
	MaxMDMNameLength             int
	MaxMDMMetadataLength         int
	MaxMDMIDLength               int
	MaxRequestPerSecond          int
	MaxSubscriptions             int
	MaxSubscriptionClientUserIDs int
}

// DefaultLimits returns Apple's current limits.
func DefaultLimits() Limits {
	return Limits{
		MaxAssets:                    25,
		MaxClientUserIDs:             1000,
		MaxSerialNumbers:             1000,
		MaxRevokeClientUserIDs:       100,
		MaxRevokeSerialNumbers:       100,
		MaxUsers:                     100,
		MaxNotificationLength:        512,
		MaxMDMNameLength:             100,
		MaxMDMMetadataLength:         255,
		MaxMDMIDLength:               100,
		MaxRequestPerSecond:          15,
		MaxSubscriptions:             25,
		MaxSubscriptionClientUserIDs: 1000,
	}
}

// wireMap renders the limits as service config's "limits" dictionary.
func (l Limits) wireMap() map[string]int {
	return map[string]int{
		"maxAssets":                    l.MaxAssets,
		"maxClientUserIds":             l.MaxClientUserIDs,
		"maxSerialNumbers":             l.MaxSerialNumbers,
		"maxRevokeClientUserIds":       l.MaxRevokeClientUserIDs,
		"maxRevokeSerialNumbers":       l.MaxRevokeSerialNumbers,
		"maxUsers":                     l.MaxUsers,
		"maxNotificationLength":        l.MaxNotificationLength,
		"maxMdmNameLength":             l.MaxMDMNameLength,
		"maxMdmMetadataLength":         l.MaxMDMMetadataLength,
		"maxMdmIdLength":               l.MaxMDMIDLength,
		"maxRequestPerSecond":          l.MaxRequestPerSecond,
		"maxSubscriptions":             l.MaxSubscriptions,
		"maxSubscriptionClientUserIds": l.MaxSubscriptionClientUserIDs,
	}
}

// Sim is a simulated Apple license service. It implements http.Handler: Apple's API under
// /mdm/v2/, the metadata lookup at /lookup and the control API under /_sim/. All methods are
// safe for concurrent use. Methods that take a token file and return no error panic when the
// simulator does not know the token (a bug in the calling test); the others return an error.
//
// Locking: mu guards the token registry and the limits; each token has its own RWMutex for
// its data. Locks are always taken registry first, token second; catMu, inviteMu and the
// request log's mutex are leaves. No lock is held while sleeping or delivering
// notifications.
type Sim struct {
	opts Options
	now  func() time.Time

	mu       sync.RWMutex
	limits   Limits
	bySecret map[string]*token // inner "token" value of the token file
	byFile   map[string]*token // the whole base64 token file, the Bearer value
	byUID    map[string]*token
	order    []*token // in creation order

	catMu   sync.RWMutex
	catalog map[string]*catalogEntry // adamId → metadata for /lookup

	inviteMu sync.Mutex
	invites  map[string]inviteRef // inviteCode → user

	reqlog   requestLog
	notifier *notifier
	closed   atomic.Bool
	// uidSeq numbers the tokens added without a UID.
	uidSeq atomic.Int64
}

// New returns a simulator with the given options. Call Close to stop its background work
// (event timers, notification delivery).
func New(opts Options) *Sim {
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	switch {
	case opts.EventDelay == 0:
		opts.EventDelay = 50 * time.Millisecond
	case opts.EventDelay < 0:
		opts.EventDelay = 0
	}
	if opts.NotificationAttempts <= 0 {
		opts.NotificationAttempts = 3
	}
	if opts.NotificationRetryBackoff <= 0 {
		opts.NotificationRetryBackoff = 5 * time.Second
	}
	s := &Sim{
		opts:     opts,
		now:      opts.Clock,
		limits:   DefaultLimits(),
		bySecret: make(map[string]*token),
		byFile:   make(map[string]*token),
		byUID:    make(map[string]*token),
		catalog:  make(map[string]*catalogEntry),
		invites:  make(map[string]inviteRef),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.notifier = newNotifier(s)
	return s
}

// Close stops event timers and notification delivery (pending retries are dropped). The
// handler keeps answering; events that come due afterwards are processed on the next request
// that touches their token.
func (s *Sim) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for _, t := range s.tokens() {
		t.mu.Lock()
		for _, ev := range t.pending {
			if ev.timer != nil {
				ev.timer.Stop()
			}
		}
		t.mu.Unlock()
	}
	s.notifier.close()
	return nil
}

// SetLimits replaces the limits advertised by service config and enforced on manage requests;
// tests shrink them to reach 9700–9702 and 9714 cheaply. Zero fields keep Apple's default.
func (s *Sim) SetLimits(l Limits) {
	d := DefaultLimits()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.MaxAssets, d.MaxAssets)
	fill(&l.MaxClientUserIDs, d.MaxClientUserIDs)
	fill(&l.MaxSerialNumbers, d.MaxSerialNumbers)
	fill(&l.MaxRevokeClientUserIDs, d.MaxRevokeClientUserIDs)
	fill(&l.MaxRevokeSerialNumbers, d.MaxRevokeSerialNumbers)
	fill(&l.MaxUsers, d.MaxUsers)
	fill(&l.MaxNotificationLength, d.MaxNotificationLength)
	fill(&l.MaxMDMNameLength, d.MaxMDMNameLength)
	fill(&l.MaxMDMMetadataLength, d.MaxMDMMetadataLength)
	fill(&l.MaxMDMIDLength, d.MaxMDMIDLength)
	fill(&l.MaxRequestPerSecond, d.MaxRequestPerSecond)
	fill(&l.MaxSubscriptions, d.MaxSubscriptions)
	fill(&l.MaxSubscriptionClientUserIDs, d.MaxSubscriptionClientUserIDs)
	s.mu.Lock()
	s.limits = l
	s.mu.Unlock()
}

// Limits returns the limits in force.
func (s *Sim) Limits() Limits {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.limits
}

// tokens returns the tokens in creation order.
func (s *Sim) tokens() []*token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*token(nil), s.order...)
}

// ProcessDueEvents processes every event whose delay has elapsed by the simulator's clock.
// Events are also processed by timers and before any request touches their token; this is
// for tests that drive a fake Clock.
func (s *Sim) ProcessDueEvents() {
	for _, t := range s.tokens() {
		s.settle(t)
	}
}
