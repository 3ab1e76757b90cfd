package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer is the API's OpenTelemetry tracer (a no-op until the server installs a provider).
var tracer = otel.Tracer("orchard/resolvers")

// graphqlTracing gives every GraphQL operation a span, child of the HTTP request's (which
// continues the caller's W3C traceparent), with the operation's type and name; the SQL
// statements and Apple calls of its resolvers are its children. It also notes the operation
// for the request's log line. A subscription's span covers its start only (its stream may
// last for hours).
type graphqlTracing struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = graphqlTracing{}

func (graphqlTracing) ExtensionName() string                   { return "OrchardTracing" }
func (graphqlTracing) Validate(graphql.ExecutableSchema) error { return nil }
func (graphqlTracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	typ, name := "unknown", ""
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		name = oc.OperationName
		if oc.Operation != nil {
			typ = string(oc.Operation.Operation)
			if name == "" {
				name = oc.Operation.Name
			}
		}
	}
	noteOperation(ctx, typ, name)
	spanName := "graphql." + typ
	if name != "" {
		spanName += " " + name
	}
	ctx, span := tracer.Start(ctx, spanName, trace.WithAttributes(
		attribute.String("graphql.operation.type", typ),
		attribute.String("graphql.operation.name", name),
	))
	if typ == "subscription" {
		defer span.End()
		return next(ctx)
	}
	h := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		if resp != nil && len(resp.Errors) > 0 {
			span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)))
			span.SetStatus(codes.Error, resp.Errors[0].Message)
		}
		span.End()
		return resp
	}
}
