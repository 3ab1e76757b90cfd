package apple

import (
	"sync"

	"golang.org/x/time/rate"
)

// limiterSet holds one token bucket per key (token fingerprint). Apple counts
// "total requests per second for a location or sToken" (maxRequestPerSecond,
// doc/apple-api.md §3), so every request of a token — whichever goroutine sends it, page
// prefetchers included — takes a token from the same bucket.
//
// The bucket's burst is 1: requests are spaced 1/rate apart, so no one-second
// window ever holds more than maxRequestPerSecond requests, unlike a bucket
// with a larger burst which lets rate+burst through in the first second.
type limiterSet struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiterSet() *limiterSet { return &limiterSet{m: make(map[string]*rate.Limiter)} }

// get returns key's limiter, adjusted to rps (which may change whenever the
// service configuration does).
func (s *limiterSet) get(key string, rps float64) *rate.Limiter {
	if rps <= 0 {
		rps = float64(DefaultLimits().MaxRequestPerSecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(rps), 1)
		s.m[key] = l
		return l
	}
	if l.Limit() != rate.Limit(rps) {
		l.SetLimit(rate.Limit(rps))
	}
	return l
}
