package apple

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// synthPages is a synthetic listing for paginate: n pages; page i's version is
// "v<i>" (so VersionID propagation is visible).
type synthPages struct {
	n        int
	active   atomic.Int32 // fetches in progress
	maxSeen  atomic.Int32
	fetched  sync.Map // index → count
	delay    time.Duration
	failAt   int // index that fails; -1 none
	next     func(i int) (int, bool)
	total    func(i int) int
	blockAll bool // fetches of pages ≥ 2 block until cancelled
}

func (s *synthPages) fetch(ctx context.Context, i int) (*AssignmentsPage, error) {
	cur := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		m := s.maxSeen.Load()
		if cur <= m || s.maxSeen.CompareAndSwap(m, cur) {
			break
		}
	}
	v, _ := s.fetched.LoadOrStore(i, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	if s.blockAll && i >= 2 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if i == s.failAt {
		return nil, &Error{Number: 9650, HTTPStatus: 400, Message: "bad page"}
	}
	p := &AssignmentsPage{PageInfo: PageInfo{CurrentPageIndex: i, TotalPages: s.n, VersionID: fmt.Sprintf("v%d", i), PageVersionID: fmt.Sprintf("v%d", i)},
		Assignments: []Assignment{{AdamID: strconv.Itoa(i)}}}
	if s.total != nil {
		p.TotalPages = s.total(i)
	}
	next, ok := i+1, i+1 < s.n
	if s.next != nil {
		next, ok = s.next(i)
	}
	p.HasNext, p.NextPageIndex = ok, next
	if !ok {
		p.NextPageIndex = 0
	}
	return p, nil
}

func pageIndexes(pages []*AssignmentsPage) []int {
	var out []int
	for _, p := range pages {
		out = append(out, p.CurrentPageIndex)
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPaginateInOrder(t *testing.T) {
	for _, parallel := range []int{0, 1, 2, 5, 9} {
		t.Run(fmt.Sprintf("parallel=%d", parallel), func(t *testing.T) {
			s := &synthPages{n: 23, failAt: -1, delay: time.Millisecond}
			pages, err := collect(paginate(context.Background(), 0, parallel, s.fetch))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(seq(23), pageIndexes(pages)); diff != "" {
				t.Errorf("pages mismatch (-want +got):\n%s", diff)
			}
			for _, p := range pages {
				if p.VersionID != "v0" {
					t.Fatalf("page %d VersionID = %q, want the first page's v0", p.CurrentPageIndex, p.VersionID)
				}
				if p.PageVersionID != fmt.Sprintf("v%d", p.CurrentPageIndex) {
					t.Fatalf("page %d PageVersionID = %q", p.CurrentPageIndex, p.PageVersionID)
				}
			}
			wantMax := int32(min(max(parallel, 1), MaxParallelPages))
			if got := s.maxSeen.Load(); got > wantMax {
				t.Errorf("%d concurrent fetches, limit %d", got, wantMax)
			}
			s.fetched.Range(func(k, v any) bool {
				if n := v.(*atomic.Int32).Load(); n != 1 {
					t.Errorf("page %v fetched %d times", k, n)
				}
				return true
			})
		})
	}
}

func TestPaginateParallelOverlaps(t *testing.T) {
	s := &synthPages{n: 20, failAt: -1, delay: 20 * time.Millisecond}
	if _, err := collect(paginate(context.Background(), 0, 5, s.fetch)); err != nil {
		t.Fatal(err)
	}
	if got := s.maxSeen.Load(); got < 2 || got > 5 {
		t.Errorf("max concurrency %d, want 2..5", got)
	}
}

// TestPaginateBreakStopsPrefetchers: breaking out of the loop returns only
// after every prefetcher has stopped — no goroutine outlives the iteration.
func TestPaginateBreakStopsPrefetchers(t *testing.T) {
	s := &synthPages{n: 50, failAt: -1, blockAll: true}
	for p, err := range paginate(context.Background(), 0, 5, s.fetch) {
		if err != nil {
			t.Fatal(err)
		}
		if p.CurrentPageIndex == 1 {
			// Page 1 came from the prefetchers; pages 2.. are being fetched and block.
			deadline := time.Now().Add(10 * time.Second)
			for s.active.Load() < 2 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := s.active.Load(); n < 2 {
				t.Fatalf("only %d prefetchers running; the test proves nothing", n)
			}
			break
		}
	}
	if n := s.active.Load(); n != 0 {
		t.Errorf("%d fetches still running after break", n)
	}
	// Sequential: breaking stops fetching.
	s2 := &synthPages{n: 50, failAt: -1}
	count := 0
	for range paginate(context.Background(), 0, 1, s2.fetch) {
		count++
		if count == 3 {
			break
		}
	}
	n := 0
	s2.fetched.Range(func(k, v any) bool { n++; return true })
	if n != 3 {
		t.Errorf("sequential: %d pages fetched for 3 consumed", n)
	}
}

func TestPaginateErrors(t *testing.T) {
	for _, parallel := range []int{1, 5} {
		s := &synthPages{n: 10, failAt: 4}
		var got []int
		var gotErr error
		for p, err := range paginate(context.Background(), 0, parallel, s.fetch) {
			if err != nil {
				gotErr = err
				break
			}
			got = append(got, p.CurrentPageIndex)
		}
		if !errors.Is(gotErr, ErrBadPageIndex) {
			t.Errorf("parallel=%d: err = %v", parallel, gotErr)
		}
		if diff := cmp.Diff([]int{0, 1, 2, 3}, got); diff != "" {
			t.Errorf("parallel=%d: pages before the error mismatch (-want +got):\n%s", parallel, diff)
		}
		if n := s.active.Load(); n != 0 {
			t.Errorf("parallel=%d: %d fetches still running", parallel, n)
		}
	}
	// A nextPageIndex that does not advance is an error, not an endless loop.
	for _, parallel := range []int{1, 5} {
		s := &synthPages{n: 10, failAt: -1, next: func(i int) (int, bool) { return 1, true }}
		_, err := collect(paginate(context.Background(), 0, parallel, s.fetch))
		if err == nil {
			t.Errorf("parallel=%d: looping nextPageIndex accepted", parallel)
		}
	}
	// The iterator yields the error of the first page too.
	s := &synthPages{n: 3, failAt: 0}
	if _, err := collect(paginate(context.Background(), 0, 5, s.fetch)); !errors.Is(err, ErrBadPageIndex) {
		t.Errorf("first page error: %v", err)
	}
	// A cancelled context ends the listing with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = &synthPages{n: 3, failAt: -1, delay: time.Second}
	if _, err := collect(paginate(ctx, 0, 3, s.fetch)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestPaginateFollowsNextPageIndex: the end is the absence of nextPageIndex,
// whatever totalPages said; totalPages may grow during the listing.
func TestPaginateFollowsNextPageIndex(t *testing.T) {
	for _, parallel := range []int{1, 5} {
		// totalPages claims 3, but pages keep coming until 6.
		s := &synthPages{n: 7, failAt: -1, total: func(i int) int { return min(i+3, 7) }}
		pages, err := collect(paginate(context.Background(), 0, parallel, s.fetch))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seq(7), pageIndexes(pages)); diff != "" {
			t.Errorf("parallel=%d growing listing (-want +got):\n%s", parallel, diff)
		}
		// nextPageIndex jumps over pages: follow it.
		s = &synthPages{n: 10, failAt: -1, next: func(i int) (int, bool) { return i + 3, i+3 < 10 }}
		pages, err = collect(paginate(context.Background(), 0, parallel, s.fetch))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{0, 3, 6, 9}, pageIndexes(pages)); diff != "" {
			t.Errorf("parallel=%d jumping listing (-want +got):\n%s", parallel, diff)
		}
		// StartPage resumes.
		s = &synthPages{n: 5, failAt: -1}
		pages, err = collect(paginate(context.Background(), 3, parallel, s.fetch))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{3, 4}, pageIndexes(pages)); diff != "" {
			t.Errorf("parallel=%d resumed listing (-want +got):\n%s", parallel, diff)
		}
	}
}

// TestAssignmentsParallelOverHTTP: Parallel fetches really overlap over HTTP,
// stay within 5, and all share the first page's versionId.
func TestAssignmentsParallelOverHTTP(t *testing.T) {
	f := newFake(t)
	var inflight, maxInflight atomic.Int32
	const pages = 12
	f.handle("GET /assignments", func(w http.ResponseWriter, r *http.Request) {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			m := maxInflight.Load()
			if cur <= m || maxInflight.CompareAndSwap(m, cur) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		i, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		if i >= pages {
			appleError(400, 9650, "bad page")(w, r)
			return
		}
		body := map[string]any{"assignments": []map[string]string{{"adamId": strconv.Itoa(i), "pricingParam": "STDQ", "serialNumber": "S"}},
			"currentPageIndex": i, "size": 1, "totalPages": pages, "versionId": "ver-" + strconv.Itoa(i)}
		if i+1 < pages {
			body["nextPageIndex"] = i + 1
		}
		writeJSONTest(w, 200, body)
	})
	c := f.client(Config{})
	got, err := collect(c.Assignments(context.Background(), testToken(t), AssignmentsQuery{Parallel: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seq(pages), pageIndexes(got)); diff != "" {
		t.Errorf("pages mismatch (-want +got):\n%s", diff)
	}
	for _, p := range got {
		if p.VersionID != "ver-0" {
			t.Errorf("page %d VersionID %q", p.CurrentPageIndex, p.VersionID)
		}
	}
	if m := maxInflight.Load(); m < 2 || m > 5 {
		t.Errorf("max concurrent page requests %d, want 2..5", m)
	}
}
