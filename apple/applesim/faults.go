package applesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind selects what an injected fault does to a request.
type FaultKind int

// Fault kinds. Each answers in place of the endpoint, so the request has no effect, except
// FaultSlow, which only delays the request (and then lets later faults or the endpoint answer).
const (
	// FaultUnavailable503 answers HTTP 503 with a non-JSON body, like a load balancer under
	// heavy load (doc/apple-api.md §9.6), and Retry-After when set.
	FaultUnavailable503 FaultKind = iota + 1
	// FaultTooMany429 answers HTTP 429 + 9646, with Retry-After when set.
	FaultTooMany429
	// FaultServerError500 answers HTTP 500 + 9603, with Retry-After when set.
	FaultServerError500
	// FaultMalformedJSON answers HTTP 200 with a truncated JSON body.
	FaultMalformedJSON
	// FaultSlow delays the answer by Delay.
	FaultSlow
	// FaultInvalidToken answers 9622 as for an unknown token: HTTP 200, or 401 with
	// InvalidTokenHTTP401.
	FaultInvalidToken
	// FaultMaintenance9729 answers HTTP 503 + 9729 (service temporarily unavailable), with
	// Retry-After when set.
	FaultMaintenance9729
	// FaultExpired answers 9621/401 as for an expired token (see also SetExpiresAt).
	FaultExpired
	// FaultRevoked answers 9625/401 as for a revoked token (see also SetRevoked).
	FaultRevoked
)

var faultNames = map[FaultKind]string{
	FaultUnavailable503:  "unavailable503",
	FaultTooMany429:      "tooMany429",
	FaultServerError500:  "serverError500",
	FaultMalformedJSON:   "malformedJSON",
	FaultSlow:            "slow",
	FaultInvalidToken:    "invalidToken",
	FaultMaintenance9729: "maintenance9729",
	FaultExpired:         "expired",
	FaultRevoked:         "revoked",
}

func (k FaultKind) String() string {
	if n, ok := faultNames[k]; ok {
		return n
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// MarshalText renders the kind by name (used by the control API).
func (k FaultKind) MarshalText() ([]byte, error) {
	if _, ok := faultNames[k]; !ok {
		return nil, fmt.Errorf("applesim: unknown fault kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText accepts a kind's name, case-insensitively.
func (k *FaultKind) UnmarshalText(b []byte) error {
	for kind, name := range faultNames {
		if strings.EqualFold(name, string(b)) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("applesim: unknown fault kind %q", b)
}

// Fault is an injected failure for the authenticated requests of one token.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// RetryAfterSeconds sends "Retry-After: N" with 503, 500, 429 and 9729 answers.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// RetryAfterDate sends Retry-After as an HTTP date instead.
	RetryAfterDate time.Time `json:"retryAfterDate,omitzero"`
	// Count limits the fault to the next N requests of the token; 0 means until Until or
	// until cleared.
	Count int `json:"count,omitempty"`
	// Until ends the fault at this time (by the simulator's clock); zero means no end.
	Until time.Time `json:"until,omitzero"`
	// Delay is FaultSlow's delay.
	Delay time.Duration `json:"delay,omitempty"`
	// InvalidTokenHTTP401 makes FaultInvalidToken answer HTTP 401 instead of 200.
	InvalidTokenHTTP401 bool `json:"invalidTokenHTTP401,omitempty"`
}

// faultState is a fault with its remaining count.
type faultState struct {
	Fault
	remaining int // meaningful when Count > 0
}

// SetFault adds a fault to a token's authenticated requests. Faults apply in the order they
// were set: a request meets each active slow fault in turn, adding its delay, until the first
// active fault of another kind, which answers it; faults after that one are not met. Each
// fault a request meets uses one of its Count.
func (s *Sim) SetFault(tokenFile string, f Fault) {
	t := s.mustToken(tokenFile)
	t.fmu.Lock()
	t.faults = append(t.faults, &faultState{Fault: f, remaining: f.Count})
	t.fmu.Unlock()
}

// ClearFaults removes all faults of a token.
func (s *Sim) ClearFaults(tokenFile string) {
	t := s.mustToken(tokenFile)
	t.fmu.Lock()
	t.faults = nil
	t.fmu.Unlock()
}

// Faults returns the faults still active on a token, with Count set to what remains.
func (s *Sim) Faults(tokenFile string) []Fault {
	t := s.mustToken(tokenFile)
	now := s.now()
	t.fmu.Lock()
	defer t.fmu.Unlock()
	var out []Fault
	for _, f := range t.faults {
		if f.active(now) {
			g := f.Fault
			if g.Count > 0 {
				g.Count = f.remaining
			}
			out = append(out, g)
		}
	}
	return out
}

func (f *faultState) active(now time.Time) bool {
	if f.Count > 0 && f.remaining <= 0 {
		return false
	}
	return f.Until.IsZero() || now.Before(f.Until)
}

// takeFaults consumes the faults a request meets: the sum of the slow delays and the first
// answering fault (nil if none).
func (t *token) takeFaults(now time.Time) (delay time.Duration, answer *Fault) {
	t.fmu.Lock()
	defer t.fmu.Unlock()
	keep := t.faults[:0]
	for _, f := range t.faults {
		if !f.active(now) {
			continue // expired faults are dropped
		}
		if answer == nil {
			if f.Kind == FaultSlow {
				delay += f.Delay
				f.remaining--
			} else {
				g := f.Fault
				answer = &g
				f.remaining--
			}
		}
		if f.active(now) {
			keep = append(keep, f)
		}
	}
	clear(t.faults[len(keep):])
	t.faults = keep
	return delay, answer
}

// applyFaults applies the token's faults to a request. It reports whether a fault answered.
func (s *Sim) applyFaults(w *respWriter, r *http.Request, t *token) bool {
	delay, f := t.takeFaults(s.now())
	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
		}
	}
	if f == nil {
		return false
	}
	retryAfter := func() {
		switch {
		case !f.RetryAfterDate.IsZero():
			w.Header().Set("Retry-After", f.RetryAfterDate.UTC().Format(http.TimeFormat))
		case f.RetryAfterSeconds > 0:
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterSeconds))
		}
	}
	switch f.Kind {
	case FaultUnavailable503:
		retryAfter()
		w.errNum = 0
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n"))
	case FaultTooMany429:
		retryAfter()
		writeError(w, errTooManyRequests, nil)
	case FaultServerError500:
		retryAfter()
		writeError(w, errInternal, nil)
	case FaultMaintenance9729:
		retryAfter()
		writeError(w, errServiceUnavailable, nil)
	case FaultInvalidToken:
		writeInvalidToken(w, f.InvalidTokenHTTP401)
	case FaultExpired:
		writeError(w, errTokenExpired, nil)
	case FaultRevoked:
		writeError(w, errTokenRevoked, nil)
	case FaultMalformedJSON:
		b, _ := json.Marshal(map[string]any{"uId": t.uid, "versionId": "", "assets": []any{map[string]string{"adamId": "0"}}})
		writeRaw(w, http.StatusOK, b[:len(b)/2])
	default:
		return false
	}
	return true
}

// rateLimiter is a token bucket of rps requests per second with a burst of rps.
type rateLimiter struct {
	rps    int
	tokens float64
	last   time.Time
}

// allowRequest takes one request from the token's rate limit.
func (t *token) allowRequest(now time.Time) bool {
	t.fmu.Lock()
	defer t.fmu.Unlock()
	l := &t.limiter
	if l.rps <= 0 {
		return true
	}
	if l.last.IsZero() {
		l.tokens = float64(l.rps)
	} else if el := now.Sub(l.last).Seconds(); el > 0 {
		l.tokens = min(float64(l.rps), l.tokens+el*float64(l.rps))
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
