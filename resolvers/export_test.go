package resolvers

import (
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// WithFeed returns cfg with the licenseEvents feed hub polling every interval, with buffer
// events per subscriber, the given overlap and the given time a dropped WebSocket has to take
// its error (zero values keep the defaults), for tests and benchmarks of the feed.
func WithFeed(cfg Config, interval time.Duration, buffer int, overlap, stuck time.Duration) Config {
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
	if stuck > 0 {
		o.stuck = stuck
	}
	cfg.feed = o
	return cfg
}

// WithFieldProbe returns cfg with a field middleware after the server's own.
func WithFieldProbe(cfg Config, probe graphql.FieldMiddleware) Config {
	cfg.fieldProbe = probe
	return cfg
}
