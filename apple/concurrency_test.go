package apple

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Config.MaxConcurrent holds across tokens: with 12 tokens asking at once, Apple never sees more
// than the cap in flight, every call ends, and without a cap the same calls do overlap beyond it
// (so the test would notice a cap that did nothing).
func TestMaxConcurrentCapsRequestsInFlight(t *testing.T) {
	t.Parallel()
	const callers, limit = 12, 3
	for _, tc := range []struct {
		name string
		cap  int
	}{{"capped", limit}, {"uncapped", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var now, peak atomic.Int64
			f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
				n := now.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(30 * time.Millisecond)
				now.Add(-1)
				writeJSONTest(w, 200, map[string]any{"uId": "1", "locationName": "x"})
			})
			c := f.client(Config{MaxConcurrent: tc.cap})
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, callers*2)
			for i := range callers {
				tok := testTokenWith(t, fmt.Sprintf("%s-token-%02d-0123456789abcdef", tc.name, i))
				wg.Go(func() {
					for range 2 {
						if _, err := c.ClientConfig(ctx, tok); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := len(f.requests("GET /client/config")); got != callers*2 {
				t.Fatalf("Apple saw %d requests, want %d", got, callers*2)
			}
			switch p := peak.Load(); {
			case tc.cap > 0 && p > int64(tc.cap):
				t.Errorf("%d requests in flight at once, over the cap of %d", p, tc.cap)
			case tc.cap == 0 && p <= limit:
				t.Errorf("without a cap only %d requests overlapped: the test cannot tell a cap from none", p)
			}
			if n := c.InFlight(); n != 0 {
				t.Errorf("%d places still taken after every call ended", n)
			}
		})
	}
}

// A call waiting for a place gives up when its context ends, and takes none.
func TestMaxConcurrentWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	release := make(chan struct{})
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSONTest(w, 200, map[string]any{"uId": "1"})
	})
	c := f.client(Config{MaxConcurrent: 1})
	first := make(chan error, 1)
	go func() {
		_, err := c.ClientConfig(context.Background(), testTokenWith(t, "first-token-0123456789abcdef"))
		first <- err
	}()
	waitUntil(t, func() bool { return c.InFlight() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ClientConfig(ctx, testTokenWith(t, "second-token-0123456789abcdef"))
	if err == nil || ctx.Err() == nil {
		t.Fatalf("the waiting call ended with %v before its context did", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET /client/config")); n != 1 {
		t.Errorf("Apple saw %d requests, want 1 (the cancelled call must not be sent)", n)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
