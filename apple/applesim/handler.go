package applesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// respWriter remembers the status and error number of a response for the request log.
type respWriter struct {
	http.ResponseWriter
	status int
	errNum int
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// call is one API request being served.
type call struct {
	s   *Sim
	w   *respWriter
	r   *http.Request
	t   *token // nil for service config
	now time.Time
}

// route describes one API endpoint: its handlers per method and whether it needs a token.
type route struct {
	auth bool
	get  func(*call)
	post func(*call)
}

// apiRoutes maps paths below /mdm/v2/ to endpoints (doc/apple-api.md §0).
var apiRoutes = map[string]route{
	"service/config":      {auth: false, get: (*call).serviceConfig},
	"client/config":       {auth: true, get: (*call).getClientConfig, post: (*call).postClientConfig},
	"assets":              {auth: true, get: (*call).getAssets},
	"assignments":         {auth: true, get: (*call).getAssignments},
	"assets/associate":    {auth: true, post: (*call).associate},
	"assets/disassociate": {auth: true, post: (*call).disassociate},
	"assets/revoke":       {auth: true, post: (*call).revoke},
	"status":              {auth: true, get: (*call).status},
	"users":               {auth: true, get: (*call).getUsers},
	"users/create":        {auth: true, post: (*call).createUsers},
	"users/update":        {auth: true, post: (*call).updateUsers},
	"users/retire":        {auth: true, post: (*call).retireUsers},
}

// ServeHTTP serves Apple's API under /mdm/v2/, the metadata lookup at /lookup and the control
// API under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	start := s.now()
	rw := &respWriter{ResponseWriter: w}
	var uid string
	switch {
	case path == "/lookup" || path == appleLookupPath:
		uid = s.serveLookup(rw, r)
	case strings.HasPrefix(path, "/mdm/v2/"):
		uid = s.serveAPI(rw, r)
	default:
		writeErrorStatus(rw, http.StatusNotFound, errInvalidArgument, nil)
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.reqlog.add(Request{Time: start, Token: uid, Method: r.Method, Path: path, Query: r.URL.RawQuery, Status: status, ErrorNumber: rw.errNum})
}

// serveAPI validates a request in Apple's order — method (9726), content type (9727),
// authentication (9722, 9622), faults and rate limit, token state (9621, 9625) — and then
// runs the endpoint. It returns the uId of the token named by the Bearer header, if any, for
// the request log: a request counts against its token whatever it was answered.
func (s *Sim) serveAPI(w *respWriter, r *http.Request) (uid string) {
	bearer, hasBearer := bearerValue(r)
	var t *token
	if hasBearer {
		if t = s.tokenByFile(bearer); t != nil {
			uid = t.uid
		}
	}
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/mdm/v2/"), "/")
	rt, ok := apiRoutes[name]
	if !ok {
		writeErrorStatus(w, http.StatusNotFound, errInvalidArgument, nil)
		return uid
	}
	var h func(*call)
	switch r.Method {
	case http.MethodGet:
		h = rt.get
	case http.MethodPost:
		h = rt.post
	}
	if h == nil {
		var allow []string
		if rt.get != nil {
			allow = append(allow, http.MethodGet)
		}
		if rt.post != nil {
			allow = append(allow, http.MethodPost)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, errUnsupportedMethod, nil)
		return uid
	}
	if r.Method == http.MethodPost && !isJSONContentType(r.Header.Get("Content-Type")) {
		writeError(w, errUnsupportedContentType, nil)
		return uid
	}
	c := &call{s: s, w: w, r: r, now: s.now()}
	if !rt.auth {
		// Service config needs no token; Apple's own walkthrough sends one anyway.
		h(c)
		return uid
	}
	switch {
	case !hasBearer:
		// A malformed header is 9722/401.
		writeError(w, errBadAuthorizationHeader, nil)
		return uid
	case t == nil:
		// An unknown or undecodable token is 9622, with HTTP 200 as Apple answers in practice
		// (doc/apple-api.md §1.3), or 401 with Options.UnknownTokenHTTP401.
		writeInvalidToken(w, s.opts.UnknownTokenHTTP401)
		return uid
	}
	c.t = t
	if s.applyFaults(w, r, t) {
		return uid
	}
	if !t.allowRequest(s.now()) {
		writeError(w, errTooManyRequests, nil)
		return uid
	}
	c.now = s.now()
	t.mu.RLock()
	expired, revoked := !c.now.Before(t.expiresAt), t.revoked
	t.mu.RUnlock()
	switch {
	case revoked:
		writeError(w, errTokenRevoked, nil)
		return uid
	case expired:
		writeError(w, errTokenExpired, nil)
		return uid
	}
	s.settle(t)
	h(c)
	return uid
}

// bearerValue extracts the credential of an "Authorization: Bearer X" header.
func bearerValue(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	value = strings.TrimSpace(value)
	if value == "" || strings.ContainsAny(value, " \t") {
		return "", false
	}
	return value, true
}

func writeInvalidToken(w *respWriter, http401 bool) {
	status := http.StatusOK
	if http401 {
		status = http.StatusUnauthorized
	}
	writeErrorStatus(w, status, errInvalidToken, nil)
}

func isJSONContentType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

// writeJSON writes a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("applesim: encoding response: %v", err), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes an ErrorResponse with the HTTP status Apple documents for the number.
func writeError(w *respWriter, number int, info *wireErrorInfo) {
	writeErrorStatus(w, errorStatus(number), number, info)
}

func writeErrorStatus(w *respWriter, status, number int, info *wireErrorInfo) {
	w.errNum = number
	writeJSON(w, status, wireError{ErrorNumber: number, ErrorMessage: errorMessage(number), ErrorInfo: info})
}

// maxBody bounds request bodies; Apple's largest legitimate body (25 assets × 2000 ids) is far
// smaller.
const maxBody = 8 << 20

// decodeBody reads a JSON request body into v. It reports present=false for an empty body
// (the endpoint then answers its "nothing in the request" error), and answers 9602 itself for
// a body that is not the expected JSON (ok=false).
func (c *call) decodeBody(v any) (present, ok bool) {
	b, err := io.ReadAll(io.LimitReader(c.r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		writeError(c.w, errInvalidArgument, nil)
		return false, false
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return false, true
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(c.w, errInvalidArgument, nil)
		return true, false
	}
	return true, true
}
