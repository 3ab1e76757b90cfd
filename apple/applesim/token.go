package applesim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TokenSpec describes an organisational unit (Apple's "location") and its content token.
type TokenSpec struct {
	OrgName      string
	LocationName string
	// Country is the ISO 3166 alpha-2 code of the OU's store (countryISO2ACode); default US.
	Country string
	// UID is the library id answered as uId; generated when empty.
	UID string
	// ExpiresAt is the token's expiry; default one year from now.
	ExpiresAt time.Time
	// DefaultPlatform is "enterprisestore" (business, the default) or "volumestore"
	// (education); it also chooses websiteURL.
	DefaultPlatform string
}

// token is the simulator's state for one content token / organisational unit.
type token struct {
	file   string // the base64 token file (the Bearer value)
	secret string // the inner "token" field
	uid    string
	org    string

	mu sync.RWMutex // guards everything below except the fields with their own lock
	// Client and token state.
	location, country, platform, website string
	expiresAt                            time.Time
	revoked                              bool
	mdm                                  *wireMDMInfo
	notifyURL, notifyAuth                string
	notifyTypes                          []string
	// seq is the token's write counter; each data set records the seq of its last change
	// as its version.
	seq     uint64
	assets  assetStore
	assigns assignmentStore
	users   userStore
	events  map[string]*event
	pending []*event // accepted, not yet processed, in due order

	// nextDue is the UnixNano due time of pending[0], or MaxInt64; read without mu so that
	// requests can tell cheaply whether events need processing.
	nextDue atomic.Int64

	fmu     sync.Mutex // guards faults and the rate limiter (a leaf lock)
	faults  []*faultState
	limiter rateLimiter
}

func newToken(file, secret, uid, org string) *token {
	t := &token{file: file, secret: secret, uid: uid, org: org, events: make(map[string]*event)}
	t.assets.init()
	t.assigns.init()
	t.users.init()
	t.nextDue.Store(math.MaxInt64)
	return t
}

// bump advances the token's write counter and returns the new version. Callers hold t.mu.
func (t *token) bump() uint64 {
	t.seq++
	return t.seq
}

// encodeTokenFile renders a .vpptoken file: base64 of {"token","expDate","orgName"}.
func encodeTokenFile(secret string, exp time.Time, org string) string {
	b, _ := json.Marshal(wireTokenFile{Token: secret, ExpDate: exp.UTC().Format(expDateLayout), OrgName: org})
	return base64.StdEncoding.EncodeToString(b)
}

// decodeTokenFile is lenient in what it accepts as Base64 (standard or URL alphabet, padded
// or not, surrounding white space), as a server that reads the inner token would be.
func decodeTokenFile(file string) (wireTokenFile, error) {
	var tf wireTokenFile
	file = strings.TrimSpace(file)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(file); err == nil {
			break
		}
	}
	if err != nil {
		return tf, fmt.Errorf("token file is not base64: %w", err)
	}
	if err := json.Unmarshal(raw, &tf); err != nil {
		return tf, fmt.Errorf("token file is not JSON: %w", err)
	}
	if tf.Token == "" {
		return tf, fmt.Errorf("token file has no token")
	}
	return tf, nil
}

// randomString returns n random bytes in base64 (no padding), for secrets.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// newUUID returns a random version-4 UUID, the shape of Apple's eventIds and notificationIds.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AddToken registers an organisational unit and returns its token file (the base64 content of
// a .vpptoken file, which is also the Bearer value). The inner token is random and unique.
func (s *Sim) AddToken(spec TokenSpec) (tokenFile string) {
	return s.addToken(spec, randomString(48))
}

// addToken registers a token with the given inner secret; a secret that is already taken gets
// a suffix so that every inner token stays unique.
func (s *Sim) addToken(spec TokenSpec, secret string) string {
	if spec.OrgName == "" {
		spec.OrgName = "Simulated Organization"
	}
	if spec.LocationName == "" {
		spec.LocationName = spec.OrgName
	}
	if spec.Country == "" {
		spec.Country = "US"
	}
	spec.Country = strings.ToUpper(spec.Country)
	if spec.ExpiresAt.IsZero() {
		spec.ExpiresAt = s.now().AddDate(1, 0, 0)
	}
	spec.ExpiresAt = spec.ExpiresAt.UTC().Truncate(time.Second)
	if spec.DefaultPlatform == "" {
		spec.DefaultPlatform = "enterprisestore"
	}
	website := "https://business.apple.com"
	if spec.DefaultPlatform == "volumestore" {
		website = "https://school.apple.com"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	base := secret
	for i := 2; s.bySecret[secret] != nil; i++ {
		secret = fmt.Sprintf("%s%d", base, i)
	}
	if spec.UID == "" {
		for spec.UID == "" || s.byUID[spec.UID] != nil {
			spec.UID = fmt.Sprintf("20490250%08d", s.uidSeq.Add(1))
		}
	}
	for base, i := spec.UID, 2; s.byUID[spec.UID] != nil; i++ {
		spec.UID = fmt.Sprintf("%s-%d", base, i) // uIds are unique per simulator
	}
	file := encodeTokenFile(secret, spec.ExpiresAt, spec.OrgName)
	t := newToken(file, secret, spec.UID, spec.OrgName)
	t.location, t.country, t.platform, t.website = spec.LocationName, spec.Country, spec.DefaultPlatform, website
	t.expiresAt = spec.ExpiresAt
	t.limiter.rps = s.opts.RequestsPerSecond
	s.bySecret[secret] = t
	s.byFile[file] = t
	s.byUID[spec.UID] = t
	s.order = append(s.order, t)
	return file
}

// tokenByFile finds a token by its token file, falling back to decoding the file (so that a
// re-encoded file with the same inner token is recognised, as Apple would).
func (s *Sim) tokenByFile(file string) *token {
	s.mu.RLock()
	t := s.byFile[file]
	s.mu.RUnlock()
	if t != nil {
		return t
	}
	tf, err := decodeTokenFile(file)
	if err != nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bySecret[tf.Token]
}

// tokenByRef finds a token by token file or by UID (the control API accepts either).
func (s *Sim) tokenByRef(ref string) *token {
	s.mu.RLock()
	t := s.byUID[ref]
	s.mu.RUnlock()
	if t != nil {
		return t
	}
	return s.tokenByFile(ref)
}

// mustToken is tokenByFile for the Go API, whose callers pass token files they got from
// AddToken or Generate; an unknown one is a bug in the test, hence the panic.
func (s *Sim) mustToken(file string) *token {
	t := s.tokenByFile(file)
	if t == nil {
		panic("applesim: unknown token file")
	}
	return t
}

// findToken is mustToken for methods that return an error.
func (s *Sim) findToken(file string) (*token, error) {
	t := s.tokenByFile(file)
	if t == nil {
		return nil, fmt.Errorf("applesim: unknown token file")
	}
	return t, nil
}

// UID returns the uId of a token.
func (s *Sim) UID(tokenFile string) string { return s.mustToken(tokenFile).uid }

// TokenFiles returns the token files of all tokens in creation order.
func (s *Sim) TokenFiles() []string {
	var out []string
	for _, t := range s.tokens() {
		out = append(out, t.file)
	}
	return out
}

// SetMDMInfo sets mdmInfo as if another device-management server had claimed the token with
// POST client/config; every later response echoes it.
func (s *Sim) SetMDMInfo(tokenFile string, id, name, metadata string) {
	t := s.mustToken(tokenFile)
	t.mu.Lock()
	t.mdm = &wireMDMInfo{ID: id, Name: name, Metadata: metadata}
	t.mu.Unlock()
}

// MDMInfo returns the token's mdmInfo (empty strings when none is set).
func (s *Sim) MDMInfo(tokenFile string) (id, name, metadata string) {
	t := s.mustToken(tokenFile)
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.mdm == nil {
		return "", "", ""
	}
	return t.mdm.ID, t.mdm.Name, t.mdm.Metadata
}

// SetRevoked revokes (or restores) a token: authenticated requests then fail with 9625/401.
func (s *Sim) SetRevoked(tokenFile string, revoked bool) {
	t := s.mustToken(tokenFile)
	t.mu.Lock()
	t.revoked = revoked
	t.mu.Unlock()
}

// SetExpiresAt moves a token's server-side expiry (the token file keeps its expDate, as a
// file downloaded earlier would). Past expiry, requests fail with 9621/401.
func (s *Sim) SetExpiresAt(tokenFile string, t time.Time) {
	tk := s.mustToken(tokenFile)
	tk.mu.Lock()
	tk.expiresAt = t.UTC().Truncate(time.Second)
	tk.mu.Unlock()
}

// SetRequestsPerSecond sets the rate limit of one token (0 disables it); see
// Options.RequestsPerSecond.
func (s *Sim) SetRequestsPerSecond(tokenFile string, rps int) {
	t := s.mustToken(tokenFile)
	t.fmu.Lock()
	t.limiter = rateLimiter{rps: rps}
	t.fmu.Unlock()
}

// envelope returns the common response fields. Callers hold t.mu (read or write).
func (t *token) envelope(s *Sim, now time.Time) envelope {
	e := envelope{UID: t.uid, MDMInfo: t.mdm}
	if !s.opts.ExpirationDateOnlyWithin15Days || t.expiresAt.Sub(now) <= 15*24*time.Hour {
		e.TokenExpirationDate = t.expiresAt.UTC().Format(expDateLayout)
	}
	return e
}
