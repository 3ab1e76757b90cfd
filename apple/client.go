package apple

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Default endpoints (doc/apple-api.md §0, §10.2).
const (
	DefaultBaseURL   = "https://vpp.itunes.apple.com/mdm/v2"
	DefaultLookupURL = "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup"
)

// Config configures a Client. The zero value of every field means its
// documented default.
type Config struct {
	// BaseURL of the v2 API; default DefaultBaseURL (ORCHARD_APPLE_URL).
	BaseURL string
	// LookupURL of the metadata lookup (doc/apple-api.md §10.2 shape); default DefaultLookupURL
	// (ORCHARD_LOOKUP_URL).
	LookupURL string
	// LookupPlatform is the lookup's platform parameter: "enterprisestore"
	// (default) or "volumestore" (education); see ClientConfig.DefaultPlatform.
	LookupPlatform string
	// HTTPClient sends the requests; default a client with a 2-minute timeout
	// and enough idle connections per host for parallel page fetches.
	HTTPClient *http.Client
	// MDM is our claim (R12). When MDM.ID is set, every answer's mdmInfo.id is
	// compared with it and another manager's id yields a *ClaimedError.
	MDM MDMInfo
	// MaxAttempts bounds the requests one call sends (default 4): throttled
	// answers waited for inline and network errors of idempotent requests.
	MaxAttempts int
	// MaxInlineWait: a Retry-After or backoff up to this long is waited for
	// inside the call (cancellable through the context); a longer one makes the
	// call return a *ThrottleError at once. Default 0: always return, and let
	// the scheduler hold the account (R3).
	MaxInlineWait time.Duration
	// MaxRetryAfter caps Retry-After and backoff holds (default 1h).
	MaxRetryAfter time.Duration
	// BackoffBase is the first exponential backoff ceiling when Apple throttles
	// without a usable Retry-After (default 1s); it doubles with every
	// throttled answer in a row, up to MaxRetryAfter.
	BackoffBase time.Duration
	// NetworkBackoff is the first wait before retrying a network error of an
	// idempotent request (default 200ms, doubling, full jitter).
	NetworkBackoff time.Duration
	// ServiceConfigTTL is how long the service configuration is cached
	// (default 5 minutes, Apple's guidance).
	ServiceConfigTTL time.Duration
	// LookupTTL is how long metadata lookups are cached, negative results
	// included (default 24h); LookupCacheSize bounds the cache (default 100000
	// entries of (country, adamId)).
	LookupTTL       time.Duration
	LookupCacheSize int
	// LookupRequestsPerSecond limits metadata lookups (default 10/s); the
	// lookup service is separate from the license API and has its own limits.
	LookupRequestsPerSecond float64
	// MaxResponseBytes bounds one answer's body (default 64 MiB).
	MaxResponseBytes int64
	// UserAgent is sent with every request (default "orchard-apple/2").
	UserAgent string
	// Logger receives debug lines per request and warnings on throttling;
	// never the token. Default: discard.
	Logger *slog.Logger
	// Observe, if set, is called after every HTTP exchange (metrics): endpoint
	// "METHOD /path", HTTP status (0 for a network error), Apple's error number
	// (0 if none) and the duration.
	Observe func(endpoint string, status int, errorNumber int, d time.Duration)
	// Now is the clock (default time.Now). Holds are computed with it.
	Now func() time.Time
	// MaxConcurrent caps the requests this client has in flight at once, across all tokens
	// (ORCHARD_APPLE_CONCURRENCY; 0: no cap). A request waits for a place after the token's
	// rate limiter, in arrival order, so that the many accounts of one installation share a
	// bounded number of connections to Apple and none is starved.
	MaxConcurrent int
}

// Client talks to Apple's license API v2 and to the metadata lookup. It is
// safe for concurrent use; use one per process (it holds the per-token
// limiters and throttle holds that must be shared by all callers).
type Client struct {
	cfg     Config
	base    string
	http    *http.Client
	log     *slog.Logger
	now     func() time.Time
	jitter  func(ceiling time.Duration) time.Duration
	holds   *holdTable
	limits  *limiterSet
	svc     serviceConfigCache
	lookup  *lookupCache
	lookLim *rate.Limiter
	flight  chan struct{} // a place per request in flight (Config.MaxConcurrent); nil: no cap
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.LookupURL == "" {
		cfg.LookupURL = DefaultLookupURL
	}
	if cfg.LookupPlatform == "" {
		cfg.LookupPlatform = "enterprisestore"
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxInlineWait < 0 {
		cfg.MaxInlineWait = 0
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = time.Hour
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.NetworkBackoff <= 0 {
		cfg.NetworkBackoff = 200 * time.Millisecond
	}
	if cfg.ServiceConfigTTL <= 0 {
		cfg.ServiceConfigTTL = 5 * time.Minute
	}
	if cfg.LookupTTL <= 0 {
		cfg.LookupTTL = 24 * time.Hour
	}
	if cfg.LookupCacheSize <= 0 {
		cfg.LookupCacheSize = 100_000
	}
	if cfg.LookupRequestsPerSecond <= 0 {
		cfg.LookupRequestsPerSecond = 10
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "orchard-apple/2"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		hc = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	}
	var flight chan struct{}
	if cfg.MaxConcurrent > 0 {
		flight = make(chan struct{}, cfg.MaxConcurrent)
	}
	return &Client{
		flight:  flight,
		cfg:     cfg,
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		http:    hc,
		log:     cfg.Logger,
		now:     cfg.Now,
		jitter:  fullJitter,
		holds:   newHoldTable(),
		limits:  newLimiterSet(),
		lookup:  newLookupCache(cfg.LookupCacheSize, cfg.LookupTTL),
		lookLim: rate.NewLimiter(rate.Limit(cfg.LookupRequestsPerSecond), max(1, int(cfg.LookupRequestsPerSecond/2))),
	}
}

// HeldUntil reports whether the client currently refuses requests for tok
// because Apple throttled it, and until when.
func (c *Client) HeldUntil(tok *Token) (time.Time, bool) {
	h, ok := c.holds.active(holdKey(tok), c.now())
	return h.until, ok
}

// InFlight is how many requests the client has in flight now (within Config.MaxConcurrent).
func (c *Client) InFlight() int { return len(c.flight) }

// ClearHold forgets tok's throttle hold (e.g. after an admin forces a sync).
// Use sparingly: Apple may reject early requests "for even longer periods".
func (c *Client) ClearHold(tok *Token) { c.holds.clear(holdKey(tok)) }

func holdKey(tok *Token) string { return "tok:" + tok.Fingerprint() }
