package applesim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFaultKinds(t *testing.T) {
	date := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	type result struct {
		Status, ErrorNumber int
		RetryAfter          string
		ValidJSON           bool
	}
	tests := []struct {
		name  string
		fault Fault
		want  result
	}{
		{"503 with seconds", Fault{Kind: FaultUnavailable503, RetryAfterSeconds: 120}, result{503, 0, "120", false}},
		{"503 with date", Fault{Kind: FaultUnavailable503, RetryAfterDate: date}, result{503, 0, "Wed, 02 Jan 2030 03:04:05 GMT", false}},
		{"503 without Retry-After", Fault{Kind: FaultUnavailable503}, result{503, 0, "", false}},
		{"429", Fault{Kind: FaultTooMany429, RetryAfterSeconds: 3}, result{429, 9646, "3", true}},
		{"500", Fault{Kind: FaultServerError500, RetryAfterSeconds: 7}, result{500, 9603, "7", true}},
		{"maintenance", Fault{Kind: FaultMaintenance9729, RetryAfterDate: date}, result{503, 9729, "Wed, 02 Jan 2030 03:04:05 GMT", true}},
		{"malformed JSON", Fault{Kind: FaultMalformedJSON}, result{200, 0, "", false}},
		{"invalid token", Fault{Kind: FaultInvalidToken}, result{200, 9622, "", true}},
		{"invalid token as 401", Fault{Kind: FaultInvalidToken, InvalidTokenHTTP401: true}, result{401, 9622, "", true}},
		{"expired", Fault{Kind: FaultExpired}, result{401, 9621, "", true}},
		{"revoked", Fault{Kind: FaultRevoked}, result{401, 9625, "", true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			e.sim.SetFault(e.token, tc.fault)
			for _, path := range []string{"/mdm/v2/assets", "/mdm/v2/client/config"} {
				r := e.get(path)
				got := result{r.status, r.errNum(), r.header.Get("Retry-After"), json.Valid(r.raw)}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s\nbody: %s", path, diff, r.raw)
				}
			}
			// Service config needs no token and is not affected.
			e.mustOK(e.do(http.MethodGet, "/mdm/v2/service/config", e.token, nil))
			// Faults are per token.
			other := e.sim.AddToken(TokenSpec{})
			e.mustOK(e.do(http.MethodGet, "/mdm/v2/assets", other, nil))
			e.sim.ClearFaults(e.token)
			e.mustOK(e.get("/mdm/v2/assets"))
		})
	}
}

func TestFaultCountAndUntil(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFault(e.token, Fault{Kind: FaultUnavailable503, Count: 2, RetryAfterSeconds: 1})
	e.sim.SetFault(e.token, Fault{Kind: FaultTooMany429, Count: 1})
	var got []int
	for range 5 {
		got = append(got, e.get("/mdm/v2/assets").status)
	}
	if diff := cmp.Diff([]int{503, 503, 429, 200, 200}, got); diff != "" {
		t.Errorf("Count sequence mismatch (-want +got):\n%s", diff)
	}
	if f := e.sim.Faults(e.token); len(f) != 0 {
		t.Errorf("faults left: %v", f)
	}

	clock := &fakeClock{t: fixedNow()}
	e = newEnv(t, Options{Clock: clock.Now})
	e.sim.SetFault(e.token, Fault{Kind: FaultMaintenance9729, Until: clock.Now().Add(time.Minute)})
	for range 3 {
		if r := e.get("/mdm/v2/assets"); r.errNum() != 9729 {
			t.Fatalf("before Until: %s", r.raw)
		}
	}
	clock.Advance(time.Minute)
	e.mustOK(e.get("/mdm/v2/assets"))

	// A faulted manage request has no effect.
	e.sim.AddAsset(e.token, Asset{AdamID: "1", Total: 1, DeviceAssignable: true})
	e.sim.SetFault(e.token, Fault{Kind: FaultServerError500, Count: 1})
	if r := e.post("/mdm/v2/assets/associate", assetsBody([]string{"1"}, nil, []string{"S"})); r.status != 500 || r.str("eventId") != "" {
		t.Errorf("faulted associate: %d %s", r.status, r.raw)
	}
}

func TestFaultSlow(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.SetFault(e.token, Fault{Kind: FaultSlow, Delay: 60 * time.Millisecond, Count: 1})
	e.sim.SetFault(e.token, Fault{Kind: FaultUnavailable503, Count: 1})
	start := time.Now()
	r := e.get("/mdm/v2/assets")
	if el := time.Since(start); el < 60*time.Millisecond || r.status != 503 {
		t.Errorf("slow then 503: took %v, status %d", el, r.status)
	}
	start = time.Now()
	e.mustOK(e.get("/mdm/v2/assets"))
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("second request still slow: %v", el)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: fixedNow()}
	e := newEnv(t, Options{Clock: clock.Now, RequestsPerSecond: 3})
	var got []outcome
	for range 5 {
		r := e.get("/mdm/v2/assets")
		got = append(got, outcome{r.status, r.errNum()})
	}
	want := []outcome{{200, 0}, {200, 0}, {200, 0}, {429, 9646}, {429, 9646}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	// Other tokens have their own budget; time refills it.
	other := e.sim.AddToken(TokenSpec{})
	e.mustOK(e.do(http.MethodGet, "/mdm/v2/assets", other, nil))
	clock.Advance(time.Second)
	e.mustOK(e.get("/mdm/v2/assets"))
	e.sim.SetRequestsPerSecond(e.token, 0)
	for range 10 {
		e.mustOK(e.get("/mdm/v2/assets"))
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t, Options{})
	other := e.sim.AddToken(TokenSpec{UID: "other"})
	e.sim.SetFault(e.token, Fault{Kind: FaultUnavailable503, Count: 1})
	e.get("/mdm/v2/assets")
	e.get("/mdm/v2/assets")
	e.do(http.MethodGet, "/mdm/v2/users", other, nil)
	e.do(http.MethodGet, "/mdm/v2/assets", "Zm9v", nil)
	e.do(http.MethodGet, "/mdm/v2/service/config", "", nil)
	e.do(http.MethodGet, "/_sim/tokens", "", nil)           // control requests are not logged
	e.do(http.MethodDelete, "/mdm/v2/assets", e.token, nil) // rejected requests count against their token
	type entry struct {
		Token, Method, Path string
		Status, ErrorNumber int
	}
	var got []entry
	for _, r := range e.sim.Requests() {
		if r.Time.IsZero() {
			t.Errorf("entry without time: %+v", r)
		}
		got = append(got, entry{r.Token, r.Method, r.Path, r.Status, r.ErrorNumber})
	}
	want := []entry{
		{"2049025000000001", "GET", "/mdm/v2/assets", 503, 0},
		{"2049025000000001", "GET", "/mdm/v2/assets", 200, 0},
		{"other", "GET", "/mdm/v2/users", 200, 0},
		{"", "GET", "/mdm/v2/assets", 200, 9622},
		{"", "GET", "/mdm/v2/service/config", 200, 0},
		{"2049025000000001", "DELETE", "/mdm/v2/assets", 405, 9726},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if n := len(e.sim.RequestsFor(other)); n != 1 {
		t.Errorf("RequestsFor(other) = %d entries, want 1", n)
	}
	e.sim.ResetRequests()
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("after reset: %d entries", n)
	}
}
