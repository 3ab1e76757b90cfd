package resolvers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"orchard/db"
	"orchard/license"
	"orchard/model"
)

// Authentication: every GraphQL request carries `Authorization: Bearer <api key>` (WebSocket
// connections carry it in their connection_init payload). The key is looked up by the hash of
// its secret; a short-lived cache keeps that lookup off the hot path, and a revocation through
// this process takes effect at once (through another replica, within authCacheTTL).

const (
	authCacheTTL  = 5 * time.Second
	authCacheSize = 4096
	// touchEvery bounds the writes that keep lastUsedAt current.
	touchEvery = time.Minute
)

// Authenticator resolves API keys.
type Authenticator struct {
	db    *db.DB
	now   func() time.Time
	cache *expirable.LRU[string, *model.APIKey] // hash -> key (nil: no such key)

	mu       sync.Mutex
	touched  map[int64]time.Time
	onForget []func(id int64)
}

// NewAuthenticator returns an Authenticator over d.
func NewAuthenticator(d *db.DB, now func() time.Time) *Authenticator {
	return &Authenticator{
		db:      d,
		now:     now,
		cache:   expirable.NewLRU[string, *model.APIKey](authCacheSize, nil, authCacheTTL),
		touched: map[int64]time.Time{},
	}
}

var errUnauthenticated = model.Errorf(model.CodeUnauthenticated, "send a valid API key as 'Authorization: Bearer <key>'")

// Authenticate returns the active key named by an Authorization header value, or an
// UNAUTHENTICATED error that says nothing about why (missing, unknown or revoked alike).
func (a *Authenticator) Authenticate(ctx context.Context, header string) (*model.APIKey, error) {
	scheme, secret, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errUnauthenticated
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > 200 {
		return nil, errUnauthenticated
	}
	hash := license.HashKey(secret)
	k, cached := a.cache.Get(hash)
	if !cached {
		var err error
		k, err = a.db.APIKeyByHash(ctx, hash)
		switch {
		case errors.Is(err, model.ErrNotFound):
			k = nil
		case err != nil:
			return nil, err
		}
		a.cache.Add(hash, k)
	}
	if k == nil || !k.Active() {
		return nil, errUnauthenticated
	}
	a.touch(k.ID)
	return k, nil
}

// Forget drops a key from the cache (after it was revoked here) and tells the OnForget
// functions (the endpoint closes the key's WebSockets).
func (a *Authenticator) Forget(id int64) {
	for _, h := range a.cache.Keys() {
		if k, ok := a.cache.Peek(h); ok && k != nil && k.ID == id {
			a.cache.Remove(h)
		}
	}
	a.mu.Lock()
	fs := append([]func(int64){}, a.onForget...)
	a.mu.Unlock()
	for _, f := range fs {
		f(id)
	}
}

// OnForget registers f to be called with the id of every key Forget drops.
func (a *Authenticator) OnForget(f func(id int64)) {
	a.mu.Lock()
	a.onForget = append(a.onForget, f)
	a.mu.Unlock()
}

// touch records a key's use at most once per touchEvery, off the request's path.
func (a *Authenticator) touch(id int64) {
	now := a.now()
	a.mu.Lock()
	last, ok := a.touched[id]
	if ok && now.Sub(last) < touchEvery {
		a.mu.Unlock()
		return
	}
	a.touched[id] = now
	a.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.db.TouchAPIKey(ctx, id, now)
	}()
}

type keyCtx struct{}

// WithKey returns ctx carrying the caller's key.
func WithKey(ctx context.Context, k *model.APIKey) context.Context {
	return context.WithValue(ctx, keyCtx{}, k)
}

// KeyFrom returns the caller's key, or nil.
func KeyFrom(ctx context.Context) *model.APIKey {
	k, _ := ctx.Value(keyCtx{}).(*model.APIKey)
	return k
}

// actor is the caller as the domain service sees it.
func actor(ctx context.Context) license.Actor {
	if k := KeyFrom(ctx); k != nil {
		return license.KeyActor(k)
	}
	return license.SystemActor
}

// Middleware authenticates HTTP requests to the GraphQL endpoint. A request without a valid
// key is answered 401 with a GraphQL error body before anything is parsed. WebSocket upgrades
// pass through: they authenticate in connection_init (see wsSessions).
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		k, err := a.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			e, ok := model.AsError(err)
			code := http.StatusUnauthorized
			if !ok {
				logFrom(r.Context()).ErrorContext(r.Context(), "authenticate", "error", err)
				e, code = errInternal, http.StatusServiceUnavailable
			}
			if code == http.StatusUnauthorized {
				// RFC 6750: a 401 names the scheme it wants.
				w.Header().Set("WWW-Authenticate", `Bearer realm="orchard"`)
			}
			writeError(w, code, e)
			return
		}
		noteKeyName(r.Context(), k.Name)
		next.ServeHTTP(w, r.WithContext(WithKey(r.Context(), k)))
	})
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// hasRole is the @hasRole directive: the caller's role must rank at least role.
func hasRole(ctx context.Context, _ any, next graphql.Resolver, role model.Role) (any, error) {
	k := KeyFrom(ctx)
	if k == nil {
		return nil, errUnauthenticated
	}
	if k.Role.Rank() < role.Rank() {
		return nil, model.Errorf(model.CodeForbidden, "this needs the %s role; the key has %s", role, k.Role)
	}
	return next(ctx)
}
