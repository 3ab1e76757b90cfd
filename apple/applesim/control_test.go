package applesim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestControlAPI(t *testing.T) {
	e := newEnv(t, Options{})
	ctl := func(method, path string, body any) response {
		t.Helper()
		r := e.do(method, "/_sim/"+path, "", body)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
		}
		return r
	}
	r := ctl("POST", "tokens", map[string]any{"orgName": "Ctl Org", "uId": "ctl-1", "country": "gb"})
	tok := r.str("tokenFile")
	if r.str("uId") != "ctl-1" || r.str("country") != "GB" || tok == "" {
		t.Fatalf("add token: %s", r.raw)
	}
	ctl("POST", "assets", map[string]any{"token": "ctl-1", "asset": map[string]any{"adamId": "77", "total": 2, "deviceAssignable": true, "revocable": true}})
	ctl("POST", "users", map[string]any{"token": "ctl-1", "clientUserId": "cu", "email": "cu@example.com"})
	ctl("POST", "assignments", map[string]any{"token": "ctl-1", "adamId": "77", "serialNumber": "S1"})
	ctl("POST", "assignments", map[string]any{"token": tok, "adamId": "77", "clientUserId": "cu"})
	ctl("POST", "assignments/remove", map[string]any{"token": "ctl-1", "adamId": "77", "serialNumber": "S1"})
	ctl("POST", "purchase", map[string]any{"token": "ctl-1", "adamId": "77", "delta": 3})
	ctl("POST", "users/associate", map[string]any{"token": "ctl-1", "clientUserId": "cu"})
	ctl("POST", "mdminfo", map[string]any{"token": "ctl-1", "id": "x", "name": "Other", "metadata": "1"})

	state := ctl("GET", "state?token=ctl-1", nil)
	if diff := cmp.Diff([]any{map[string]any{"adamId": "77", "pricingParam": "STDQ", "clientUserId": "cu"}}, state.body["assignments"]); diff != "" {
		t.Errorf("assignments mismatch (-want +got):\n%s", diff)
	}
	asset := state.body["assets"].([]any)[0].(map[string]any)
	if asset["total"] != 5.0 || asset["assigned"] != 1.0 || asset["available"] != 4.0 {
		t.Errorf("asset state = %v", asset)
	}
	if u := state.body["users"].([]any)[0].(map[string]any); u["status"] != "Associated" {
		t.Errorf("user = %v", u)
	}
	if id, _, _ := e.sim.MDMInfo(tok); id != "x" {
		t.Errorf("mdmInfo id = %q", id)
	}

	// Faults over HTTP, with Delay as a duration string; the request log by token.
	ctl("POST", "faults", map[string]any{"token": "ctl-1", "kind": "unavailable503", "retryAfterSeconds": 30, "count": 1})
	ctl("POST", "faults", map[string]any{"token": "ctl-1", "kind": "slow", "delay": "1ms", "count": 1})
	faults := ctl("GET", "faults?token=ctl-1", nil)
	if n := len(jsonList(t, faults)); n != 2 {
		t.Errorf("faults listed: %s", faults.raw)
	}
	r = e.do("GET", "/mdm/v2/assets", tok, nil)
	if r.status != 503 || r.header.Get("Retry-After") != "30" {
		t.Errorf("faulted request: %d %v", r.status, r.header)
	}
	e.mustOK(e.do("GET", "/mdm/v2/assets", tok, nil))
	ctl("POST", "faults", map[string]any{"token": "ctl-1", "kind": "tooMany429"})
	ctl("DELETE", "faults?token=ctl-1", nil)
	e.mustOK(e.do("GET", "/mdm/v2/assets", tok, nil))
	log := ctl("GET", "requests?token=ctl-1", nil)
	if n := len(jsonList(t, log)); n != 3 {
		t.Errorf("request log has %d entries: %s", n, log.raw)
	}
	ctl("DELETE", "requests", nil)
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("request log after reset: %d", n)
	}

	// Token state switches.
	ctl("POST", "revoked", map[string]any{"token": "ctl-1", "revoked": true})
	if r := e.do("GET", "/mdm/v2/assets", tok, nil); r.errNum() != 9625 {
		t.Errorf("revoked: %s", r.raw)
	}
	ctl("POST", "revoked", map[string]any{"token": "ctl-1", "revoked": false})
	ctl("POST", "expiry", map[string]any{"token": "ctl-1", "expiresAt": time.Now().Add(-time.Hour)})
	if r := e.do("GET", "/mdm/v2/assets", tok, nil); r.errNum() != 9621 {
		t.Errorf("expired: %s", r.raw)
	}
	ctl("POST", "expiry", map[string]any{"token": "ctl-1", "expiresAt": time.Now().Add(time.Hour)})
	ctl("POST", "ratelimit", map[string]any{"token": "ctl-1", "requestsPerSecond": 1})
	e.mustOK(e.do("GET", "/mdm/v2/assets", tok, nil))
	if r := e.do("GET", "/mdm/v2/assets", tok, nil); r.errNum() != 9646 {
		t.Errorf("rate limited: %s", r.raw)
	}
	ctl("POST", "limits", map[string]any{"maxAssets": 1})
	if e.sim.Limits().MaxAssets != 1 || e.sim.Limits().MaxUsers != 100 {
		t.Errorf("limits = %+v", e.sim.Limits())
	}

	// Generation and the token list.
	gen := ctl("POST", "generate", map[string]any{"tokens": 2, "appsPerToken": 5, "assignmentsPerToken": 20, "seed": 9})
	if n := len(gen.body["tokenFiles"].([]any)); n != 2 {
		t.Errorf("generated %s", gen.raw)
	}
	if n := len(jsonList(t, ctl("GET", "tokens", nil))); n != 4 {
		t.Errorf("%d tokens listed", n)
	}

	// Errors.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "assets", map[string]any{"token": "nope", "asset": map[string]any{"adamId": "1"}}, 404},
		{"POST", "purchase", map[string]any{"token": "ctl-1", "adamId": "unknown", "delta": 1}, 400},
		{"POST", "faults", map[string]any{"token": "ctl-1", "kind": "nonsense"}, 400},
		{"POST", "tokens", map[string]any{"unknownField": 1}, 400},
		{"GET", "nothing", nil, 404},
	} {
		if r := e.do(c.method, "/_sim/"+c.path, "", c.body); r.status != c.status || r.str("error") == "" {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
}

func TestInvitationURL(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.AddUser(e.token, "invitee", "i@example.com", "")
	cfg := e.mustOK(e.do(http.MethodGet, "/mdm/v2/service/config", "", nil))
	tmpl := cfg.body["urls"].(map[string]any)["invitationEmail"].(string)
	code := e.sim.Users(e.token)[0].InviteCode
	link := strings.Replace(tmpl, "%25inviteCode%25", url.QueryEscape(code), 1)
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s, _ := e.sim.User(e.token, "invitee"); resp.StatusCode != 200 || s != "Associated" {
		t.Errorf("after invitation: %d, status %s", resp.StatusCode, s)
	}
}

// jsonList decodes an answer that is a JSON array.
func jsonList(t *testing.T, r response) []any {
	t.Helper()
	var out []any
	if err := json.Unmarshal(r.raw, &out); err != nil {
		t.Fatalf("not a JSON array: %s", r.raw)
	}
	return out
}
