package apple

import (
	"context"
	"fmt"
	"iter"
	"sync"
)

// MaxParallelPages is Apple's limit on concurrent page requests (doc/apple-api.md §7).
const MaxParallelPages = 5

// PageInfo is the pagination state of one page (doc/apple-api.md §7).
type PageInfo struct {
	// CurrentPageIndex is this page's zero-based index.
	CurrentPageIndex int `json:"currentPageIndex"`
	// NextPageIndex is the next page's index; meaningful only when HasNext.
	NextPageIndex int `json:"nextPageIndex,omitempty"`
	// HasNext is false on the last page (Apple omits nextPageIndex there).
	HasNext bool `json:"hasNext"`
	// Size is the number of records on this page.
	Size int `json:"size"`
	// TotalPages may change while a listing is read; iteration continues until
	// a page has no next page, whatever it said before.
	TotalPages int `json:"totalPages"`
	// VersionID is the versionId of the first page read in this listing: the
	// value to pass as SinceVersionID next time (doc/apple-api.md §7). Every page carries it.
	VersionID string `json:"versionId"`
	// PageVersionID is this page's own versionId; it differs from VersionID
	// when the data set changed during the listing.
	PageVersionID string `json:"pageVersionId,omitempty"`
}

// wirePageInfo is the pagination part of a list answer.
type wirePageInfo struct {
	CurrentPageIndex int    `json:"currentPageIndex"`
	NextPageIndex    *int   `json:"nextPageIndex"`
	Size             int    `json:"size"`
	TotalPages       int    `json:"totalPages"`
	VersionID        string `json:"versionId"`
}

func (w *wirePageInfo) info() PageInfo {
	p := PageInfo{CurrentPageIndex: w.CurrentPageIndex, Size: w.Size, TotalPages: w.TotalPages,
		VersionID: w.VersionID, PageVersionID: w.VersionID}
	if w.NextPageIndex != nil {
		p.HasNext, p.NextPageIndex = true, *w.NextPageIndex
	}
	return p
}

// paged is implemented by every page type.
type paged interface{ pageInfo() *PageInfo }

// pageFetch fetches page index of a listing.
type pageFetch[P paged] func(ctx context.Context, index int) (P, error)

// paginate streams a listing page by page, following nextPageIndex until a
// page has none (not totalPages, which Apple's own recipe gets off by one and
// which may change during the listing).
//
// With parallel ≤ 1 pages are fetched one after the other, only when the
// consumer asks for the next one: one page in memory at a time. With parallel
// in 2..5 (Apple allows at most 5 concurrent page requests), up to parallel
// pages beyond the one being consumed are fetched ahead — still handed out in
// order — so at most parallel+1 pages are in memory. Breaking out of the loop
// cancels and waits for the prefetchers: no goroutine outlives the iteration.
//
// An error (including a *ThrottleError or *ClaimedError) is yielded once as
// (nil, err) and ends the listing; resume later with StartPage if wanted.
// Every page's VersionID is set to the first page's versionId.
func paginate[P paged](ctx context.Context, start, parallel int, fetch pageFetch[P]) iter.Seq2[P, error] {
	parallel = min(max(parallel, 1), MaxParallelPages)
	start = max(start, 0)
	return func(yield func(P, error) bool) {
		var zero P
		first, err := fetch(ctx, start)
		if err != nil {
			yield(zero, err)
			return
		}
		fi := first.pageInfo()
		version := fi.VersionID
		if !yield(first, nil) {
			return
		}
		if !fi.HasNext {
			return
		}
		if err := checkAdvance(start, fi.NextPageIndex); err != nil {
			yield(zero, err)
			return
		}
		if parallel == 1 {
			sequential(ctx, fi.NextPageIndex, version, fetch, yield)
			return
		}
		prefetching(ctx, fi.NextPageIndex, fi.TotalPages-1, parallel, version, fetch, yield)
	}
}

func checkAdvance(current, next int) error {
	if next <= current {
		return fmt.Errorf("apple: pagination: nextPageIndex %d does not advance past page %d", next, current)
	}
	return nil
}

func sequential[P paged](ctx context.Context, index int, version string, fetch pageFetch[P], yield func(P, error) bool) {
	var zero P
	for {
		p, err := fetch(ctx, index)
		if err != nil {
			yield(zero, err)
			return
		}
		pi := p.pageInfo()
		pi.VersionID = version
		if !yield(p, nil) || !pi.HasNext {
			return
		}
		if err := checkAdvance(index, pi.NextPageIndex); err != nil {
			yield(zero, err)
			return
		}
		index = pi.NextPageIndex
	}
}

type fetched[P paged] struct {
	page P
	err  error
}

// prefetching hands out pages in order starting at next, keeping up to
// parallel requests in flight for the pages that follow (up to last, the
// highest index the latest page announced).
func prefetching[P paged](ctx context.Context, next, last, parallel int, version string, fetch pageFetch[P], yield func(P, error) bool) {
	var zero P
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: prefetchers see the cancellation and finish
	defer cancel()

	inflight := make(map[int]chan fetched[P], parallel)
	scheduled := next - 1 // highest index launched
	launch := func(i int) {
		ch := make(chan fetched[P], 1) // buffered: a prefetcher never blocks on an abandoned page
		inflight[i] = ch
		wg.Go(func() {
			p, err := fetch(ctx, i)
			ch <- fetched[P]{p, err}
		})
		scheduled = max(scheduled, i)
	}
	for {
		if _, ok := inflight[next]; !ok {
			launch(next)
		}
		for len(inflight) < parallel && scheduled < last {
			launch(scheduled + 1)
		}
		ch := inflight[next]
		delete(inflight, next)
		var r fetched[P]
		select {
		case r = <-ch:
		case <-ctx.Done():
			yield(zero, fmt.Errorf("apple: pagination: %w", ctx.Err()))
			return
		}
		if r.err != nil {
			yield(zero, r.err)
			return
		}
		pi := r.page.pageInfo()
		pi.VersionID = version
		last = pi.TotalPages - 1
		if !yield(r.page, nil) || !pi.HasNext {
			return
		}
		if err := checkAdvance(next, pi.NextPageIndex); err != nil {
			yield(zero, err)
			return
		}
		// Pages launched for indexes that will not be read (nextPageIndex
		// jumped) are dropped; their buffered results are collected by GC.
		for i := range inflight {
			if i < pi.NextPageIndex {
				delete(inflight, i)
			}
		}
		next = pi.NextPageIndex
	}
}
