package apple

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ServiceConfig is Apple's GET /service/config answer (doc/apple-api.md §3): the
// error codes, the limits that requests must respect, the notification types
// and the URLs. Limits and URLs are dynamic; the client reads them from here
// and refreshes them every 5 minutes (Config.ServiceConfigTTL).
type ServiceConfig struct {
	ErrorCodes        []ErrorCode       `json:"errorCodes,omitempty"`
	Limits            Limits            `json:"limits"`
	NotificationTypes []string          `json:"notificationTypes,omitempty"`
	URLs              map[string]string `json:"urls,omitempty"`
	// FetchedAt is when the client received it.
	FetchedAt time.Time `json:"fetchedAt"`
}

// ErrorCode is one entry of ServiceConfig.ErrorCodes.
type ErrorCode struct {
	Number  int    `json:"errorNumber"`
	Message string `json:"errorMessage"`
}

// Limits are the request limits of the service configuration (doc/apple-api.md §3). Typed
// fields for the known keys; All keeps every integer key, unknown ones too.
type Limits struct {
	MaxAssets                    int `json:"maxAssets"`
	MaxClientUserIDs             int `json:"maxClientUserIds"`
	MaxSerialNumbers             int `json:"maxSerialNumbers"`
	MaxRevokeClientUserIDs       int `json:"maxRevokeClientUserIds"`
	MaxRevokeSerialNumbers       int `json:"maxRevokeSerialNumbers"`
	MaxUsers                     int `json:"maxUsers"`
	MaxNotificationLength        int `json:"maxNotificationLength"`
	MaxMDMNameLength             int `json:"maxMdmNameLength"`
	MaxMDMMetadataLength         int `json:"maxMdmMetadataLength"`
	MaxMDMIDLength               int `json:"maxMdmIdLength"`
	MaxRequestPerSecond          int `json:"maxRequestPerSecond"`
	MaxSubscriptions             int `json:"maxSubscriptions"`
	MaxSubscriptionClientUserIDs int `json:"maxSubscriptionClientUserIds"`
	// All holds every integer-valued key of Apple's "limits" object.
	All map[string]int `json:"-"`
}

// DefaultLimits are the values of Apple's newest documented example. They are
// used only until a service configuration has been read (or for keys it
// lacks), never instead of one.
func DefaultLimits() Limits {
	return Limits{
		MaxAssets: 25, MaxClientUserIDs: 1000, MaxSerialNumbers: 1000,
		MaxRevokeClientUserIDs: 100, MaxRevokeSerialNumbers: 100, MaxUsers: 100,
		MaxNotificationLength: 512, MaxMDMNameLength: 100, MaxMDMMetadataLength: 255, MaxMDMIDLength: 100,
		MaxRequestPerSecond: 15, MaxSubscriptions: 25, MaxSubscriptionClientUserIDs: 1000,
	}
}

// withDefaults fills missing (zero or negative) limits with DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.MaxAssets, d.MaxAssets)
	fill(&l.MaxClientUserIDs, d.MaxClientUserIDs)
	fill(&l.MaxSerialNumbers, d.MaxSerialNumbers)
	fill(&l.MaxRevokeClientUserIDs, d.MaxRevokeClientUserIDs)
	fill(&l.MaxRevokeSerialNumbers, d.MaxRevokeSerialNumbers)
	fill(&l.MaxUsers, d.MaxUsers)
	fill(&l.MaxNotificationLength, d.MaxNotificationLength)
	fill(&l.MaxMDMNameLength, d.MaxMDMNameLength)
	fill(&l.MaxMDMMetadataLength, d.MaxMDMMetadataLength)
	fill(&l.MaxMDMIDLength, d.MaxMDMIDLength)
	fill(&l.MaxRequestPerSecond, d.MaxRequestPerSecond)
	fill(&l.MaxSubscriptions, d.MaxSubscriptions)
	fill(&l.MaxSubscriptionClientUserIDs, d.MaxSubscriptionClientUserIDs)
	return l
}

// wireServiceConfig is the answer as sent. limits and urls are "any key"
// dictionaries (doc/apple-api.md §3), decoded loosely so that an unexpected value type of one
// key does not lose the others.
type wireServiceConfig struct {
	wireHeader
	ErrorCodes []struct {
		Number  flexInt `json:"errorNumber"`
		Message string  `json:"errorMessage"`
	} `json:"errorCodes"`
	Limits            map[string]json.RawMessage `json:"limits"`
	NotificationTypes []string                   `json:"notificationTypes"`
	URLs              map[string]json.RawMessage `json:"urls"`
}

// decodeServiceConfig decodes a service-config body.
func decodeServiceConfig(b []byte) (*ServiceConfig, *wireHeader, error) {
	var w wireServiceConfig
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	sc := &ServiceConfig{NotificationTypes: w.NotificationTypes, URLs: make(map[string]string, len(w.URLs))}
	for _, ec := range w.ErrorCodes {
		sc.ErrorCodes = append(sc.ErrorCodes, ErrorCode{Number: int(ec.Number), Message: ec.Message})
	}
	for k, raw := range w.URLs {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			sc.URLs[k] = s
		}
	}
	all := make(map[string]int, len(w.Limits))
	for k, raw := range w.Limits {
		var f float64
		if json.Unmarshal(raw, &f) == nil && f >= math.MinInt32 && f <= math.MaxInt32 {
			all[k] = int(f)
		}
	}
	l := Limits{
		MaxAssets: all["maxAssets"], MaxClientUserIDs: all["maxClientUserIds"], MaxSerialNumbers: all["maxSerialNumbers"],
		MaxRevokeClientUserIDs: all["maxRevokeClientUserIds"], MaxRevokeSerialNumbers: all["maxRevokeSerialNumbers"],
		MaxUsers: all["maxUsers"], MaxNotificationLength: all["maxNotificationLength"],
		MaxMDMNameLength: all["maxMdmNameLength"], MaxMDMMetadataLength: all["maxMdmMetadataLength"],
		MaxMDMIDLength: all["maxMdmIdLength"], MaxRequestPerSecond: all["maxRequestPerSecond"],
		MaxSubscriptions: all["maxSubscriptions"], MaxSubscriptionClientUserIDs: all["maxSubscriptionClientUserIds"],
	}
	l = l.withDefaults()
	l.All = all
	sc.Limits = l
	return sc, &w.wireHeader, nil
}

// serviceConfigCache caches the service configuration. Concurrent refreshes
// collapse into one request (singleflight). After a failed refresh the last
// good value (or DefaultLimits) is used and no new attempt is made for
// serviceConfigRetry, so a failing endpoint is not hammered by every call.
type serviceConfigCache struct {
	mu       sync.Mutex
	cfg      *ServiceConfig
	expires  time.Time
	failedAt time.Time
	sf       singleflight.Group
}

const serviceConfigRetry = 30 * time.Second

func (s *serviceConfigCache) invalidate() {
	s.mu.Lock()
	s.expires = time.Time{}
	s.failedAt = time.Time{}
	s.mu.Unlock()
}

// ServiceConfig returns the service configuration, from the cache when it is
// younger than Config.ServiceConfigTTL. The returned value is shared: do not
// modify it.
func (c *Client) ServiceConfig(ctx context.Context) (*ServiceConfig, error) {
	c.svc.mu.Lock()
	cfg, fresh := c.svc.cfg, c.now().Before(c.svc.expires)
	c.svc.mu.Unlock()
	if cfg != nil && fresh {
		return cfg, nil
	}
	return c.refreshServiceConfig(ctx)
}

// refreshServiceConfig fetches the configuration once for all concurrent
// callers. The fetch runs detached from any one caller's cancellation (so that
// one impatient caller does not fail the others) but each caller stops waiting
// when its own context ends.
func (c *Client) refreshServiceConfig(ctx context.Context) (*ServiceConfig, error) {
	ch := c.svc.sf.DoChan("service-config", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		var sc *ServiceConfig
		r := &request{
			method: http.MethodGet, path: "/service/config", url: c.base + "/service/config",
			scope: ScopeService, holdKey: "service", idempotent: true,
		}
		err := c.exchange(fctx, r, func(b []byte) (*wireHeader, error) {
			v, hdr, err := decodeServiceConfig(b)
			sc = v
			return hdr, err
		})
		now := c.now()
		c.svc.mu.Lock()
		defer c.svc.mu.Unlock()
		if err != nil {
			c.svc.failedAt = now
			return nil, err
		}
		sc.FetchedAt = now
		c.svc.cfg = sc
		c.svc.expires = now.Add(c.cfg.ServiceConfigTTL)
		c.svc.failedAt = time.Time{}
		return sc, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("apple: GET /service/config: %w", ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*ServiceConfig), nil
	}
}

// Limits returns the current request limits. The value is always usable: if
// the service configuration cannot be read, the last known limits (or
// DefaultLimits) are returned together with the error.
func (c *Client) Limits(ctx context.Context) (Limits, error) {
	sc, err := c.ServiceConfig(ctx)
	if err == nil {
		return cloneLimits(sc.Limits), nil
	}
	c.svc.mu.Lock()
	last := c.svc.cfg
	c.svc.mu.Unlock()
	if last != nil {
		return cloneLimits(last.Limits), err
	}
	return DefaultLimits(), err
}

func cloneLimits(l Limits) Limits {
	l.All = maps.Clone(l.All)
	return l
}

// requestRate is the per-token request rate: maxRequestPerSecond of the
// service configuration. It refreshes the configuration when it is stale, but
// never fails a call over it: on error it keeps the last known value (or the
// default) and does not retry for serviceConfigRetry.
func (c *Client) requestRate(ctx context.Context) float64 {
	now := c.now()
	c.svc.mu.Lock()
	cfg, fresh := c.svc.cfg, now.Before(c.svc.expires)
	recentFailure := !c.svc.failedAt.IsZero() && now.Sub(c.svc.failedAt) < serviceConfigRetry
	c.svc.mu.Unlock()
	if cfg == nil || !fresh {
		if !recentFailure {
			if sc, err := c.refreshServiceConfig(ctx); err == nil {
				cfg = sc
			} else {
				c.log.LogAttrs(ctx, slog.LevelWarn, "apple: cannot refresh service config; using last known limits",
					slog.String("error", err.Error()))
			}
		}
	}
	if cfg == nil {
		return float64(DefaultLimits().MaxRequestPerSecond)
	}
	return float64(cfg.Limits.MaxRequestPerSecond)
}
