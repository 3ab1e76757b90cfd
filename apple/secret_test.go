package apple

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSecretNeverLeaks drives every error path of the client with a server
// that echoes the credential back wherever it can (error messages, HTML
// bodies, cookies) and checks that neither the bearer nor the inner token
// appears in any error text or in the debug log.
func TestSecretNeverLeaks(t *testing.T) {
	tok := testToken(t)
	echo := func(r *http.Request) string {
		return r.Header.Get("Authorization") + " " + r.Header.Get("Cookie") + " " + tok.Inner()
	}
	behaviours := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"expired", func(w http.ResponseWriter, r *http.Request) { appleError(401, 9621, "expired: "+echo(r))(w, r) }},
		{"invalid 200", func(w http.ResponseWriter, r *http.Request) { appleError(200, 9622, "Invalid token "+echo(r))(w, r) }},
		{"revoked", func(w http.ResponseWriter, r *http.Request) { appleError(401, 9625, "revoked "+echo(r))(w, r) }},
		{"validation", func(w http.ResponseWriter, r *http.Request) { appleError(400, 9602, "bad "+echo(r))(w, r) }},
		{"html 503 echo", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(503)
			_, _ = w.Write([]byte("<html>" + echo(r) + "</html>"))
		}},
		{"html 404 echo", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte("<html>" + echo(r) + "</html>"))
		}},
		{"429 echo", func(w http.ResponseWriter, r *http.Request) { appleError(429, 9646, "slow down "+echo(r))(w, r) }},
		{"500 echo", func(w http.ResponseWriter, r *http.Request) { appleError(500, 9603, "oops "+echo(r))(w, r) }},
		{"garbage 200", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"x": "` + echo(r) + `"`)) }},
		{"dropped connection", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		}},
		{"claimed", respond(200, map[string]any{"eventId": "e", "eventStatus": "PENDING", "uId": "u", "mdmInfo": otherMDM, "assets": []any{}, "versionId": "v"})},
		{"slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(200 * time.Millisecond) }},
	}
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			f := newFake(t)
			for _, route := range []string{"GET /client/config", "POST /client/config", "GET /assets", "GET /assignments", "GET /users",
				"POST /assets/associate", "POST /assets/disassociate", "POST /assets/revoke", "GET /status",
				"POST /users/create", "POST /users/update", "POST /users/retire", "GET /lookup"} {
				f.handle(route, b.handler)
			}
			log, buf := logCapture()
			c := f.client(Config{Logger: log, MDM: ourMDM, NetworkBackoff: time.Millisecond, MaxAttempts: 2})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			manage := ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}}
			users := []RequestUser{{ClientUserID: "u"}}
			var errs []error
			add := func(_ any, err error) { errs = append(errs, err) }
			// Each call on a fresh client so that no hold hides a path.
			fresh := func() *Client {
				return f.client(Config{Logger: log, MDM: ourMDM, NetworkBackoff: time.Millisecond, MaxAttempts: 2})
			}
			add(fresh().ClientConfig(ctx, tok))
			add(fresh().SetClientConfig(ctx, tok, ClientConfigRequest{NotificationURL: "https://x", NotificationAuthToken: "s"}))
			add(collect(fresh().Assets(ctx, tok, AssetsQuery{})))
			add(collect(fresh().Assignments(ctx, tok, AssignmentsQuery{Parallel: 3})))
			add(collect(fresh().Users(ctx, tok, UsersQuery{})))
			add(fresh().Associate(ctx, tok, manage))
			add(fresh().Disassociate(ctx, tok, manage))
			add(fresh().Revoke(ctx, tok, RevokeAssetsRequest{SerialNumbers: []string{"s"}}))
			add(fresh().EventStatus(ctx, tok, "e"))
			add(fresh().CreateUsers(ctx, tok, users))
			add(fresh().UpdateUsers(ctx, tok, users))
			add(fresh().RetireUsers(ctx, tok, users))
			add(fresh().LookupApps(ctx, tok, "us", []string{"1"}))
			// The same client twice: the second call meets the hold.
			add(c.ClientConfig(ctx, tok))
			add(c.ClientConfig(ctx, tok))
			for _, err := range errs {
				if err == nil {
					continue
				}
				assertNoSecret(t, err.Error(), tok)
				assertNoSecret(t, fmt.Sprintf("%+v %#v", err, err), tok)
			}
			assertNoSecret(t, buf.String(), tok)
			if b.name != "slow" && !strings.Contains(buf.String(), tok.Fingerprint()) {
				t.Error("logs should name the token by its fingerprint")
			}
		})
	}
}
