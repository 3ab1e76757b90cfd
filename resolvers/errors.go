package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/model"
)

// Errors reach clients in one of two shapes. Refusals of a mutation's input or intent are
// userErrors in its payload (see userErrors). Everything else is a top-level GraphQL error with
// a stable extensions.code; the presenter below is the one place that decides what a client
// sees: the message of a *model.Error as it is, gqlgen's own parse and validation errors as
// they are, and for anything else only "internal error" (the cause is logged with the
// request id, never sent). refusal (inputs.go) splits a mutation's errors between the two.

var errInternal = model.Errorf(model.CodeInternal, "internal error; the server logged the details")

// maxMessage bounds the message of gqlgen's own errors: a validation error may quote what the
// client sent (a value, a name), which need not be short.
const maxMessage = 300

// presentError is the server's error presenter. Besides the *model.Error messages and gqlgen's
// own errors, two causes are known and coded without an ERROR line: an operation that ran out
// of its time budget (OPERATION_TIMEOUT) and introspection on a server that has it off
// (INTROSPECTION_DISABLED; operationLimits refuses such operations before they run, this is
// the backstop).
func presentError(ctx context.Context, err error) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) && gqlErr.Err == nil {
		// Parse, validation and limit errors from gqlgen itself: safe, already coded.
		if gqlErr.Extensions == nil || gqlErr.Extensions["code"] == nil {
			if gqlErr.Extensions == nil {
				gqlErr.Extensions = map[string]any{}
			}
			gqlErr.Extensions["code"] = string(model.CodeBadUserInput)
		}
		if len(gqlErr.Message) > maxMessage {
			gqlErr.Message = strings.ToValidUTF8(gqlErr.Message[:maxMessage], "") + "…"
		}
		return gqlErr
	}
	path := graphql.GetPath(ctx)
	if e, ok := model.AsError(err); ok {
		ext := map[string]any{"code": string(e.Code)}
		if len(e.Field) > 0 {
			ext["field"] = e.Field
		}
		return &gqlerror.Error{Message: e.Message, Path: path, Extensions: ext, Err: err}
	}
	switch {
	case outOfBudget(ctx):
		logFrom(ctx).WarnContext(ctx, "operation out of time", "path", path.String(), "error", err)
		return &gqlerror.Error{Message: "the operation ran out of its time budget", Path: path, Extensions: map[string]any{"code": string(codeOperationTimeout)}}
	case err.Error() == "introspection disabled":
		return &gqlerror.Error{Message: "introspection is disabled on this server", Path: path, Extensions: map[string]any{"code": string(codeIntrospectionDisabled)}}
	case errors.Is(err, context.Canceled):
		logFrom(ctx).DebugContext(ctx, "request cancelled", "path", path.String())
	default:
		logFrom(ctx).ErrorContext(ctx, "resolver error", "path", path.String(), "error", err)
	}
	return &gqlerror.Error{Message: errInternal.Message, Path: path, Extensions: map[string]any{"code": string(model.CodeInternal)}}
}

// recoverPanic turns a resolver panic into an internal error and logs the stack.
func recoverPanic(ctx context.Context, p any) error {
	logFrom(ctx).ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errInternal
}

// writeError answers an HTTP request with a GraphQL-shaped error body.
func writeError(w http.ResponseWriter, status int, err *model.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": err.Message, "extensions": map[string]any{"code": string(err.Code)}}},
	})
}

type logCtx struct{}

// withLog returns ctx carrying a request-scoped logger.
func withLog(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, logCtx{}, l)
}

// logFrom returns the request's logger (with its request id), or the default logger.
func logFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logCtx{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// inputErrors turns an argument-decoding error (a malformed id in a mutation input) into
// INVALID_INPUT userErrors.
func inputErrors(err error) []*model.Error {
	e, ok := model.AsError(err)
	if !ok {
		return []*model.Error{errInternal}
	}
	c := *e
	c.Code = model.CodeInvalidInput
	return []*model.Error{&c}
}
