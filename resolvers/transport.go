package resolvers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/model"
)

// GraphQL over HTTP, as the GraphQL-over-HTTP specification says it (and the graphql-http
// audit checks it, in CI): gqlgen's own POST and GET transports answer 422 for parse and
// validation errors, carry "data": null on request errors and answer a GET mutation with 406,
// which clients (Apollo Client among them) read as network failures. httpTransport is the one
// transport for plain GET and POST requests (WebSocket and Server-Sent Events come before it):
//
//   - The response is application/graphql-response+json when the Accept header names it,
//     application/json when it names that, */* or application/*, or when there is no Accept
//     header; 406 for anything else.
//   - A request error (the body is no JSON, or a parameter has the wrong type, or there is no
//     query): 400, with no data entry.
//   - A document that does not parse or validate, or variables that do not coerce (the
//     operation never runs): with application/json 200, with application/graphql-response+json
//     400; either way with no data entry.
//   - A method other than GET and POST: 405 with Allow: GET, POST. A mutation over GET: 405
//     with Allow: POST (GET must be safe). A POST body that is not application/json: 415.
//   - A subscription over plain GET or POST is refused at once (400 or 200 as above, with code
//     SUBSCRIPTION_NEEDS_STREAM): it needs a WebSocket or Server-Sent Events (Accept:
//     text/event-stream), where its events can be delivered.
//   - Every error answered carries an extensions.code and a message of Orchard's own: a body
//     that is not JSON is described by where it breaks, never echoed (nor Go's type names).
//   - The operation has budget to be checked and run, from when its parameters are read.
type httpTransport struct{ budget time.Duration }

// Codes of the transport's own errors.
const (
	codeMethodNotAllowed        model.Code = "METHOD_NOT_ALLOWED"
	codeNotAcceptable           model.Code = "NOT_ACCEPTABLE"
	codeUnsupportedMediaType    model.Code = "UNSUPPORTED_MEDIA_TYPE"
	codeSubscriptionNeedsStream model.Code = "SUBSCRIPTION_NEEDS_STREAM"
)

const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

var _ graphql.Transport = httpTransport{}

// Supports every request that is not a WebSocket upgrade: the transport itself answers the
// ones it cannot serve (405, 406, 415) rather than gqlgen's generic 400.
// (An Upgrade header that does not ask for a WebSocket is no reason to refuse a request.)
func (httpTransport) Supports(r *http.Request) bool { return !isWebSocket(r) }

func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	if t.budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withBudget(ctx, t.budget)
		defer cancel()
	}
	fail := func(status int, media string, code model.Code, format string, args ...any) {
		writeGraphQL(w, status, media, &graphql.Response{Errors: gqlerror.List{{
			Message: model.Errorf(code, format, args...).Message, Extensions: map[string]any{"code": string(code)},
		}}})
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		fail(http.StatusMethodNotAllowed, mediaJSON, codeMethodNotAllowed, "%s is not allowed: send queries with GET or POST, mutations with POST", r.Method)
		return
	}
	media, ok := responseMedia(r.Header.Get("Accept"))
	if !ok {
		fail(http.StatusNotAcceptable, mediaJSON, codeNotAcceptable, "the Accept header names no media type this endpoint answers with (%s or %s)", mediaGraphQLResponse, mediaJSON)
		return
	}
	params, status, err := readParams(r)
	if err != nil {
		if status == http.StatusUnsupportedMediaType {
			fail(status, media, codeUnsupportedMediaType, "%s", err.Error())
		} else {
			fail(status, media, model.CodeBadUserInput, "%s", err.Error())
		}
		return
	}
	params.Headers = r.Header
	start := graphql.Now()
	params.ReadTime = graphql.TraceTiming{Start: start, End: start}

	// The status of an operation that never ran: 200 for application/json (the client reads
	// the errors), 400 for application/graphql-response+json (the spec's request error).
	notRun := http.StatusOK
	if media == mediaGraphQLResponse {
		notRun = http.StatusBadRequest
	}
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		resp.Data = nil
		writeGraphQL(w, notRun, media, resp)
		return
	}
	switch op := rc.Operation; {
	case op != nil && op.Operation == ast.Mutation && r.Method == http.MethodGet:
		w.Header().Set("Allow", "POST")
		fail(http.StatusMethodNotAllowed, media, codeMethodNotAllowed, "mutations must be sent with POST, not GET")
		return
	case op != nil && op.Operation == ast.Subscription:
		fail(notRun, media, codeSubscriptionNeedsStream, "a subscription needs a WebSocket (graphql-transport-ws) or Server-Sent Events (POST with Accept: text/event-stream); a plain %s cannot deliver its events", r.Method)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	if resp == nil { // the context ended before the operation ran (the client went away)
		resp = &graphql.Response{Errors: gqlerror.List{codedError(errOutOfTime)}}
	}
	writeGraphQL(w, http.StatusOK, media, resp)
}

// sseTransport is gqlgen's Server-Sent Events transport behind a check of the body: gqlgen's
// own answer to a body it cannot decode quotes the body and Go's error (and logs the body);
// this one answers 400 with BAD_USER_INPUT and a message of Orchard's, as plain POST does.
type sseTransport struct{ transport.SSE }

func (t sseTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "could not read the request body"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if _, status, err := readParams(r); err != nil {
		e, _ := model.AsError(err)
		writeError(w, status, e)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t.SSE.Do(w, r, exec)
}

// responseMedia picks the response's media type from the Accept header, in the header's order
// (quality values are not weighed: clients list their preference first).
func responseMedia(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			continue
		}
		switch mt {
		case mediaGraphQLResponse:
			return mediaGraphQLResponse, true
		case mediaJSON, "*/*", "application/*":
			return mediaJSON, true
		}
	}
	return "", false
}

// rawRequest is a request's parameters before their types are checked.
type rawRequest struct {
	Query         json.RawMessage `json:"query"`
	OperationName json.RawMessage `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// readParams reads the GraphQL parameters of a GET (the URL's query) or a POST (a JSON body),
// checking their types: query a string (absent only with a persisted-query extension),
// operationName a string, variables and extensions objects, each but query also null.
func readParams(r *http.Request) (*graphql.RawParams, int, error) {
	var raw rawRequest
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		str := func(k string) json.RawMessage {
			if !q.Has(k) {
				return nil
			}
			b, _ := json.Marshal(q.Get(k))
			return b
		}
		raw.Query, raw.OperationName = str("query"), str("operationName")
		for k, dst := range map[string]*json.RawMessage{"variables": &raw.Variables, "extensions": &raw.Extensions} {
			if v := q.Get(k); v != "" {
				if !json.Valid([]byte(v)) {
					return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "the %s parameter is not JSON", k)
				}
				*dst = json.RawMessage(v)
			}
		}
	} else {
		mt, mp, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != mediaJSON {
			return nil, http.StatusUnsupportedMediaType, model.Errorf(codeUnsupportedMediaType, "a POST body must be application/json (Content-Type: application/json)")
		}
		if cs, ok := mp["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, http.StatusUnsupportedMediaType, model.Errorf(codeUnsupportedMediaType, "a POST body must be UTF-8, not %s", cs)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "could not read the request body")
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "the request body is empty: send {\"query\": \"...\"}")
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, http.StatusBadRequest, notJSONObject(err)
		}
	}
	p := &graphql.RawParams{}
	isNull := func(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }
	if !isNull(raw.Extensions) {
		if err := decodeNumbers(raw.Extensions, &p.Extensions); err != nil || p.Extensions == nil {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "extensions must be an object")
		}
	}
	if isNull(raw.Query) {
		if _, persisted := p.Extensions["persistedQuery"]; !persisted {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "the request has no query")
		}
	} else if err := json.Unmarshal(raw.Query, &p.Query); err != nil {
		return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "query must be a string")
	}
	if !isNull(raw.OperationName) {
		if err := json.Unmarshal(raw.OperationName, &p.OperationName); err != nil {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "operationName must be a string")
		}
	}
	if !isNull(raw.Variables) {
		if err := decodeNumbers(raw.Variables, &p.Variables); err != nil || p.Variables == nil {
			return nil, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "variables must be an object")
		}
	}
	return p, 0, nil
}

// notJSONObject describes why a body is no JSON object in Orchard's words: where the syntax
// breaks, or that it is another JSON value (encoding/json's own message quotes the input and
// names Go types).
func notJSONObject(err error) *model.Error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return model.Errorf(model.CodeBadUserInput, "the request body is not JSON (at byte %d): send {\"query\": \"...\"}", syn.Offset)
	}
	return model.Errorf(model.CodeBadUserInput, "the request body is not a JSON object with string query and operationName and object variables and extensions")
}

// decodeNumbers decodes JSON keeping numbers as json.Number, as gqlgen's input coercion
// expects (an Int variable is not a float64).
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// wireResponse is a response as written: "data" is left out when the operation never ran
// (the spec's request errors carry no data entry; "data": null means it ran and failed).
type wireResponse struct {
	Errors     gqlerror.List   `json:"errors,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Extensions map[string]any  `json:"extensions,omitempty"`
}

func writeGraphQL(w http.ResponseWriter, status int, media string, resp *graphql.Response) {
	b, err := encodeResponse(resp)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(wireResponse{Errors: gqlerror.List{{Message: errInternal.Message, Extensions: map[string]any{"code": string(model.CodeInternal)}}}})
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// encodeResponse encodes a response as json.Marshal encodes its wireResponse, byte for byte,
// without passing its data through the encoder: json.Marshal validates and compacts a
// json.RawMessage, and the data gqlgen wrote is compact JSON already — on a 100-item page that
// second pass over it was a few percent of the request. The data is copied as it is unless it
// holds a byte json.Marshal would escape (<, >, & or the first byte of U+2028 and U+2029),
// rare in what Orchard serves; then json.Marshal encodes the whole response.
// TestEncodeResponseIsJSONMarshal holds the two to the same bytes.
func encodeResponse(resp *graphql.Response) ([]byte, error) {
	if len(resp.Data) == 0 || bytes.IndexAny(resp.Data, "<>&") >= 0 || bytes.IndexByte(resp.Data, 0xe2) >= 0 {
		return json.Marshal(wireResponse{Errors: resp.Errors, Data: resp.Data, Extensions: resp.Extensions})
	}
	b := make([]byte, 0, len(resp.Data)+64)
	b = append(b, '{')
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, `"errors":`...), errs...), ',')
	}
	b = append(append(b, `"data":`...), resp.Data...)
	if len(resp.Extensions) > 0 {
		ext, err := json.Marshal(resp.Extensions)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"extensions":`...), ext...)
	}
	return append(b, '}'), nil
}
