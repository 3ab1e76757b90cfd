package apple_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
)

// heapSampler samples the live heap (runtime/metrics, cheap, no stop-the-world)
// every millisecond and remembers the peak.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			v := heapNow()
			for {
				p := h.peak.Load()
				if v <= p || h.peak.CompareAndSwap(p, v) {
					break
				}
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// BenchmarkReadAssignments100k reads a 100,000-assignment library (pages of
// 1000) from the in-process simulator over a real loopback HTTP server, as a
// full sync does, and reports assignments/s, pages/s and the peak heap: in
// total, and above the baseline held by the simulator's own data (which is
// what the streaming client adds). Allocations include the simulator's and
// net/http's, since all run in one process; BenchmarkDecodeAssignmentsPage
// isolates the client's decoding.
func BenchmarkReadAssignments100k(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel int
	}{{"sequential", 1}, {"parallel5", 5}} {
		b.Run(bc.name, func(b *testing.B) {
			sim := applesim.New(applesim.Options{PageSize: 1000})
			defer sim.Close()
			sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 1_000_000}) // the client's limiter follows service config
			gen := sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 2000, AssignmentsPerToken: 100_000, Seed: 1})
			srv := httptest.NewServer(sim)
			defer srv.Close()
			c := apple.New(apple.Config{BaseURL: srv.URL + "/mdm/v2"})
			tok, err := apple.ParseToken([]byte(gen.TokenFiles[0]), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			read := func() (assignments, pages int) {
				for p, err := range c.Assignments(ctx, tok, apple.AssignmentsQuery{Parallel: bc.parallel}) {
					if err != nil {
						b.Fatal(err)
					}
					assignments += len(p.Assignments)
					pages++
				}
				return assignments, pages
			}
			if n, _ := read(); n != 100_000 { // warm-up: connections, the simulator's cached view
				b.Fatalf("read %d assignments, want 100000", n)
			}
			runtime.GC()
			baseline := heapNow()
			sampler := startHeapSampler()
			b.ReportAllocs()
			b.ResetTimer()
			var total, totalPages int
			for b.Loop() {
				n, p := read()
				total += n
				totalPages += p
			}
			b.StopTimer()
			peak := sampler.Stop()
			// The sampled peak includes garbage the collector has not reclaimed
			// yet (GOGC lets the heap reach twice the live data). To show what
			// the stream retains, read once more with a GC every 10 pages and
			// record the live heap then.
			runtime.GC()
			liveBase, livePeak := heapNow(), uint64(0)
			pages := 0
			for p, err := range c.Assignments(ctx, tok, apple.AssignmentsQuery{Parallel: bc.parallel}) {
				if err != nil {
					b.Fatal(err)
				}
				if pages++; pages%10 == 0 {
					runtime.GC()
					livePeak = max(livePeak, heapNow())
				}
				_ = p
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(total)/sec, "assignments/s")
			b.ReportMetric(float64(totalPages)/sec, "pages/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(peak-min(peak, baseline))/(1<<20), "peak-over-baseline-MB")
			b.ReportMetric(float64(baseline)/(1<<20), "baseline-heap-MB")
			b.ReportMetric(float64(livePeak-min(livePeak, liveBase))/(1<<20), "live-over-baseline-MB")
		})
	}
}
