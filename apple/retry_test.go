package apple

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// throttleAnswer returns a handler answering status with a Retry-After header
// (if non-empty) and, for number ≠ 0, an ErrorResponse; otherwise an HTML body
// as a load balancer would send.
func throttleAnswer(status, number int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		if number != 0 {
			appleError(status, number, "throttled")(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><body>Service Unavailable</body></html>"))
	}
}

// TestThrottleHoldTimes checks the hold each kind of throttled answer yields
// (DESIGN R3), with the default MaxInlineWait of 0: the call returns a
// *ThrottleError at once after one request.
func TestThrottleHoldTimes(t *testing.T) {
	clock := newFakeClock()
	date := clock.Now().Add(10 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    time.Duration
		number  int
		status  int
	}{
		{"503 Retry-After 120", throttleAnswer(503, 0, "120"), 120 * time.Second, 0, 503},
		{"503 Retry-After HTTP date", throttleAnswer(503, 0, date.Format(http.TimeFormat)), 10 * time.Minute, 0, 503},
		{"503 Retry-After beyond the cap", throttleAnswer(503, 0, "86400"), time.Hour, 0, 503},
		{"503 garbled Retry-After", throttleAnswer(503, 0, "in a while"), time.Second, 0, 503},
		{"503 without Retry-After", throttleAnswer(503, 0, ""), time.Second, 0, 503},
		{"429 9646 without header", throttleAnswer(429, 9646, ""), time.Second, 9646, 429},
		{"429 9646 Retry-After 30", throttleAnswer(429, 9646, "30"), 30 * time.Second, 9646, 429},
		{"500 9603 Retry-After 60", throttleAnswer(500, 9603, "60"), time.Minute, 9603, 500},
		{"503 9729 Retry-After 5", throttleAnswer(503, 9729, "5"), 5 * time.Second, 9729, 503},
		{"502 proxy", throttleAnswer(502, 0, ""), time.Second, 0, 502},
		{"200 9646 in body", throttleAnswer(200, 9646, ""), time.Second, 9646, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /client/config", tt.handler)
			c := f.client(Config{Now: clock.Now})
			c.jitter = func(d time.Duration) time.Duration { return d } // the ceiling, to assert it
			tok := testToken(t)
			_, err := c.ClientConfig(context.Background(), tok)
			var te *ThrottleError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *ThrottleError", err)
			}
			if got := te.Until.Sub(clock.Now()); got != tt.want {
				t.Errorf("hold = %v, want %v (%s)", got, tt.want, te.Reason)
			}
			if te.HTTPStatus != tt.status || te.Number != tt.number || te.Scope != ScopeAccount || te.Local {
				t.Errorf("ThrottleError = %+v", te)
			}
			if until, ok := ThrottledUntil(err); !ok || !until.Equal(te.Until) {
				t.Errorf("ThrottledUntil = %v, %v", until, ok)
			}
			if n := len(f.requests("GET /client/config")); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if held, ok := c.HeldUntil(tok); !ok || !held.Equal(te.Until) {
				t.Errorf("HeldUntil = %v, %v", held, ok)
			}
		})
	}
}

// TestHeldTokenSendsNothing proves the defense in depth of R3: while a token
// is held, every call for it fails locally without a request; other tokens
// carry on; once the hold ends, requests flow again.
func TestHeldTokenSendsNothing(t *testing.T) {
	f := newFake(t)
	clock := newFakeClock()
	c := f.client(Config{Now: clock.Now})
	held, free := testToken(t), testTokenWith(t, "another-token-inner-value")
	f.handle("GET /assets", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+held.Bearer() && clock.Now().Before(time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)) {
			throttleAnswer(503, 0, "120")(w, r)
			return
		}
		writeJSONTest(w, 200, map[string]any{"assets": []any{}, "versionId": "v"})
	})
	f.handle("POST /assets/associate", respond(200, map[string]any{"eventId": "e"}))
	f.handle("GET /status", respond(200, map[string]any{"eventStatus": "COMPLETE"}))
	ctx := context.Background()
	if _, err := collect(c.Assets(ctx, held, AssetsQuery{})); !errors.Is(err, ErrThrottled) {
		t.Fatalf("first call: %v", err)
	}
	before := len(f.requests(""))
	req := ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}}
	for range 3 {
		_, err := collect(c.Assets(ctx, held, AssetsQuery{}))
		te, ok := errors.AsType[*ThrottleError](err)
		if !ok || !te.Local || te.Until.Sub(clock.Now()) > 120*time.Second {
			t.Fatalf("held call: err = %v", err)
		}
		if _, err := c.Associate(ctx, held, req); !errors.Is(err, ErrThrottled) {
			t.Fatalf("held associate: %v", err)
		}
		if _, err := c.EventStatus(ctx, held, "e"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("held status: %v", err)
		}
		clock.Advance(30 * time.Second)
	}
	if after := len(f.requests("")); after != before {
		t.Fatalf("%d requests sent for a held token", after-before)
	}
	// Another account carries on.
	if _, err := collect(c.Assets(ctx, free, AssetsQuery{})); err != nil {
		t.Fatalf("other token: %v", err)
	}
	clock.Advance(31 * time.Second) // past the 120 s hold
	if _, err := collect(c.Assets(ctx, held, AssetsQuery{})); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
	if _, ok := c.HeldUntil(held); ok {
		t.Error("still held after a successful call")
	}
	// ClearHold lifts a hold early.
	f.handle("GET /client/config", throttleAnswer(503, 0, "600"))
	_, _ = c.ClientConfig(ctx, held)
	c.ClearHold(held)
	if _, ok := c.HeldUntil(held); ok {
		t.Error("ClearHold did not clear")
	}
}

// TestExponentialBackoff: consecutive 429/9646 answers without Retry-After
// double the hold ceiling; a success resets it.
func TestExponentialBackoff(t *testing.T) {
	f := newFake(t)
	clock := newFakeClock()
	c := f.client(Config{Now: clock.Now, BackoffBase: 2 * time.Second, MaxRetryAfter: 20 * time.Second})
	c.jitter = func(d time.Duration) time.Duration { return d }
	tok := testToken(t)
	var ok atomic.Bool
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		if ok.Load() {
			writeJSONTest(w, 200, map[string]any{"uId": "u"})
			return
		}
		throttleAnswer(429, 9646, "")(w, r)
	})
	ctx := context.Background()
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 20 * time.Second, 20 * time.Second} {
		_, err := c.ClientConfig(ctx, tok)
		te, isTE := errors.AsType[*ThrottleError](err)
		if !isTE {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := te.Until.Sub(clock.Now()); got != want {
			t.Errorf("call %d: hold %v, want %v", i, got, want)
		}
		clock.Advance(te.Until.Sub(clock.Now()))
	}
	ok.Store(true)
	if _, err := c.ClientConfig(ctx, tok); err != nil {
		t.Fatal(err)
	}
	ok.Store(false)
	_, err := c.ClientConfig(ctx, tok)
	if te, _ := errors.AsType[*ThrottleError](err); te == nil || te.Until.Sub(clock.Now()) != 2*time.Second {
		t.Errorf("after a success the backoff restarts at the base: %v", err)
	}

	// With real jitter, every hold lies within [0, ceiling].
	c2 := f.client(Config{Now: clock.Now, BackoffBase: time.Second})
	for i := range 5 {
		_, err := c2.ClientConfig(ctx, tok)
		te, _ := errors.AsType[*ThrottleError](err)
		if te == nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if d := te.Until.Sub(clock.Now()); d < 0 || d > backoffCeiling(i+1, time.Second, time.Hour) {
			t.Errorf("call %d: jittered hold %v outside [0, %v]", i, d, backoffCeiling(i+1, time.Second, time.Hour))
		}
		clock.Advance(time.Hour)
	}
}

// TestInlineRetryBounded: with MaxInlineWait above the hold, the client waits
// and retries inside the call, in a loop bounded by MaxAttempts.
func TestInlineRetryBounded(t *testing.T) {
	f := newFake(t)
	c := f.client(Config{MaxInlineWait: time.Second, BackoffBase: 5 * time.Millisecond, MaxAttempts: 4})
	tok := testToken(t)
	var calls atomic.Int32
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			throttleAnswer(503, 0, "")(w, r)
			return
		}
		writeJSONTest(w, 200, map[string]any{"uId": "u"})
	})
	if _, err := c.ClientConfig(context.Background(), tok); err != nil {
		t.Fatalf("two throttles then success: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	// Always throttled: exactly MaxAttempts requests, then a ThrottleError.
	calls.Store(-1000)
	_, err := c.ClientConfig(context.Background(), tok)
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v", err)
	}
	if n := calls.Load() + 1000; n != 4 {
		t.Errorf("%d requests, want MaxAttempts = 4", n)
	}
	// Retry-After: 0 is retried at once, also bounded.
	c3 := f.client(Config{MaxAttempts: 3})
	calls.Store(-1000)
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		throttleAnswer(503, 9729, "0")(w, r)
	})
	if _, err := c3.ClientConfig(context.Background(), testToken(t)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v", err)
	}
	if n := calls.Load() + 1000; n != 3 {
		t.Errorf("Retry-After 0: %d requests, want 3", n)
	}
	// A hold longer than MaxInlineWait returns at once.
	calls.Store(0)
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		throttleAnswer(503, 0, "120")(w, r)
	})
	start := time.Now()
	if _, err := c.ClientConfig(context.Background(), testToken(t)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 30*time.Second || calls.Load() != 1 {
		t.Errorf("long hold: %d requests in %v; want 1, at once", calls.Load(), el)
	}
}

// TestCancelStopsWaitAtOnce: a call waiting inline for Retry-After: 120
// returns as soon as its context is cancelled.
func TestCancelStopsWaitAtOnce(t *testing.T) {
	f := newFake(t)
	f.handle("GET /client/config", throttleAnswer(503, 0, "120"))
	c := f.client(Config{MaxInlineWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.ClientConfig(ctx, testToken(t))
		done <- err
	}()
	// Wait until the request was answered, then cancel.
	for len(f.requests("GET /client/config")) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if el := time.Since(start); el > 60*time.Second {
			t.Errorf("returned after %v, not at once", el)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("cancel did not stop the 120 s wait")
	}
	// A later call for the held token waits inline too (the hold is within
	// MaxInlineWait), sends nothing, and is stopped by its deadline.
	before := len(f.requests(""))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err := c.ClientConfig(ctx2, testToken(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("held call: err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 60*time.Second {
		t.Errorf("held call returned after %v", el)
	}
	if n := len(f.requests("")) - before; n != 0 {
		t.Errorf("%d requests sent for a held token", n)
	}
}

// TestNetworkErrors: GETs are retried after a network error (bounded); POSTs
// that may have reached Apple are not, and come back transient; POSTs that
// provably never left (connection refused) are retried.
func TestNetworkErrors(t *testing.T) {
	f := newFake(t)
	var drops atomic.Int32
	hijackClose := func(w http.ResponseWriter) {
		hj, _ := w.(http.Hijacker)
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		if drops.Add(-1) >= 0 {
			hijackClose(w)
			return
		}
		writeJSONTest(w, 200, map[string]any{"uId": "u"})
	})
	f.handle("POST /assets/associate", func(w http.ResponseWriter, r *http.Request) { hijackClose(w) })
	c := f.client(Config{NetworkBackoff: time.Millisecond, MaxAttempts: 4})
	tok := testToken(t)
	ctx := context.Background()

	drops.Store(2)
	if _, err := c.ClientConfig(ctx, tok); err != nil {
		t.Fatalf("GET after 2 dropped connections: %v", err)
	}
	if n := len(f.requests("GET /client/config")); n != 3 {
		t.Errorf("%d GET requests, want 3", n)
	}
	drops.Store(100)
	_, err := c.ClientConfig(ctx, tok)
	var tre *TransportError
	if !errors.As(err, &tre) || tre.Attempts != 4 || !IsTransient(err) {
		t.Fatalf("GET always dropped: %v", err)
	}

	_, err = c.Associate(ctx, tok, ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}})
	if !errors.As(err, &tre) || tre.Attempts != 1 || !tre.MayHaveReachedApple || !IsTransient(err) {
		t.Fatalf("POST dropped: %v", err)
	}
	if n := len(f.requests("POST /assets/associate")); n != 1 {
		t.Errorf("POST sent %d times, want 1", n)
	}
	assertNoSecret(t, err.Error(), tok)

	// Connection refused: nothing reached anyone, so even a POST is retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dead := New(Config{BaseURL: "http://" + addr + "/mdm/v2", NetworkBackoff: time.Millisecond, MaxAttempts: 3})
	_, err = dead.Associate(ctx, tok, ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}})
	if !errors.As(err, &tre) || tre.Attempts != 3 || tre.MayHaveReachedApple {
		t.Fatalf("refused POST: %v", err)
	}
}

// TestNoRetryOfValidationErrors: 4xx answers are final.
func TestNoRetryOfValidationErrors(t *testing.T) {
	f := newFake(t)
	f.handle("POST /assets/associate", appleError(400, 9707, "The asset isn't device assignable."))
	c := f.client(Config{MaxInlineWait: time.Hour, MaxAttempts: 5})
	_, err := c.Associate(context.Background(), testToken(t), ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}})
	if !errors.Is(err, ErrNotDeviceAssignable) || IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests("POST /assets/associate")); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestServiceConfigThrottleIsNotAnAccountHold: the unauthenticated service
// config has its own hold scope.
func TestServiceConfigThrottleScope(t *testing.T) {
	f := newFake(t)
	f.handle("GET /service/config", throttleAnswer(503, 0, strconv.Itoa(300)))
	c := f.client(Config{})
	_, err := c.ServiceConfig(context.Background())
	te, ok := errors.AsType[*ThrottleError](err)
	if !ok || te.Scope != ScopeService {
		t.Fatalf("err = %v", err)
	}
	if _, ok := ThrottledUntil(err); ok {
		t.Error("a service-config throttle must not hold an account")
	}
	f.handle("GET /client/config", respond(200, map[string]any{"uId": "u"}))
	if _, err := c.ClientConfig(context.Background(), testToken(t)); err != nil {
		t.Errorf("account calls continue while service config is throttled: %v", err)
	}
}
