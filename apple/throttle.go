package apple

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// parseRetryAfter reads a Retry-After header: delta-seconds or an HTTP date
// (RFC 9110 §10.2.3; all three date formats of http.ParseTime). The wait is
// capped at maxWait; a date in the past means "now". ok is false for a missing
// or garbled header, in which case the caller backs off exponentially.
func parseRetryAfter(v string, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxWait/time.Second) {
			// Overflowing or longer than the cap: the cap.
			return maxWait, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	wait = t.Sub(now)
	if wait < 0 {
		wait = 0
	}
	return min(wait, maxWait), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// backoffCeiling is the upper bound of the n-th consecutive backoff (n ≥ 1):
// base·2^(n−1), capped at maxWait.
func backoffCeiling(n int, base, maxWait time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 40 {
		return maxWait
	}
	d := float64(base) * math.Pow(2, float64(n-1))
	if d >= float64(maxWait) {
		return maxWait
	}
	return time.Duration(d)
}

// fullJitter picks a wait uniformly in [0, ceiling] (the "full jitter" of
// exponential backoff), so that many clients throttled at once spread out.
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// holdTable remembers, per hold key (token fingerprint, or the service/lookup
// scopes), until when Apple asked to be left alone and how many throttled
// answers came in a row (for the exponential backoff). It is what lets the
// client refuse to send a request for a held token (defense in depth for R3).
type holdTable struct {
	mu sync.Mutex
	m  map[string]*hold
}

type hold struct {
	until      time.Time
	reason     string
	status     int
	number     int
	streak     int // consecutive throttled answers
	lastUpdate time.Time
}

func newHoldTable() *holdTable { return &holdTable{m: make(map[string]*hold)} }

// active returns the hold of key if it lasts beyond now.
func (h *holdTable) active(key string, now time.Time) (hold, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.m[key]
	if e == nil || !e.until.After(now) {
		return hold{}, false
	}
	return *e, true
}

// throttled records a throttled answer: it bumps the streak and extends the
// hold to until (a hold is never shortened by a later, shorter answer).
// wait, if non-nil, computes the wait from the new streak (used when Apple gave
// no usable Retry-After); otherwise fixed is used.
func (h *holdTable) throttled(key string, now time.Time, fixed time.Duration, wait func(streak int) time.Duration,
	reason func(streak int, d time.Duration) string, status, number int) hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.m[key]
	if e == nil {
		e = &hold{}
		h.m[key] = e
		h.gcLocked(now)
	}
	e.streak++
	d := fixed
	if wait != nil {
		d = wait(e.streak)
	}
	until := now.Add(d)
	if until.After(e.until) || !e.until.After(now) {
		e.until = until
		e.reason = reason(e.streak, d)
		e.status, e.number = status, number
	}
	e.lastUpdate = now
	return *e
}

// succeeded resets the streak of key after a non-throttled answer.
func (h *holdTable) succeeded(key string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.m[key]; e != nil && !e.until.After(now) {
		delete(h.m, key)
	}
}

// clear forgets key's hold (Client.ClearHold).
func (h *holdTable) clear(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}

// gcLocked drops entries whose hold ended long ago, bounding the table by the
// number of recently throttled keys.
func (h *holdTable) gcLocked(now time.Time) {
	if len(h.m) < 64 {
		return
	}
	for k, e := range h.m {
		if now.Sub(e.until) > time.Hour && now.Sub(e.lastUpdate) > time.Hour {
			delete(h.m, k)
		}
	}
}

// throttleReason describes a hold for ThrottleError.Reason and logs.
func throttleReason(status, number int, header string, fromHeader bool, streak int, d time.Duration) string {
	var cause string
	switch {
	case number != 0 && status != 0:
		cause = fmt.Sprintf("error %d (HTTP %d)", number, status)
	case number != 0:
		cause = fmt.Sprintf("error %d", number)
	default:
		cause = fmt.Sprintf("HTTP %d", status)
	}
	if fromHeader {
		return fmt.Sprintf("%s with Retry-After %q: wait %s", cause, header, d)
	}
	h := "no Retry-After"
	if header != "" {
		h = "unusable Retry-After"
	}
	return fmt.Sprintf("%s, %s: exponential backoff #%d, wait %s", cause, h, streak, d.Round(time.Millisecond))
}
