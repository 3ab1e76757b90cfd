package resolvers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
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

// Limits of the GraphQL endpoint. A zero field takes its value from DefaultLimits.
type Limits struct {
	// Complexity is the highest allowed query complexity (see complexityRoot).
	Complexity int
	// Depth is the deepest allowed nesting of fields.
	Depth int
	// Tokens bounds the lexer, before any parsing work is done.
	Tokens int
	// BodyBytes bounds request bodies.
	BodyBytes int64
	// Expanded and Width bound a document before it is validated (see documentLimits): its
	// selections, directives and arguments with its fragments expanded, and the fields of
	// one selection set with its fragments merged in.
	Expanded, Width int
	// Timeout is each operation's server-side time budget, its checks included (a
	// subscription's is its checks'; its events have none): at its end the operation's context
	// is cancelled and what did not finish answers OPERATION_TIMEOUT.
	Timeout time.Duration
	// ResponseBytes bounds a response (each event of a subscription): a larger one is answered
	// with RESPONSE_TOO_LARGE instead of its data, and its resolution stops once the values
	// resolved pass the bound (what is stored may be larger than anyone should be sent).
	ResponseBytes int
	// WSInitTimeout is the time a WebSocket has from its upgrade to its connection_init;
	// then it is closed with 4408.
	WSInitTimeout time.Duration
	// WSPerKey and WSPerAddress cap the WebSockets open at once per API key (event streams
	// included) and per remote address (counted from the upgrade, before authentication); one
	// more is closed with 4429 and a reason that says which cap. Negative: no cap.
	WSPerKey, WSPerAddress int
}

// DefaultLimits suit an admin console and integrations: a 100-item page of assignments with
// their pool, account, app, device and user costs about 1,500; a page of 100 devices with 100
// assignments each, about 50,000, is refused. GraphiQL's introspection query expands to about
// 300 selections; a 100-item page of users with 1,000-character names is about 110 KB.
var DefaultLimits = Limits{
	Complexity: 20000, Depth: 12, Tokens: 15000, BodyBytes: 1 << 20,
	Expanded: 2000, Width: 200,
	Timeout:       30 * time.Second,
	ResponseBytes: 4 << 20,
	WSInitTimeout: 10 * time.Second,
	WSPerKey:      32, WSPerAddress: 64,
}

// withDefaults fills the zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.Complexity, d.Complexity)
	pick(&l.Depth, d.Depth)
	pick(&l.Tokens, d.Tokens)
	pick(&l.Expanded, d.Expanded)
	pick(&l.Width, d.Width)
	pick(&l.ResponseBytes, d.ResponseBytes)
	if l.WSPerKey == 0 { // negative: no cap
		l.WSPerKey = d.WSPerKey
	}
	if l.WSPerAddress == 0 {
		l.WSPerAddress = d.WSPerAddress
	}
	if l.BodyBytes <= 0 {
		l.BodyBytes = d.BodyBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.WSInitTimeout <= 0 {
		l.WSInitTimeout = d.WSInitTimeout
	}
	return l
}

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
	// CheckWork, when set, is told the units of work each check of a document spent (see
	// documentLimits and operationLimits); the cost test holds hostile documents to a budget.
	CheckWork func(units int)

	// feed tunes the licenseEvents feed hub (tests); zero: defaultFeedOptions.
	feed feedOptions
	// fieldProbe, if set, is a field middleware after meterField (tests: what it sees).
	fieldProbe graphql.FieldMiddleware
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
	lim := cfg.Limits.withDefaults()
	if cfg.feed == (feedOptions{}) {
		cfg.feed = defaultFeedOptions
	}
	res := &Resolver{DB: cfg.DB, License: cfg.License, Log: cfg.Log, Auth: cfg.Auth, Now: cfg.Now,
		feed: newFeedHub(cfg.DB, cfg.Log, cfg.feed)}
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers:  res,
		Directives: graph.DirectiveRoot{HasRole: hasRole},
		Complexity: complexityRoot(),
	})
	if cfg.Streams == nil {
		cfg.Streams = NewStreams()
	}
	sockets := newWSSessions(cfg.Auth, lim)
	srv := handler.New(schema)
	srv.AddTransport(wsTransport{transport.Websocket{
		Implementation:        sessionSockets{websocketGoingAway{streams: cfg.Streams, impl: transport.CoderWebsocketImplementation{}}},
		KeepAlivePingInterval: 15 * time.Second,
		InitFunc:              sockets.init,
	}})
	srv.AddTransport(transport.Options{AllowedMethods: []string{http.MethodGet, http.MethodPost}})
	srv.AddTransport(sseTransport{transport.SSE{KeepAlivePingInterval: 15 * time.Second}})
	srv.AddTransport(httpTransport{budget: lim.Timeout})
	queries := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(queries)
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](apqCacheSize)})
	srv.SetParserTokenLimit(lim.Tokens)
	srv.SetDisableSuggestion(true)
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetValidationRulesFn(rulesWithoutHints)
	}
	srv.Use(graphqlTracing{})
	srv.Use(documentLimits{expanded: lim.Expanded, width: lim.Width, tokens: lim.Tokens, cache: queries, observe: cfg.CheckWork})
	srv.Use(newInputConstraints(schema.Schema()))
	srv.Use(&operationLimits{depth: lim.Depth, complexity: lim.Complexity, introspection: cfg.Introspection, observe: cfg.CheckWork})
	srv.AroundOperations(operationBudget(lim.Timeout))
	srv.AroundOperations(sockets.recheck)
	srv.AroundOperations(endDroppedFeeds)
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	srv.AroundResponses(observeResponses)
	srv.AroundResponses(responseLoaders(cfg.DB))
	srv.AroundResponses(limitResponse(lim.ResponseBytes))
	// The executor's fast paths (graph/generate) resolve plain fields and to-one relations
	// without the field middleware: it sees the root fields, the fields with arguments, the
	// lists and the computed scalars (TestFieldMiddlewareSees).
	srv.AroundFields(meterField)
	if cfg.fieldProbe != nil {
		srv.AroundFields(cfg.fieldProbe)
	}

	var h http.Handler = srv
	h = requestLoaders(cfg.DB, h)
	h = sockets.StreamMiddleware(h)
	h = cfg.Auth.Middleware(h)
	h = sockets.Middleware(h)
	h = LimitBody(lim.BodyBytes, h)
	h = cfg.Streams.Middleware(h)
	return h
}

// requestLoaders gives each HTTP request loaders of its own (loaders.Middleware), but not a
// WebSocket upgrade: the socket's operations and events get theirs from responseLoaders, and a
// set for the connection would only be held (~17 KB per socket, for as long as it is open) and
// would serve every query on the socket from what the first one loaded.
func requestLoaders(d *db.DB, next http.Handler) http.Handler {
	withLoaders := loaders.Middleware(d, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		withLoaders.ServeHTTP(w, r)
	})
}
