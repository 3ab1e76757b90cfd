package resolvers

import "time"

// WithFeed returns cfg with the licenseEvents feed hub polling every interval, with buffer
// events per subscriber and the given overlap (zero values keep the defaults), for tests and
// benchmarks of the feed.
func WithFeed(cfg Config, interval time.Duration, buffer int, overlap time.Duration) Config {
	o := defaultFeedOptions
	if interval > 0 {
		o.interval = interval
	}
	if buffer > 0 {
		o.buffer = buffer
	}
	if overlap > 0 {
		o.overlap = overlap
	}
	cfg.feed = o
	return cfg
}
