package resolvers

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/db"
	"orchard/graph"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// responseLoaders gives every event of a subscription fresh loaders, and every operation sent
// over a WebSocket connection too. gqlgen resolves the fields of a response — a query's one
// answer, each event of a subscription — in the context the transport passes for it, which for
// a WebSocket is the connection's: loaders put there would serve the nested fields of every
// event and operation of the connection from what its first one loaded (a sync run's account
// keeping its old name, an assignment's app its old metadata, for as long as the connection
// lives); so a WebSocket's connection carries none (requestLoaders). An HTTP request already
// carries loaders of its own (loaders.Middleware), kept. The loaders are made on first use:
// an idle subscription's response, waiting for its event, holds none.
func responseLoaders(d *db.DB) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if !loaders.Has(ctx) || isSubscription(ctx) {
			ctx = loaders.NewLazyContext(ctx, d)
		}
		return next(ctx)
	}
}

func isSubscription(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return false
	}
	op := graphql.GetOperationContext(ctx).Operation
	return op != nil && op.Operation == ast.Subscription
}

// licenseFeed streams changes to one subscriber until its context ends, through the handler's
// feed hub (feedhub.go): it follows the database, so it sees what every replica does, and a
// subscriber that does not keep up is dropped (SUBSCRIBER_TOO_SLOW) rather than slowing the
// feed of the others.
func (r *Resolver) licenseFeed(ctx context.Context, accountID, appID int64) (<-chan *graph.LicenseEvent, error) {
	return r.feed.subscribe(ctx, accountID, appID)
}

// errSubscriberTooSlow ends a subscription the feed hub dropped.
var errSubscriberTooSlow = model.Errorf(codeSubscriberTooSlow,
	"the subscription fell behind its events (its buffer filled) and was ended; subscribe again, and query what changed meanwhile")

// feedEnd is where the feed hub records that it dropped a subscription's subscriber, for
// endDroppedFeeds to end the subscription with SUBSCRIBER_TOO_SLOW.
type feedEnd struct {
	mu      sync.Mutex
	dropped bool
	told    bool
	timer   *time.Timer
	sess    *wsSession // the WebSocket of the subscription, if it is on one
	opCtx   context.Context
}

type feedEndKey struct{}

func feedEndFrom(ctx context.Context) *feedEnd {
	e, _ := ctx.Value(feedEndKey{}).(*feedEnd)
	return e
}

// drop records the drop; a WebSocket that has not taken the error within stuck (its client
// reads nothing) is then closed with 1013.
func (e *feedEnd) drop(stuck time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dropped {
		return
	}
	e.dropped = true
	if e.sess == nil {
		return
	}
	sess := e.sess
	e.timer = time.AfterFunc(stuck, func() {
		sess.close(wsCloseTryAgainLater, "subscriber too slow ("+string(codeSubscriberTooSlow)+")")
	})
	// The operation ends once its error is written; then the socket is fine.
	context.AfterFunc(e.opCtx, func() { e.timer.Stop() })
}

// take says whether the subscription must now end with the error (once), and whether it has
// ended.
func (e *feedEnd) take() (tell, ended bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dropped {
		return false, false
	}
	tell, e.told = !e.told, true
	return tell, true
}

// endDroppedFeeds is the operation middleware that gives every subscription a feedEnd and
// ends a dropped one with one SUBSCRIBER_TOO_SLOW error instead of its remaining events: on a
// WebSocket as graphql-transport-ws's error message for the operation (gqlgen's
// AddSubscriptionError), on an event stream as a last response with the error (then the
// stream completes).
func endDroppedFeeds(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if !isSubscription(ctx) {
		return next(ctx)
	}
	end := &feedEnd{opCtx: ctx}
	if sess := sessionFrom(ctx); sess != nil && !sess.stream {
		end.sess = sess
	}
	responses := next(context.WithValue(ctx, feedEndKey{}, end))
	return func(ctx context.Context) *graphql.Response {
		if r, ended := end.ending(ctx); ended {
			return r
		}
		r := responses(ctx)
		if r == nil {
			// The stream ended: the hub closes a dropped subscriber's channel, which may
			// have been waited on when it dropped it.
			r, _ = end.ending(ctx)
		}
		return r
	}
}

// ending is what a dropped subscription answers instead of its next event: the error, once
// (on a WebSocket graphql-transport-ws's error message for the operation, so no response),
// then nothing (ended). It is not ended while the hub has not dropped it.
func (e *feedEnd) ending(ctx context.Context) (*graphql.Response, bool) {
	tell, ended := e.take()
	if !tell {
		return nil, ended
	}
	graphqlErrors.WithLabelValues(string(codeSubscriberTooSlow)).Inc()
	if e.sess != nil {
		transport.AddSubscriptionError(ctx, codedError(errSubscriberTooSlow))
		return nil, true
	}
	return &graphql.Response{Errors: gqlerror.List{codedError(errSubscriberTooSlow)}}, true
}
