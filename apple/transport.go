package apple

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// request is one logical call; exchange may send it several times.
type request struct {
	method     string
	path       string // API path for names and metrics ("/assets")
	url        string // full URL without query
	query      string // encoded query, may be empty
	body       []byte // JSON body of POSTs
	tok        *Token // nil: unauthenticated
	cookie     bool   // send the token as the itvt cookie instead of the Authorization header (lookup)
	scope      string // ScopeAccount, ScopeService, ScopeLookup
	holdKey    string
	idempotent bool // safe to resend after a network error (GETs)
	limiter    *rate.Limiter
}

func (r *request) name() string { return r.method + " " + r.path }

// decodeFunc decodes a 2xx body into the caller's value and returns the
// answer's shared header (nil for answers without one, like the lookup). It
// must not keep references to body: the buffer is reused.
type decodeFunc func(body []byte) (*wireHeader, error)

// answer is one HTTP answer, its body in a pooled buffer.
type answer struct {
	status      int
	header      http.Header
	contentType string
	body        *bytes.Buffer
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (a *answer) release() {
	if a.body != nil && a.body.Cap() <= 8<<20 {
		a.body.Reset()
		bufPool.Put(a.body)
	}
	a.body = nil
}

var errBodyTooLarge = errors.New("answer body exceeds Config.MaxResponseBytes")

// exchange sends r until it gets a definitive answer, and decodes a 2xx answer
// with decode. It implements the retry rules in one loop (never recursion):
//
//   - A token held by an earlier throttled answer is not called before the
//     hold ends: short holds (≤ MaxInlineWait) are waited for, longer ones
//     return a *ThrottleError without sending anything.
//   - Each request takes a token from the per-token rate limiter.
//   - Throttled answers (429, 5xx, 9646/9729/9644 with any status) set the hold
//     (Retry-After, else exponential backoff with full jitter) and are retried
//     inline only when the wait is ≤ MaxInlineWait and attempts remain;
//     otherwise *ThrottleError.
//   - Network errors are retried with backoff for idempotent requests, and for
//     any request that provably never left (dial errors); other POSTs return a
//     *TransportError marked MayHaveReachedApple.
//   - Other error answers (4xx validation, token errors, errors in 2xx bodies)
//     are returned as *Error at once, never retried.
//   - A successful answer carrying another manager's mdmInfo returns a
//     *ClaimedError; the value was decoded all the same.
//
// Every wait selects on ctx.Done, so cancellation returns ctx.Err() at once.
func (c *Client) exchange(ctx context.Context, r *request, decode decodeFunc) error {
	name := r.name()
	maxAttempts := c.cfg.MaxAttempts
	waits := 0
	for attempt := 1; ; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("apple: %s: %w", name, err)
		}
		// The hold is checked before the limiter (a held token fails fast)
		// and again after it and the wait for a place in flight, so that no
		// request leaves for a token that became held while this one waited.
		if waited, err := c.awaitHold(ctx, r, &waits); err != nil {
			return err
		} else if waited {
			continue
		}
		if r.limiter != nil {
			if err := r.limiter.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("apple: %s: %w", name, ctx.Err())
				}
				return fmt.Errorf("apple: %s: waiting for the request rate limiter: %w", name, err)
			}
		}
		if err := c.enter(ctx); err != nil {
			return fmt.Errorf("apple: %s: waiting for a place among the requests in flight: %w", name, err)
		}
		if waited, err := c.awaitHold(ctx, r, &waits); err != nil {
			c.leave()
			return err
		} else if waited {
			c.leave()
			continue
		}
		start := time.Now()
		ans, err := c.roundTrip(ctx, r)
		dur := time.Since(start)
		c.leave()
		if err != nil {
			c.observe(name, 0, 0, dur)
			if ctx.Err() != nil {
				return fmt.Errorf("apple: %s: %w", name, ctx.Err())
			}
			if errors.Is(err, errBodyTooLarge) {
				return &DecodeError{Endpoint: name, HTTPStatus: ans.status, Err: err}
			}
			safe := r.idempotent || neverSent(err)
			if safe && attempt < maxAttempts {
				d := c.jitter(backoffCeiling(attempt, c.cfg.NetworkBackoff, 30*time.Second))
				c.log.LogAttrs(ctx, slog.LevelDebug, "apple: network error, retrying",
					slog.String("endpoint", name), slog.String("token", r.tok.Fingerprint()),
					slog.Int("attempt", attempt), slog.Duration("wait", d), slog.String("error", err.Error()))
				if err := sleepCtx(ctx, d); err != nil {
					return fmt.Errorf("apple: %s: %w", name, err)
				}
				attempt++
				continue
			}
			return &TransportError{Endpoint: name, Attempts: attempt, MayHaveReachedApple: !neverSent(err), Err: err}
		}

		// Decode: 2xx bodies into the caller's type (which includes the error
		// fields); other bodies leniently as an ErrorResponse.
		var hdr *wireHeader
		var decErr error
		body := ans.body.Bytes()
		if ans.status >= 200 && ans.status <= 299 {
			hdr, decErr = decode(body)
			if decErr != nil {
				hdr = decodeErrorBody(body)
			}
		} else {
			hdr = decodeErrorBody(body)
		}
		num := 0
		if hdr != nil {
			num = int(hdr.ErrorNumber)
		}
		apiErr := c.apiError(r, ans, hdr, len(body))
		ans.release()
		c.observe(name, ans.status, num, dur)
		c.log.LogAttrs(ctx, slog.LevelDebug, "apple request",
			slog.String("endpoint", name), slog.String("token", r.tok.Fingerprint()),
			slog.Int("status", ans.status), slog.Int("errorNumber", num),
			slog.Int("attempt", attempt), slog.Duration("duration", dur))

		if isThrottleStatus(ans.status) || isThrottleNumber(num) {
			// Apple counts Retry-After from its answer, so the hold is dated from when the
			// answer arrived, not from when the request left.
			h := c.recordThrottle(r, ans, num, c.now())
			te := &ThrottleError{Until: h.until, Reason: h.reason, HTTPStatus: ans.status, Number: num,
				Scope: r.scope, Endpoint: name}
			if apiErr != nil {
				te.Err = apiErr
			}
			wait := h.until.Sub(c.now())
			inline := wait <= c.cfg.MaxInlineWait && attempt < maxAttempts
			c.log.LogAttrs(ctx, slog.LevelWarn, "apple: throttled",
				slog.String("endpoint", name), slog.String("token", r.tok.Fingerprint()),
				slog.String("scope", r.scope), slog.Time("until", h.until),
				slog.String("reason", h.reason), slog.Bool("waitingInline", inline))
			if inline {
				if err := sleepCtx(ctx, wait); err != nil {
					return fmt.Errorf("apple: %s: waiting for throttle hold: %w", name, err)
				}
				attempt++
				continue
			}
			return te
		}
		c.holds.succeeded(r.holdKey, c.now()) // a real answer: the backoff streak restarts
		if apiErr != nil {
			if errors.Is(apiErr, ErrLimitExceeded) {
				// doc/apple-api.md §9.6: limits are dynamic; re-read them before the caller splits again.
				c.svc.invalidate()
			}
			return apiErr
		}
		if decErr != nil {
			return &DecodeError{Endpoint: name, HTTPStatus: ans.status, Err: decErr}
		}
		if hdr != nil && c.cfg.MDM.ID != "" && hdr.MDMInfo != nil && hdr.MDMInfo.ID != "" && hdr.MDMInfo.ID != c.cfg.MDM.ID {
			return &ClaimedError{Manager: *hdr.MDMInfo, Ours: c.cfg.MDM.ID, Endpoint: name}
		}
		return nil
	}
}

// awaitHold handles a hold on r's key: none → (false, nil); one within
// MaxInlineWait (and inline waits left) → it waits and returns (true, nil) so
// the caller starts over; otherwise the local *ThrottleError.
func (c *Client) awaitHold(ctx context.Context, r *request, waits *int) (bool, error) {
	now := c.now()
	h, held := c.holds.active(r.holdKey, now)
	if !held {
		return false, nil
	}
	wait := h.until.Sub(now)
	if wait <= c.cfg.MaxInlineWait && *waits < c.cfg.MaxAttempts {
		*waits++
		if err := sleepCtx(ctx, wait); err != nil {
			return false, fmt.Errorf("apple: %s: waiting for throttle hold: %w", r.name(), err)
		}
		return true, nil
	}
	return false, &ThrottleError{Until: h.until, Reason: "held after an earlier answer: " + h.reason,
		HTTPStatus: h.status, Number: h.number, Scope: r.scope, Endpoint: r.name(), Local: true}
}

// apiError builds the *Error for an answer: a non-2xx status, or an
// errorNumber in any body. It returns nil for a clean 2xx answer. Apple's
// message is scrubbed of the token in the unlikely case it echoes it.
func (c *Client) apiError(r *request, ans *answer, hdr *wireHeader, bodyLen int) *Error {
	ok2xx := ans.status >= 200 && ans.status <= 299
	if hdr != nil && hdr.ErrorNumber != 0 {
		return &Error{Number: int(hdr.ErrorNumber), Message: scrub(hdr.ErrorMessage, r.tok), HTTPStatus: ans.status,
			Info: hdr.ErrorInfo, Endpoint: r.name()}
	}
	if ok2xx {
		return nil
	}
	// Never quote a body that is not an Apple ErrorResponse: a proxy's error
	// page could echo the request, Authorization header included.
	msg := http.StatusText(ans.status)
	if hdr != nil && hdr.ErrorMessage != "" {
		msg = scrub(hdr.ErrorMessage, r.tok)
	} else if bodyLen > 0 {
		ct := ans.contentType
		if ct == "" {
			ct = "unknown type"
		}
		msg = fmt.Sprintf("%s (answer without an Apple error body: %s, %d bytes)", msg, ct, bodyLen)
	}
	return &Error{HTTPStatus: ans.status, Message: msg, Endpoint: r.name()}
}

// recordThrottle computes the hold for a throttled answer and records it.
func (c *Client) recordThrottle(r *request, ans *answer, num int, now time.Time) hold {
	ra := ans.header.Get("Retry-After")
	d, fromHeader := parseRetryAfter(ra, now, c.cfg.MaxRetryAfter)
	reason := func(streak int, d time.Duration) string {
		return throttleReason(ans.status, num, truncate(ra, 64), fromHeader, streak, d)
	}
	if fromHeader {
		return c.holds.throttled(r.holdKey, now, d, nil, reason, ans.status, num)
	}
	wait := func(streak int) time.Duration {
		return c.jitter(backoffCeiling(streak, c.cfg.BackoffBase, c.cfg.MaxRetryAfter))
	}
	return c.holds.throttled(r.holdKey, now, 0, wait, reason, ans.status, num)
}

// roundTrip sends one HTTP request and reads the whole answer into a pooled
// buffer (bounded by MaxResponseBytes).
// enter waits for a place among the requests in flight (Config.MaxConcurrent). Waiters are
// served in the order they came (a channel's blocked senders queue up).
func (c *Client) enter(ctx context.Context) error {
	if c.flight == nil {
		return nil
	}
	select {
	case c.flight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave gives a place back (roundTrip has read the whole answer by then).
func (c *Client) leave() {
	if c.flight != nil {
		<-c.flight
	}
}

func (c *Client) roundTrip(ctx context.Context, r *request) (*answer, error) {
	u := r.url
	if r.query != "" {
		u += "?" + r.query
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return &answer{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.tok != nil {
		if r.cookie {
			req.Header.Set("Cookie", "itvt="+r.tok.Bearer())
		} else {
			req.Header.Set("Authorization", "Bearer "+r.tok.Bearer())
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &answer{}, err
	}
	defer resp.Body.Close()
	ans := &answer{status: resp.StatusCode, header: resp.Header, contentType: resp.Header.Get("Content-Type")}
	buf := bufPool.Get().(*bytes.Buffer)
	if n := resp.ContentLength; n > 0 && n <= c.cfg.MaxResponseBytes {
		buf.Grow(int(n) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		buf.Reset()
		bufPool.Put(buf)
		return ans, fmt.Errorf("reading answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if n > c.cfg.MaxResponseBytes {
		buf.Reset()
		bufPool.Put(buf)
		return ans, errBodyTooLarge
	}
	ans.body = buf
	return ans, nil
}

func (c *Client) observe(endpoint string, status, number int, d time.Duration) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(endpoint, status, number, d)
	}
}

// decodeErrorBody reads an ErrorResponse leniently; nil if the body is not a
// JSON object.
func decodeErrorBody(b []byte) *wireHeader {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil
	}
	var h wireHeader
	if err := json.Unmarshal(t, &h); err != nil {
		return nil
	}
	return &h
}

// neverSent reports whether a transport error happened before the request
// could reach the server (connection refused, DNS failure), so that even a
// POST can be resent safely.
func neverSent(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return true
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	return false
}

// sleepCtx waits d or until ctx is done, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scrub removes the token's secrets from text that came from outside.
func scrub(s string, tok *Token) string {
	if tok == nil || s == "" {
		return s
	}
	if b := tok.Bearer(); b != "" && strings.Contains(s, b) {
		s = strings.ReplaceAll(s, b, "[REDACTED]")
	}
	if in := tok.Inner(); len(in) >= 8 && strings.Contains(s, in) {
		s = strings.ReplaceAll(s, in, "[REDACTED]")
	}
	return s
}

// tokenRequest builds the request for an authenticated license API call.
func (c *Client) tokenRequest(ctx context.Context, tok *Token, method, path, query string, body []byte) *request {
	return &request{
		method:     method,
		path:       path,
		url:        c.base + path,
		query:      query,
		body:       body,
		tok:        tok,
		scope:      ScopeAccount,
		holdKey:    holdKey(tok),
		idempotent: method == http.MethodGet,
		limiter:    c.limits.get(tok.Fingerprint(), c.requestRate(ctx)),
	}
}

// errNoToken is returned by every authenticated call given a nil token.
var errNoToken = errors.New("apple: nil content token")

// postJSON sends an authenticated POST with v as body and decodes the answer.
func (c *Client) postJSON(ctx context.Context, tok *Token, path string, v any, decode decodeFunc) error {
	if tok == nil {
		return errNoToken
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("apple: POST %s: encoding request: %w", path, err)
	}
	return c.exchange(ctx, c.tokenRequest(ctx, tok, http.MethodPost, path, "", body), decode)
}

// getJSON sends an authenticated GET and decodes the answer.
func (c *Client) getJSON(ctx context.Context, tok *Token, path, query string, decode decodeFunc) error {
	if tok == nil {
		return errNoToken
	}
	return c.exchange(ctx, c.tokenRequest(ctx, tok, http.MethodGet, path, query, nil), decode)
}

// jsonDecoder is the common decodeFunc for answer types that embed wireHeader.
func jsonDecoder[T any](v *T, hdr func(*T) *wireHeader) decodeFunc {
	return func(b []byte) (*wireHeader, error) {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, err
		}
		return hdr(v), nil
	}
}
