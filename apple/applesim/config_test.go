package applesim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClientConfigValidation(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer failing.Close()
	mdm := func(id, name, meta string) map[string]any {
		return map[string]any{"mdmInfo": map[string]string{"id": id, "name": name, "metadata": meta}}
	}
	tests := []struct {
		name string
		body any
		want outcome
	}{
		{"mdmInfo ok", mdm("orchard-1", "Orchard", "1.0"), outcome{200, 0}},
		{"mdmInfo missing metadata", map[string]any{"mdmInfo": map[string]string{"id": "a", "name": "b"}}, outcome{400, 9723}},
		{"mdmInfo empty id", mdm("", "b", "c"), outcome{400, 9723}},
		{"mdmInfo id too long", mdm(strings.Repeat("x", 101), "b", "c"), outcome{400, 9724}},
		{"mdmInfo name too long", mdm("a", strings.Repeat("x", 101), "c"), outcome{400, 9725}},
		{"mdmInfo metadata too long", mdm("a", "b", strings.Repeat("x", 256)), outcome{400, 9713}},
		{"url without token", map[string]any{"notificationUrl": hook.URL}, outcome{400, 9710}},
		{"token without url", map[string]any{"notificationAuthToken": "secret"}, outcome{400, 9710}},
		{"url too long", map[string]any{"notificationUrl": "https://example.com/" + strings.Repeat("x", 600), "notificationAuthToken": "s"}, outcome{400, 9711}},
		{"token too long", map[string]any{"notificationUrl": hook.URL, "notificationAuthToken": strings.Repeat("x", 513)}, outcome{400, 9711}},
		{"http to a public host", map[string]any{"notificationUrl": "http://example.com/hook", "notificationAuthToken": "s"}, outcome{400, 9712}},
		{"not a url", map[string]any{"notificationUrl": "::nope", "notificationAuthToken": "s"}, outcome{400, 9712}},
		{"unreachable", map[string]any{"notificationUrl": failing.URL, "notificationAuthToken": "s"}, outcome{400, 9728}},
		{"loopback http accepted", map[string]any{"notificationUrl": hook.URL, "notificationAuthToken": "s", "notificationTypes": []string{"ASSET_COUNT"}}, outcome{200, 0}},
		{"unknown notification type", map[string]any{"notificationTypes": []string{"NOPE"}}, outcome{400, 9602}},
		{"empty body keeps everything", "", outcome{200, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			r := e.post("/mdm/v2/client/config", tc.body)
			if diff := cmp.Diff(tc.want, outcome{r.status, r.errNum()}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s\nbody: %s", diff, r.raw)
			}
		})
	}
}

func TestClientConfigRoundTripAndTakeover(t *testing.T) {
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer hook.Close()
	e := newEnv(t, Options{})
	r := e.mustOK(e.post("/mdm/v2/client/config", map[string]any{
		"mdmInfo":               map[string]string{"id": "orchard-1", "name": "Orchard", "metadata": "1.0"},
		"notificationUrl":       hook.URL,
		"notificationAuthToken": "s3cret",
		"notificationTypes":     []string{"ASSET_MANAGEMENT", "ASSET_COUNT"},
	}))
	want := map[string]any{
		"countryISO2ACode": "US", "defaultPlatform": "enterprisestore", "locationName": "Test Location",
		"mdmInfo":               map[string]any{"id": "orchard-1", "name": "Orchard", "metadata": "1.0"},
		"notificationAuthToken": "s3cret", "notificationUrl": hook.URL,
		"subscribedNotificationTypes": []any{"ASSET_MANAGEMENT", "ASSET_COUNT"},
		"tokenExpirationDate":         r.body["tokenExpirationDate"], "uId": "2049025000000001",
		"websiteURL": "https://business.apple.com",
	}
	if diff := cmp.Diff(want, r.body); diff != "" {
		t.Errorf("POST response mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, e.mustOK(e.get("/mdm/v2/client/config")).body); diff != "" {
		t.Errorf("GET response mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Bearer s3cret"}, got); diff != "" {
		t.Errorf("test notification mismatch (-want +got):\n%s", diff)
	}
	// A partial update keeps the other fields.
	r = e.mustOK(e.post("/mdm/v2/client/config", map[string]any{"notificationTypes": []string{}}))
	if r.body["notificationUrl"] != hook.URL || r.body["subscribedNotificationTypes"] != nil {
		t.Errorf("after unsubscribing: %s", r.raw)
	}
	// Another manager takes over: every response now carries its mdmInfo.
	e.sim.SetMDMInfo(e.token, "other-mdm", "Other", "9.9")
	for _, path := range []string{"/mdm/v2/assets", "/mdm/v2/assignments", "/mdm/v2/users", "/mdm/v2/client/config"} {
		r := e.mustOK(e.get(path))
		if diff := cmp.Diff(map[string]any{"id": "other-mdm", "name": "Other", "metadata": "9.9"}, r.body["mdmInfo"]); diff != "" {
			t.Errorf("%s mdmInfo mismatch (-want +got):\n%s", path, diff)
		}
	}
	e.sim.AddAsset(e.token, Asset{AdamID: "1", Total: 1, DeviceAssignable: true})
	ev := e.mustOK(e.post("/mdm/v2/assets/associate", assetsBody([]string{"1"}, nil, []string{"S"})))
	if ev.body["mdmInfo"].(map[string]any)["id"] != "other-mdm" {
		t.Errorf("EventResponse lacks mdmInfo: %s", ev.raw)
	}
	if st := e.waitEvent(e.token, ev.str("eventId")); st.body["mdmInfo"].(map[string]any)["id"] != "other-mdm" {
		t.Errorf("StatusResponse lacks mdmInfo: %s", st.raw)
	}
	id, name, meta := e.sim.MDMInfo(e.token)
	if diff := cmp.Diff([]string{"other-mdm", "Other", "9.9"}, []string{id, name, meta}); diff != "" {
		t.Errorf("MDMInfo mismatch (-want +got):\n%s", diff)
	}
	// Clearing the notification configuration.
	r = e.mustOK(e.post("/mdm/v2/client/config", map[string]any{"notificationUrl": "", "notificationAuthToken": ""}))
	if _, ok := r.body["notificationUrl"]; ok {
		t.Errorf("notificationUrl after clearing: %s", r.raw)
	}
}
