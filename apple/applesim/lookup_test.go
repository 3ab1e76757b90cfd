package applesim

import (
	"net/http"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookup(t *testing.T) {
	e := newEnv(t, Options{})
	other := e.sim.AddToken(TokenSpec{UID: "other"})
	e.sim.AddAsset(e.token, Asset{AdamID: "1", Name: "Pocket Atlas", BundleID: "com.acme.atlas", Total: 5, DeviceAssignable: true, Revocable: true, Price: 2.99, Version: "3.1.0", Platforms: []string{"iOS", "macOS"}})
	e.sim.AddAsset(e.token, Asset{AdamID: "2", Name: "Math Quest", Total: 5, NotSoldIn: []string{"de"}})
	e.sim.AddAsset(e.token, Asset{AdamID: "3", Name: "Field Service (Custom)", B2B: true, Total: 5, DeviceAssignable: true})
	e.sim.AddAsset(e.token, Asset{AdamID: "4", Name: "The Art of Algebra", ProductType: "Book", Total: 5})

	lookup := func(query, cookie string) ([]string, response) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/lookup?version=2&p=mdm-lockup&caller=MDM&"+query, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "itvt", Value: cookie})
		}
		r := e.send(req)
		var found []string
		for id := range r.body["results"].(map[string]any) {
			found = append(found, id)
		}
		sort.Strings(found)
		return found, r
	}
	tests := []struct {
		name   string
		query  string
		cookie string
		want   []string
	}{
		{"us without cookie", "id=1,2,3,4,999&cc=us", "", []string{"1", "2", "4"}},
		{"default storefront is us", "id=1,2", "", []string{"1", "2"}},
		{"not sold in de", "id=1,2,3&cc=de", "", []string{"1"}},
		{"B2B with owner's cookie", "id=1,3&cc=us", "owner", []string{"1", "3"}},
		{"B2B with another token's cookie", "id=3", "other", nil},
		{"B2B with a garbage cookie", "id=3", "garbage", nil},
		{"macappstore platform", "id=1,2&platform=macappstore", "", []string{"1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cookie := tc.cookie
			switch cookie {
			case "owner":
				cookie = e.token
			case "other":
				cookie = other
			}
			got, r := lookup(tc.query, cookie)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s\nbody: %s", diff, r.raw)
			}
			if r.body["isAuthenticated"] != false || r.body["version"] != 2.0 {
				t.Errorf("envelope: %s", r.raw)
			}
		})
	}
	_, r := lookup("id=1&cc=us", "")
	want := map[string]any{
		"id": "1", "name": "Pocket Atlas", "bundleId": "com.acme.atlas",
		"artwork":                          map[string]any{"url": "https://is1-ssl.mzstatic.com/image/thumb/Purple/v4/sim/1/AppIcon-0-0-1x_U007emarketing.png/{w}x{h}bb.{f}", "width": 1024.0, "height": 1024.0},
		"deviceFamilies":                   []any{"iphone", "ipad", "mac"},
		"kind":                             "iosSoftware",
		"isB2BCustomApp":                   false,
		"isVppDeviceBasedLicensingEnabled": true,
		"minimumOSVersion":                 "15.0",
	}
	got := r.body["results"].(map[string]any)["1"].(map[string]any)
	offers := got["offers"].([]any)[0].(map[string]any)
	delete(got, "offers")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result mismatch (-want +got):\n%s", diff)
	}
	if offers["price"] != 2.99 || offers["version"].(map[string]any)["display"] != "3.1.0" {
		t.Errorf("offers = %v", offers)
	}
	if diff := cmp.Diff(map[string]any{"storefront": map[string]any{"cc": "us", "id": "143441"}}, r.body["meta"]); diff != "" {
		t.Errorf("meta mismatch (-want +got):\n%s", diff)
	}
	// Apple's own path answers too.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+appleLookupPath+"?id=1,2", nil)
	if r := e.send(req); len(r.body["results"].(map[string]any)) != 2 {
		t.Errorf("lookup at Apple's path: %s", r.raw)
	}
	// Lookups are logged, with the token's uId when the cookie names one.
	var uids []string
	for _, q := range e.sim.Requests() {
		if q.Path == "/lookup" || q.Path == appleLookupPath {
			uids = append(uids, q.Token)
		}
	}
	if diff := cmp.Diff([]string{"", "", "", "2049025000000001", "other", "", "", "", ""}, uids); diff != "" {
		t.Errorf("request log mismatch (-want +got):\n%s", diff)
	}
}
