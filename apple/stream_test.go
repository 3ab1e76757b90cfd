package apple

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"strconv"
	"testing"
)

// TestStreamingKeepsHeapBounded reads 300 pages of 1000 assignments from a
// fake that serves them from one prepared body, forcing a GC every 25 pages:
// the live heap must not grow with the number of pages read (a client that
// accumulated them would hold ~40 MB by the end).
func TestStreamingKeepsHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 300,000 assignments")
	}
	const pages = 300
	f := newFake(t)
	page := samplePage(1000) // {"assignments":[...],"currentPageIndex":4,...}
	records := page[len(`{"assignments":`):bytes.Index(page, []byte(`,"currentPageIndex"`))]
	f.handle("GET /assignments", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		// samplePage says currentPageIndex 4 / nextPageIndex 5; rewrite them.
		body := []byte(`{"currentPageIndex":` + strconv.Itoa(i) + `,`)
		if i+1 < pages {
			body = append(body, `"nextPageIndex":`+strconv.Itoa(i+1)+`,`...)
		}
		body = append(body, `"assignments":`...)
		body = append(body, records...)
		body = append(body, `,"versionId":"v","totalPages":`+strconv.Itoa(pages)+`}`...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	c := f.client(Config{})
	runtime.GC()
	var first, peak uint64
	n := 0
	for p, err := range c.Assignments(context.Background(), testToken(t), AssignmentsQuery{Parallel: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(p.Assignments) != 1000 {
			t.Fatalf("page %d has %d assignments", n, len(p.Assignments))
		}
		if n%25 == 0 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if first == 0 {
				first = ms.HeapAlloc
			}
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != pages {
		t.Fatalf("read %d pages, want %d", n, pages)
	}
	if growth := int64(peak) - int64(first); growth > 8<<20 {
		t.Errorf("live heap grew by %d MB over %d pages: pages are retained", growth>>20, pages)
	}
	t.Logf("live heap: first sample %.1f MB, peak %.1f MB", float64(first)/(1<<20), float64(peak)/(1<<20))
}
