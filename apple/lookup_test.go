package apple

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// lookupFake serves a doc/apple-api.md §10.2 lookup: apps sold everywhere except in notSold.
func lookupFake(t *testing.T, f *fakeAPI, notSold map[string][]string) {
	f.handle("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		results := map[string]any{}
		for _, id := range strings.Split(q.Get("id"), ",") {
			if id == "" || strings.HasPrefix(id, "999") {
				continue
			}
			skip := false
			for _, cc := range notSold[id] {
				if cc == q.Get("cc") {
					skip = true
				}
			}
			if skip {
				continue
			}
			results[id] = map[string]any{"id": id, "name": "App " + id, "bundleId": "com.example." + id, "kind": "iosSoftware",
				"artwork": map[string]any{"url": "https://img.example/" + id + "/{w}x{h}bb.{f}"}, "deviceFamilies": []string{"iphone", "ipad"},
				"isB2BCustomApp": id == "42", "isVppDeviceBasedLicensingEnabled": true, "minimumOSVersion": "16.0",
				"offers": []map[string]any{{"price": 0, "version": map[string]any{"display": "1.2", "externalId": 7}}}}
		}
		writeJSONTest(w, 200, map[string]any{"results": results, "isAuthenticated": false, "version": 2})
	})
}

func TestLookupApps(t *testing.T) {
	f := newFake(t)
	lookupFake(t, f, map[string][]string{"2": {"fr"}})
	clock := newFakeClock()
	c := f.client(Config{Now: clock.Now})
	tok := testToken(t)
	ctx := context.Background()
	ids := []string{"1", "2", "999", "1", " ", "42"}
	got, err := c.LookupApps(ctx, tok, "FR", ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]AppMetadata{
		"1": {AdamID: "1", Name: "App 1", BundleID: "com.example.1", IconURL: "https://img.example/1/512x512bb.png", Kind: "iosSoftware",
			Platforms: []string{"iOS", "iPadOS"}, DeviceBasedLicensing: true, MinimumOSVersion: "16.0", Version: "1.2", Free: true},
		"42": {AdamID: "42", Name: "App 42", BundleID: "com.example.42", IconURL: "https://img.example/42/512x512bb.png", Kind: "iosSoftware",
			Platforms: []string{"iOS", "iPadOS"}, B2B: true, DeviceBasedLicensing: true, MinimumOSVersion: "16.0", Version: "1.2", Free: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LookupApps mismatch (-want +got):\n%s", diff)
	}
	reqs := f.requests("GET /lookup")
	if len(reqs) != 1 {
		t.Fatalf("%d lookup requests", len(reqs))
	}
	q, _ := url.ParseQuery(reqs[0].Query)
	if q.Get("id") != "1,2,999,42" || q.Get("cc") != "fr" || q.Get("platform") != "enterprisestore" || q.Get("version") != "2" ||
		q.Get("p") != "mdm-lockup" || q.Get("caller") != "MDM" {
		t.Errorf("lookup query = %q", reqs[0].Query)
	}
	if reqs[0].Cookie != "itvt="+tok.Bearer() || reqs[0].Auth != "" {
		t.Errorf("authenticated lookup must send the itvt cookie and no Authorization header")
	}
	// Cached, negative answers included.
	if _, err := c.LookupApps(ctx, tok, "fr", []string{"2", "999", "1"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET /lookup")); n != 1 {
		t.Errorf("%d requests; cached ids must not be asked again", n)
	}
	// Expiry after the TTL (24h).
	clock.Advance(24*time.Hour + time.Second)
	if _, err := c.LookupApps(ctx, tok, "fr", []string{"1"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET /lookup")); n != 2 {
		t.Errorf("%d requests after the TTL, want 2", n)
	}
	// Anonymous lookups send no cookie and are cached apart.
	if _, err := c.LookupApps(ctx, nil, "fr", []string{"1"}); err != nil {
		t.Fatal(err)
	}
	reqs = f.requests("GET /lookup")
	if len(reqs) != 3 || reqs[2].Cookie != "" {
		t.Errorf("anonymous lookup: %d requests, cookie %q", len(reqs), reqs[2].Cookie)
	}
}

func TestLookupBatches(t *testing.T) {
	f := newFake(t)
	lookupFake(t, f, nil)
	c := f.client(Config{})
	var ids []string
	for i := range 250 {
		ids = append(ids, strconv.Itoa(1000+i))
	}
	got, err := c.LookupApps(context.Background(), nil, "", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 {
		t.Errorf("%d results", len(got))
	}
	reqs := f.requests("GET /lookup")
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 batches", len(reqs))
	}
	for _, r := range reqs {
		q, _ := url.ParseQuery(r.Query)
		if n := len(strings.Split(q.Get("id"), ",")); n > 100 {
			t.Errorf("batch of %d ids", n)
		}
		if q.Get("cc") != "us" {
			t.Errorf("default country %q", q.Get("cc"))
		}
	}
}

func TestAvailability(t *testing.T) {
	f := newFake(t)
	lookupFake(t, f, map[string][]string{"2": {"fr", "de"}, "3": {"us"}})
	c := f.client(Config{})
	got, err := c.Availability(context.Background(), testToken(t), []string{"1", "2", "3", "999"}, []string{"US", "fr", "de"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"1": {"US", "FR", "DE"}, "2": {"US"}, "3": {"FR", "DE"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Availability mismatch (-want +got):\n%s", diff)
	}
	// A throttled lookup is a lookup-scoped throttle, not an account hold.
	f.handle("GET /lookup", throttleAnswer(429, 0, "60"))
	_, err = c.Availability(context.Background(), nil, []string{"5"}, []string{"gb"})
	te, ok := errors.AsType[*ThrottleError](err)
	if !ok || te.Scope != ScopeLookup {
		t.Fatalf("err = %v", err)
	}
	if _, held := ThrottledUntil(err); held {
		t.Error("lookup throttle must not hold the account")
	}
}

func TestDecodeLookupPublicShape(t *testing.T) {
	body := `{"resultCount":1,"results":[{"trackId":361309726,"trackName":"Pages","bundleId":"com.apple.iWork.Pages","version":"14.1",
		"artworkUrl512":"https://img/512.png","artworkUrl60":"https://img/60.png","supportedDevices":["iPhone15-iPhone15","iPadPro-iPadPro","AppleVisionPro"],
		"kind":"software","minimumOsVersion":"17.0"}]}`
	got, err := decodeLookup([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]AppMetadata{"361309726": {AdamID: "361309726", Name: "Pages", BundleID: "com.apple.iWork.Pages", Version: "14.1",
		IconURL: "https://img/512.png", Kind: "software", Platforms: []string{"iOS", "iPadOS", "visionOS"}, MinimumOSVersion: "17.0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("public lookup mismatch (-want +got):\n%s", diff)
	}
	if _, err := decodeLookup([]byte(`{"results": 3}`)); err == nil {
		t.Error("numeric results accepted")
	}
}
