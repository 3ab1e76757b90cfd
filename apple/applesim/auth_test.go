package applesim

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outcome is what the auth tests compare: HTTP status and error number.
type outcome struct {
	Status, ErrorNumber int
}

func TestAuthentication(t *testing.T) {
	garbage := base64.StdEncoding.EncodeToString([]byte(`{"token":"nope","expDate":"2030-01-01T00:00:00+0000","orgName":"X"}`))
	tests := []struct {
		name   string
		opts   Options
		header func(e *env) string // Authorization header; "" sends none
		setup  func(e *env)
		want   outcome
	}{
		{name: "valid token", header: func(e *env) string { return "Bearer " + e.token }, want: outcome{200, 0}},
		{name: "bearer scheme case-insensitive", header: func(e *env) string { return "bearer " + e.token }, want: outcome{200, 0}},
		{name: "missing header", header: func(e *env) string { return "" }, want: outcome{401, 9722}},
		{name: "basic scheme", header: func(e *env) string { return "Basic " + e.token }, want: outcome{401, 9722}},
		{name: "bearer without token", header: func(e *env) string { return "Bearer " }, want: outcome{401, 9722}},
		{name: "unknown token answers 200", header: func(e *env) string { return "Bearer " + garbage }, want: outcome{200, 9622}},
		{name: "garbage answers 200", header: func(e *env) string { return "Bearer not-base64!" }, want: outcome{200, 9622}},
		{name: "unknown token with 401 switch", opts: Options{UnknownTokenHTTP401: true}, header: func(e *env) string { return "Bearer " + garbage }, want: outcome{401, 9622}},
		{
			name:   "expired",
			header: func(e *env) string { return "Bearer " + e.token },
			setup:  func(e *env) { e.sim.SetExpiresAt(e.token, time.Now().Add(-time.Minute)) },
			want:   outcome{401, 9621},
		},
		{
			name:   "revoked",
			header: func(e *env) string { return "Bearer " + e.token },
			setup:  func(e *env) { e.sim.SetRevoked(e.token, true) },
			want:   outcome{401, 9625},
		},
		{
			name: "re-encoded token file is the same token",
			header: func(e *env) string {
				tf, _ := decodeTokenFile(e.token)
				return "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"token":"`+tf.Token+`"}`))
			},
			want: outcome{200, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			if tc.setup != nil {
				tc.setup(e)
			}
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/mdm/v2/client/config", nil)
			if h := tc.header(e); h != "" {
				req.Header.Set("Authorization", h)
			}
			r := e.send(req)
			if diff := cmp.Diff(tc.want, outcome{r.status, r.errNum()}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s\nbody: %s", diff, r.raw)
			}
		})
	}
}

func TestServiceConfigNeedsNoAuth(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.mustOK(e.do(http.MethodGet, "/mdm/v2/service/config", "", nil))
	limits := r.body["limits"].(map[string]any)
	want := map[string]any{
		"maxAssets": 25.0, "maxClientUserIds": 1000.0, "maxSerialNumbers": 1000.0, "maxRevokeClientUserIds": 100.0,
		"maxRevokeSerialNumbers": 100.0, "maxUsers": 100.0, "maxNotificationLength": 512.0, "maxMdmNameLength": 100.0,
		"maxMdmMetadataLength": 255.0, "maxMdmIdLength": 100.0, "maxRequestPerSecond": 15.0, "maxSubscriptions": 25.0,
		"maxSubscriptionClientUserIds": 1000.0,
	}
	if diff := cmp.Diff(want, limits); diff != "" {
		t.Errorf("limits mismatch (-want +got):\n%s", diff)
	}
	urls := r.body["urls"].(map[string]any)
	if got, want := urls["getAssignments"], e.srv.URL+"/mdm/v2/assignments"; got != want {
		t.Errorf("getAssignments = %v, want %v", got, want)
	}
	if got, want := urls["contentMetadataLookup"], e.srv.URL+"/lookup"; got != want {
		t.Errorf("contentMetadataLookup = %v, want %v", got, want)
	}
	if diff := cmp.Diff([]any{"ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"}, r.body["notificationTypes"]); diff != "" {
		t.Errorf("notificationTypes mismatch (-want +got):\n%s", diff)
	}
	codes := map[int]bool{}
	for _, c := range r.body["errorCodes"].([]any) {
		codes[int(c.(map[string]any)["errorNumber"].(float64))] = true
	}
	for _, n := range []int{9601, 9602, 9646, 9650, 9700, 9709, 9721, 9722, 9729} {
		if !codes[n] {
			t.Errorf("errorCodes lacks %d", n)
		}
	}

	e.sim.SetLimits(Limits{MaxAssets: 2})
	r = e.mustOK(e.do(http.MethodGet, "/mdm/v2/service/config", "", nil))
	if got := r.body["limits"].(map[string]any)["maxAssets"]; got != 2.0 {
		t.Errorf("after SetLimits maxAssets = %v, want 2", got)
	}
}

func TestEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		expires time.Duration
		wantExp bool
	}{
		{"always present by default", Options{}, 300 * 24 * time.Hour, true},
		{"absent far from expiry with switch", Options{ExpirationDateOnlyWithin15Days: true}, 300 * 24 * time.Hour, false},
		{"present within 15 days with switch", Options{ExpirationDateOnlyWithin15Days: true}, 10 * 24 * time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			exp := time.Now().Add(tc.expires).UTC().Truncate(time.Second)
			e.sim.SetExpiresAt(e.token, exp)
			for _, path := range []string{"/mdm/v2/client/config", "/mdm/v2/assets", "/mdm/v2/assignments", "/mdm/v2/users"} {
				r := e.mustOK(e.get(path))
				want := map[string]any{"uId": "2049025000000001"}
				if tc.wantExp {
					want["tokenExpirationDate"] = exp.Format("2006-01-02T15:04:05-0700")
				}
				got := map[string]any{"uId": r.body["uId"]}
				if v, ok := r.body["tokenExpirationDate"]; ok {
					got["tokenExpirationDate"] = v
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
				}
				if _, ok := r.body["mdmInfo"]; ok {
					t.Errorf("%s: mdmInfo present before it was set", path)
				}
			}
		})
	}
}

func TestTokenFileFormat(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	exp := time.Date(2030, 11, 8, 22, 33, 22, 0, time.UTC)
	file := sim.AddToken(TokenSpec{OrgName: "ORG12345", ExpiresAt: exp})
	tf, err := decodeTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wireTokenFile{Token: tf.Token, ExpDate: "2030-11-08T22:33:22+0000", OrgName: "ORG12345"}, tf); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	other := sim.AddToken(TokenSpec{OrgName: "ORG12345", ExpiresAt: exp})
	tf2, _ := decodeTokenFile(other)
	if tf2.Token == tf.Token || sim.UID(file) == sim.UID(other) {
		t.Errorf("two tokens share an inner token or uId")
	}
}
