package resolvers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"orchard/db"
	"orchard/graph"
	"orchard/license"
	"orchard/resolvers/loaders"
)

// Limits of the GraphQL endpoint.
type Limits struct {
	// Complexity is the highest allowed query complexity (see complexityRoot).
	Complexity int
	// Depth is the deepest allowed nesting of fields.
	Depth int
	// Tokens bounds the lexer, before any parsing work is done.
	Tokens int
	// BodyBytes bounds request bodies.
	BodyBytes int64
}

// DefaultLimits suit an admin console and integrations: a 100-item page of assignments with
// their pool, account, app, device and user costs about 1,500; a page of 100 devices with 100
// assignments each, about 50,000, is refused.
var DefaultLimits = Limits{Complexity: 20000, Depth: 12, Tokens: 15000, BodyBytes: 1 << 20}

// Config configures the GraphQL handler.
type Config struct {
	DB            *db.DB
	License       *license.Service
	Auth          *Authenticator
	Log           *slog.Logger
	Limits        Limits
	Introspection bool
	Now           func() time.Time
	// Streams are the endpoint's WebSockets and event streams, ended by the server's shutdown
	// (Streams.Close); nil: a set of its own.
	Streams *Streams
}

// apqCacheSize bounds the automatic persisted queries held (least recently used go first;
// a client whose hash is gone gets PERSISTED_QUERY_NOT_FOUND and sends the document again).
const apqCacheSize = 1000

// NewHandler returns the /graphql endpoint: authentication, per-request loaders and the
// gqlgen server with explicit transports (WebSocket with graphql-transport-ws and
// Server-Sent Events for subscriptions; GET for queries and POST, by the GraphQL-over-HTTP
// spec, see httpTransport), automatic persisted queries, the query cache, limits, the error
// presenter and panic recovery.
func NewHandler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = db.Now
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	res := &Resolver{DB: cfg.DB, License: cfg.License, Log: cfg.Log, Auth: cfg.Auth, Now: cfg.Now}
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers:  res,
		Directives: graph.DirectiveRoot{HasRole: hasRole},
		Complexity: complexityRoot(),
	})
	if cfg.Streams == nil {
		cfg.Streams = NewStreams()
	}
	srv := handler.New(schema)
	srv.AddTransport(transport.Websocket{
		Implementation:        websocketGoingAway{streams: cfg.Streams, impl: transport.CoderWebsocketImplementation{}},
		KeepAlivePingInterval: 15 * time.Second,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			k, err := cfg.Auth.Authenticate(ctx, p.Authorization())
			if err != nil {
				return ctx, nil, err
			}
			noteKeyName(ctx, k.Name)
			return WithKey(ctx, k), nil, nil // loaders: per response, see responseLoaders
		},
	})
	srv.AddTransport(transport.Options{AllowedMethods: []string{http.MethodGet, http.MethodPost}})
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: 15 * time.Second})
	srv.AddTransport(httpTransport{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](apqCacheSize)})
	srv.SetParserTokenLimit(cfg.Limits.Tokens)
	srv.SetDisableSuggestion(true)
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(graphqlTracing{})
	srv.Use(depthLimit{Max: cfg.Limits.Depth})
	srv.Use(newInputConstraints(schema.Schema()))
	srv.Use(extension.FixedComplexityLimit(cfg.Limits.Complexity))
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	srv.AroundResponses(observeResponses)
	srv.AroundResponses(responseLoaders(cfg.DB))

	var h http.Handler = srv
	h = loaders.Middleware(cfg.DB, h)
	h = cfg.Auth.Middleware(h)
	h = LimitBody(cfg.Limits.BodyBytes, h)
	h = cfg.Streams.Middleware(h)
	return h
}
