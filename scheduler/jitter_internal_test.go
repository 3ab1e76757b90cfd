package scheduler

import (
	"testing"
	"time"
)

// The spread of due times only brings them forward: a due time past the interval would make
// an account's data older than its interval (the data-age goal of doc/scale.md), and with
// thousands of accounts some always land at the far end. Over many draws the spread also
// reaches across most of its range (a constant would pass the first check).
func TestJitterOnlyBeforeTheInterval(t *testing.T) {
	t.Parallel()
	const d = 5 * time.Minute
	for _, j := range []float64{0.01, 0.1, 0.5} {
		s := &Scheduler{cfg: Config{Jitter: j}}
		lo, hi := d, time.Duration(0)
		for range 10000 {
			got := s.jitter(d)
			if got > d || got < time.Duration(float64(d)*(1-j)) {
				t.Fatalf("jitter %.2f: %s, want within [%s, %s]", j, got, time.Duration(float64(d)*(1-j)), d)
			}
			lo, hi = min(lo, got), max(hi, got)
		}
		if spread := float64(hi-lo) / float64(d); spread < 0.9*j {
			t.Errorf("jitter %.2f: due times spread over %.3f of the interval, want about %.2f", j, spread, j)
		}
	}
}
