package apple

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fileHandler(t *testing.T, status int, name string) http.HandlerFunc {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
}

var (
	ourMDM   = MDMInfo{ID: "522d5c43-orchard", Name: "Orchard", Metadata: "2.0"}
	otherMDM = MDMInfo{ID: "other-mdm-id", Name: "Other MDM", Metadata: "9.9"}
	expDate  = time.Date(2030, 11, 8, 22, 33, 22, 0, time.UTC)
)

func TestServiceConfig(t *testing.T) {
	f := newFake(t)
	f.handle("GET /service/config", fileHandler(t, 200, "service_config.json"))
	clock := newFakeClock()
	c := f.client(Config{Now: clock.Now})
	ctx := context.Background()
	sc, err := c.ServiceConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultLimits()
	want.All = map[string]int{"maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000, "maxRevokeClientUserIds": 100,
		"maxRevokeSerialNumbers": 100, "maxUsers": 100, "maxNotificationLength": 512, "maxMdmNameLength": 100,
		"maxMdmMetadataLength": 255, "maxMdmIdLength": 100, "maxRequestPerSecond": 15, "maxSubscriptions": 25,
		"maxSubscriptionClientUserIds": 1000, "maxFutureThing": 7}
	if diff := cmp.Diff(want, sc.Limits); diff != "" {
		t.Errorf("Limits mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ErrorCode{{9601, "Login required."}, {9621, "Token expired."}}, sc.ErrorCodes); diff != "" {
		t.Errorf("ErrorCodes mismatch (-want +got):\n%s", diff)
	}
	if len(sc.NotificationTypes) != 4 || sc.URLs["getAssets"] == "" || !sc.FetchedAt.Equal(clock.Now()) {
		t.Errorf("service config = %+v", sc)
	}
	if got, want := sc.InvitationURL("abc"), "https://buy.itunes.apple.com/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount?inviteCode=abc&mt=8"; got != want {
		t.Errorf("InvitationURL = %q, want %q", got, want)
	}
	// Cached for 5 minutes, then refreshed.
	for range 3 {
		if _, err := c.Limits(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.requests("GET /service/config")); n != 1 {
		t.Errorf("service config fetched %d times within its TTL, want 1", n)
	}
	clock.Advance(5*time.Minute + time.Second)
	if _, err := c.ServiceConfig(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET /service/config")); n != 2 {
		t.Errorf("service config fetched %d times after its TTL, want 2", n)
	}
	if r := f.requests("GET /service/config")[0]; r.Auth != "" {
		t.Errorf("service config sent credentials %q; it needs none", r.Auth)
	}
	// A limit error invalidates the cache (limits are dynamic, doc/apple-api.md §9.6).
	tok := testToken(t)
	f.handle("POST /assets/associate", appleError(400, 9700, "Too many assets"))
	if _, err := c.Associate(ctx, tok, ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}}); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.ServiceConfig(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("GET /service/config")); n != 3 {
		t.Errorf("service config fetched %d times after a limit error, want 3", n)
	}
}

func TestLimitsFallBackWhenServiceConfigFails(t *testing.T) {
	f := newFake(t)
	f.handle("GET /service/config", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	c := f.client(Config{})
	l, err := c.Limits(context.Background())
	if err == nil {
		t.Fatal("no error from a failing service config")
	}
	if diff := cmp.Diff(DefaultLimits(), l); diff != "" {
		t.Errorf("fallback limits mismatch (-want +got):\n%s", diff)
	}
	// A failing service config never fails an API call; the default rate applies.
	tok := testToken(t)
	f.handle("GET /client/config", respond(200, map[string]any{"uId": "u"}))
	if _, err := c.ClientConfig(context.Background(), tok); err != nil {
		t.Fatalf("ClientConfig with a failing service config: %v", err)
	}
}

// TestRateLimiterFollowsServiceConfig proves the per-token limiter takes
// maxRequestPerSecond from the service config: 11 requests at 20/s take at
// least 10 intervals of 50ms. (A lower bound cannot flake on a slow machine.)
func TestRateLimiterFollowsServiceConfig(t *testing.T) {
	f := newFake(t)
	f.limits = map[string]int{"maxRequestPerSecond": 20}
	f.handle("GET /client/config", respond(200, map[string]any{"uId": "u"}))
	c := f.client(Config{})
	tok := testToken(t)
	ctx := context.Background()
	if _, err := c.ClientConfig(ctx, tok); err != nil { // warms the service config
		t.Fatal(err)
	}
	start := time.Now()
	for range 10 {
		if _, err := c.ClientConfig(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Errorf("10 more requests at 20/s took %v, want ≥ 450ms", el)
	}
	// Cancelling the context stops a limiter wait at once.
	f.limits = map[string]int{"maxRequestPerSecond": 1}
	c2 := f.client(Config{})
	if _, err := c2.ClientConfig(ctx, tok); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _ = c2.ClientConfig(cctx, tok)
	_, err := c2.ClientConfig(cctx, tok)
	if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "rate limiter")) {
		t.Errorf("limiter wait with a short deadline: err = %v", err)
	}
}

func TestClientConfig(t *testing.T) {
	f := newFake(t)
	f.handle("GET /client/config", fileHandler(t, 200, "client_config.json"))
	c := f.client(Config{MDM: ourMDM})
	tok := testToken(t)
	cc, err := c.ClientConfig(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &ClientConfig{
		Envelope:         Envelope{UID: "2049025000431439", TokenExpirationDate: expDate, MDMInfo: &ourMDM},
		CountryISO2ACode: "US", DefaultPlatform: "volumestore", LocationName: "PS01",
		NotificationAuthToken: "SUp3rS3Cr3t", NotificationURL: "https://example.com/notification",
		SubscribedNotificationTypes: []string{"ASSET_COUNT", "ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED"},
		WebsiteURL:                  "https://school.apple.com",
	}
	if diff := cmp.Diff(want, cc); diff != "" {
		t.Errorf("ClientConfig mismatch (-want +got):\n%s", diff)
	}
	r := f.requests("GET /client/config")[0]
	if r.Auth != "Bearer "+tok.Bearer() {
		t.Errorf("Authorization = %q, want Bearer + the whole token file", r.Auth)
	}
	if _, ok := cc.ClaimedBy(ourMDM.ID); ok {
		t.Error("ClaimedBy(our id) = true")
	}
	for _, s := range []string{cc.String(), sprintAll(cc), sprintAll(*cc)} {
		if strings.Contains(s, "SUp3rS3Cr3t") {
			t.Errorf("notification secret printed: %s", s)
		}
	}
}

func TestClientConfigClaimedElsewhere(t *testing.T) {
	f := newFake(t)
	f.handle("GET /client/config", respond(200, map[string]any{"uId": "u", "locationName": "L", "mdmInfo": otherMDM}))
	c := f.client(Config{MDM: ourMDM})
	cc, err := c.ClientConfig(context.Background(), testToken(t))
	var ce *ClaimedError
	if !errors.As(err, &ce) || !errors.Is(err, ErrClaimedElsewhere) {
		t.Fatalf("err = %v, want *ClaimedError", err)
	}
	if diff := cmp.Diff(otherMDM, ce.Manager); diff != "" {
		t.Errorf("Manager mismatch (-want +got):\n%s", diff)
	}
	if cc == nil || cc.LocationName != "L" {
		t.Fatalf("ClientConfig must come back with the ClaimedError, got %+v", cc)
	}
	if m, ok := cc.ClaimedBy(ourMDM.ID); !ok || m.ID != otherMDM.ID {
		t.Errorf("ClaimedBy = %v, %v", m, ok)
	}
	// Without our own id configured, nothing is compared.
	c2 := f.client(Config{})
	if _, err := c2.ClientConfig(context.Background(), testToken(t)); err != nil {
		t.Errorf("no MDM configured: err = %v", err)
	}
	// An unclaimed token (no mdmInfo) is not claimed elsewhere.
	f.handle("GET /client/config", respond(200, map[string]any{"uId": "u"}))
	if _, err := c.ClientConfig(context.Background(), testToken(t)); err != nil {
		t.Errorf("unclaimed token: err = %v", err)
	}
}

func TestSetClientConfig(t *testing.T) {
	f := newFake(t)
	var mu sync.Mutex
	var stored map[string]any
	f.handle("POST /client/config", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		stored = body
		mu.Unlock()
		writeJSONTest(w, 200, map[string]any{"uId": "u", "mdmInfo": body["mdmInfo"], "notificationUrl": body["notificationUrl"]})
	})
	c := f.client(Config{MDM: ourMDM})
	tok := testToken(t)
	ctx := context.Background()

	cc, err := c.Claim(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if cc.MDMInfo == nil || *cc.MDMInfo != ourMDM {
		t.Errorf("claim answer mdmInfo = %+v", cc.MDMInfo)
	}
	if diff := cmp.Diff(map[string]any{"mdmInfo": map[string]any{"id": ourMDM.ID, "name": ourMDM.Name, "metadata": ourMDM.Metadata}}, stored); diff != "" {
		t.Errorf("claim body mismatch (-want +got):\n%s", diff)
	}
	r := f.requests("POST /client/config")[0]
	if r.ContentType != "application/json" || r.Auth != "Bearer "+tok.Bearer() {
		t.Errorf("headers: Content-Type %q, Authorization ok=%v", r.ContentType, r.Auth == "Bearer "+tok.Bearer())
	}

	_, err = c.SetClientConfig(ctx, tok, ClientConfigRequest{NotificationURL: "https://o.example/n", NotificationAuthToken: "s3cret",
		NotificationTypes: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{"mdmInfo": map[string]any{"id": ourMDM.ID, "name": ourMDM.Name, "metadata": ourMDM.Metadata},
		"notificationUrl": "https://o.example/n", "notificationAuthToken": "s3cret", "notificationTypes": []any{}}
	if diff := cmp.Diff(wantBody, stored); diff != "" {
		t.Errorf("empty types must be sent as [] to unsubscribe (-want +got):\n%s", diff)
	}

	// Someone else claimed in between: the echo names them.
	f.handle("POST /client/config", respond(200, map[string]any{"uId": "u", "mdmInfo": otherMDM}))
	cc, err = c.SetClientConfig(ctx, tok, ClientConfigRequest{})
	if !errors.Is(err, ErrClaimedElsewhere) || cc == nil {
		t.Errorf("SetClientConfig answered by another manager: cc=%v err=%v", cc, err)
	}
	if _, err := f.client(Config{}).Claim(ctx, tok); err == nil {
		t.Error("Claim without Config.MDM.ID must fail")
	}
}

func TestAssets(t *testing.T) {
	f := newFake(t)
	f.handle("GET /assets", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("pageIndex") == "1" {
			writeJSONTest(w, 200, map[string]any{"unlimitedAssets": []map[string]any{{"adamId": "5", "pricingParam": "STDQ", "productType": "App",
				"assignedCount": 4, "deviceAssignable": true, "revocable": true, "supportedPlatforms": []string{"iOS"}}},
				"assets": []any{}, "currentPageIndex": 1, "size": 1, "totalPages": 2, "versionId": "v-assets-2"})
			return
		}
		fileHandler(t, 200, "assets_page.json")(w, r)
	})
	c := f.client(Config{MDM: ourMDM})
	q := AssetsQuery{AdamID: "408709785", ProductType: ProductApp, PricingParam: PricingSTDQ, Revocable: Ptr(true),
		DeviceAssignable: Ptr(false), MinAssignedCount: Ptr(1), MaxAssignedCount: Ptr(9), MinAvailableCount: Ptr(0),
		MaxAvailableCount: Ptr(100), Unlimited: Ptr(true)}
	pages, err := collect(c.Assets(context.Background(), testToken(t), q))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 2 {
		t.Fatalf("got %d pages", len(pages))
	}
	wantFirst := &AssetsPage{
		Envelope: Envelope{UID: "2049025000431439", TokenExpirationDate: expDate, MDMInfo: &ourMDM},
		PageInfo: PageInfo{CurrentPageIndex: 0, NextPageIndex: 1, HasNext: true, Size: 2, TotalPages: 2, VersionID: "v-assets-1", PageVersionID: "v-assets-1"},
		Assets: []Asset{
			{AdamID: "408709785", PricingParam: "STDQ", ProductType: "App", AssignedCount: 3, AvailableCount: 7, TotalCount: 10,
				DeviceAssignable: true, Revocable: true, SupportedPlatforms: []string{"iOS", "macOS"}},
			{AdamID: "377298193", PricingParam: "PLUS", ProductType: "Book", AssignedCount: 1, AvailableCount: 2147483646,
				TotalCount: 2147483647, SupportedPlatforms: []string{"iOS"}},
		},
	}
	if diff := cmp.Diff(wantFirst, pages[0]); diff != "" {
		t.Errorf("page 0 mismatch (-want +got):\n%s", diff)
	}
	if pages[0].Assets[0].IsUnlimited() || !pages[0].Assets[1].IsUnlimited() {
		t.Error("IsUnlimited wrong for counted assets")
	}
	second := pages[1]
	if second.VersionID != "v-assets-1" || second.PageVersionID != "v-assets-2" || len(second.UnlimitedAssets) != 1 ||
		!second.UnlimitedAssets[0].Unlimited || !second.UnlimitedAssets[0].IsUnlimited() {
		t.Errorf("page 1 = %+v", second)
	}
	reqs := f.requests("GET /assets")
	wantQuery := "adamId=408709785&deviceAssignable=false&maxAssignedCount=9&maxAvailableCount=100&minAssignedCount=1&minAvailableCount=0&pricingParam=STDQ&productType=App&revocable=true&unlimited=true&pageIndex=0"
	if reqs[0].Query != wantQuery {
		t.Errorf("query = %q\nwant    %q", reqs[0].Query, wantQuery)
	}
	if !strings.HasSuffix(reqs[1].Query, "&pageIndex=1") {
		t.Errorf("second query = %q", reqs[1].Query)
	}
}

func TestAssignmentsAndUsers(t *testing.T) {
	f := newFake(t)
	f.handle("GET /assignments", fileHandler(t, 200, "assignments_page.json"))
	f.handle("GET /users", fileHandler(t, 200, "users_page.json"))
	c := f.client(Config{})
	ctx := context.Background()
	tok := testToken(t)
	pages, err := collect(c.Assignments(ctx, tok, AssignmentsQuery{AdamID: "1", ClientUserID: "u", SerialNumber: "s", PricingParam: "STDQ",
		SinceVersionID: "v-1", ExcludeInactiveUsers: true, IncludeUserState: true}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Assignment{
		{AdamID: "408709785", PricingParam: "STDQ", SerialNumber: "C02XXXXXXXX1"},
		{AdamID: "408709785", PricingParam: "STDQ", ClientUserID: "client-1", IDHash: "abc=", UserStatus: "Associated"},
		{AdamID: "377298193", PricingParam: "STDQ", SerialNumber: "C02XXXXXXXX2", Removed: true},
	}
	if diff := cmp.Diff(want, pages[0].Assignments); diff != "" {
		t.Errorf("assignments mismatch (-want +got):\n%s", diff)
	}
	if pages[0].VersionID != "v-assign-9" || pages[0].HasNext || pages[0].UID != "2049025000431439" {
		t.Errorf("page = %+v", pages[0].PageInfo)
	}
	if got, want := f.requests("GET /assignments")[0].Query,
		"adamId=1&clientUserId=u&excludeInactiveUsers=true&includeUserState=true&pricingParam=STDQ&serialNumber=s&sinceVersionId=v-1&pageIndex=0"; got != want {
		t.Errorf("query = %q, want %q", got, want)
	}

	upages, err := collect(c.Users(ctx, tok, UsersQuery{ClientUserID: "client-2", ActiveOnly: true, RetiredOnly: true, SinceVersionID: "v-0"}))
	if err != nil {
		t.Fatal(err)
	}
	wantUsers := []User{
		{ClientUserID: "client-1", Email: "a@example.com", IDHash: "h1", InviteCode: "f551b37da07146628e8dcbe0111f0364", Status: UserAssociated},
		{ClientUserID: "client-2", Email: "b@example.com", InviteCode: "c2", Status: UserRegistered},
		{ClientUserID: "client-2", Status: UserRetired},
	}
	if diff := cmp.Diff(wantUsers, upages[0].Users); diff != "" {
		t.Errorf("users mismatch (-want +got):\n%s", diff)
	}
	if got, want := f.requests("GET /users")[0].Query, "activeOnly=true&clientUserId=client-2&retiredOnly=true&sinceVersionId=v-0&pageIndex=0"; got != want {
		t.Errorf("users query = %q, want %q", got, want)
	}
}

func TestManageEndpoints(t *testing.T) {
	f := newFake(t)
	for _, p := range []string{"/assets/associate", "/assets/disassociate", "/assets/revoke", "/users/create", "/users/update", "/users/retire"} {
		f.handle("POST "+p, respond(200, map[string]any{"eventId": "ev" + p, "uId": "u", "tokenExpirationDate": "2030-11-08T22:33:22+0000"}))
	}
	c := f.client(Config{})
	ctx := context.Background()
	tok := testToken(t)
	manage := ManageAssetsRequest{Assets: []AssetRef{{AdamID: "408709785", PricingParam: "STDQ"}, {AdamID: "377298193"}},
		ClientUserIDs: []string{"client-1"}, SerialNumbers: []string{"C02X"}}
	users := []RequestUser{{ClientUserID: "c1", Email: "a@example.com", ManagedAppleID: "a@mab.example"}, {ClientUserID: "c2"}}
	calls := []struct {
		path string
		call func() (*EventResponse, error)
		body string
	}{
		{"/assets/associate", func() (*EventResponse, error) { return c.Associate(ctx, tok, manage) },
			`{"assets":[{"adamId":"408709785","pricingParam":"STDQ"},{"adamId":"377298193"}],"clientUserIds":["client-1"],"serialNumbers":["C02X"]}`},
		{"/assets/disassociate", func() (*EventResponse, error) { return c.Disassociate(ctx, tok, manage) },
			`{"assets":[{"adamId":"408709785","pricingParam":"STDQ"},{"adamId":"377298193"}],"clientUserIds":["client-1"],"serialNumbers":["C02X"]}`},
		{"/assets/revoke", func() (*EventResponse, error) {
			return c.Revoke(ctx, tok, RevokeAssetsRequest{SerialNumbers: []string{"C02X"}})
		}, `{"serialNumbers":["C02X"]}`},
		{"/users/create", func() (*EventResponse, error) { return c.CreateUsers(ctx, tok, users) },
			`{"users":[{"clientUserId":"c1","email":"a@example.com","managedAppleId":"a@mab.example"},{"clientUserId":"c2"}]}`},
		{"/users/update", func() (*EventResponse, error) { return c.UpdateUsers(ctx, tok, users) },
			`{"users":[{"clientUserId":"c1","email":"a@example.com","managedAppleId":"a@mab.example"},{"clientUserId":"c2"}]}`},
		{"/users/retire", func() (*EventResponse, error) { return c.RetireUsers(ctx, tok, users) },
			`{"users":[{"clientUserId":"c1"},{"clientUserId":"c2"}]}`},
	}
	for _, tc := range calls {
		t.Run(tc.path, func(t *testing.T) {
			ev, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			want := &EventResponse{Envelope: Envelope{UID: "u", TokenExpirationDate: expDate}, EventID: "ev" + tc.path}
			if diff := cmp.Diff(want, ev); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
			r := f.requests("POST " + tc.path)
			if len(r) != 1 {
				t.Fatalf("%d requests", len(r))
			}
			if string(r[0].Body) != tc.body {
				t.Errorf("body = %s\nwant   %s", r[0].Body, tc.body)
			}
			if r[0].ContentType != "application/json" {
				t.Errorf("Content-Type = %q", r[0].ContentType)
			}
		})
	}
	// An accepted answer without an eventId is undecodable, not a success.
	f.handle("POST /assets/associate", respond(200, map[string]any{"uId": "u"}))
	if _, err := c.Associate(ctx, tok, manage); !errors.As(err, new(*DecodeError)) {
		t.Errorf("answer without eventId: err = %v", err)
	}
	// Claimed by another manager: Apple accepted the work, so the event comes back too.
	f.handle("POST /assets/associate", respond(200, map[string]any{"eventId": "ev-x", "mdmInfo": otherMDM}))
	ev, err := f.client(Config{MDM: ourMDM}).Associate(ctx, tok, manage)
	if !errors.Is(err, ErrClaimedElsewhere) || ev == nil || ev.EventID != "ev-x" {
		t.Errorf("claimed associate: ev=%v err=%v", ev, err)
	}
}

func TestEventStatus(t *testing.T) {
	f := newFake(t)
	f.handle("GET /status", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("eventId") != "ed3edfc3-1" {
			appleError(400, 9708, "Event ID not found.")(w, r)
			return
		}
		fileHandler(t, 200, "event_status.json")(w, r)
	})
	c := f.client(Config{})
	ctx := context.Background()
	tok := testToken(t)
	st, err := c.EventStatus(ctx, tok, "ed3edfc3-1")
	if err != nil {
		t.Fatal(err)
	}
	want := &EventStatus{
		Envelope: Envelope{UID: "2049025000431439", TokenExpirationDate: expDate},
		EventID:  "ed3edfc3-1", Status: EventFailed, Type: EventTypeAssociate, NumCompleted: 14, NumRequested: 16,
		Failures: []EventFailure{
			{Number: 9609, Message: "Unable to find registered user.", Info: &ErrorInfo{ClientUserIDs: []string{"client-4"}}},
			{Number: 9709, Message: "There aren't enough assets available to complete this association.",
				Info: &ErrorInfo{Assets: []AssetRef{{AdamID: "408709785", PricingParam: "STDQ"}}, SerialNumbers: []string{"C02XXXXXXXX1"}}},
		},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("EventStatus mismatch (-want +got):\n%s", diff)
	}
	if !st.Done() || st.Pending() {
		t.Error("Done/Pending wrong")
	}
	if !errors.Is(st.Failures[0].Err(), ErrUnknownUser) || !errors.Is(st.Failures[1].Err(), ErrNotEnoughLicenses) {
		t.Error("failure kinds wrong")
	}
	if _, err := c.EventStatus(ctx, tok, "nope"); !errors.Is(err, ErrEventNotFound) {
		t.Errorf("unknown event: err = %v", err)
	}
	if _, err := c.EventStatus(ctx, tok, ""); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty event id: err = %v", err)
	}
	if q := f.requests("GET /status")[0].Query; q != "eventId=ed3edfc3-1" {
		t.Errorf("query = %q", q)
	}
}

// TestErrorAnswers checks that every error number of doc/apple-api.md §9.2-9.4 is
// read from the body whatever the HTTP status — including 200 — and comes
// back as an *Error of the right kind, or as a throttle, without retrying
// anything that is not a throttle.
func TestErrorAnswers(t *testing.T) {
	type tc struct {
		status, number int
		kind           error
		throttle       bool
	}
	cases := []tc{
		{401, 9601, ErrTokenInvalid, false}, {400, 9602, ErrInvalidRequest, false}, {500, 9603, ErrInternal, true},
		{400, 9609, ErrUnknownUser, false}, {401, 9621, ErrTokenExpired, false}, {200, 9622, ErrTokenInvalid, false},
		{401, 9622, ErrTokenInvalid, false}, {400, 9623, ErrInvalidRequest, false}, {401, 9625, ErrTokenRevoked, false},
		{410, 9634, ErrServiceGone, false}, {403, 9637, ErrForbidden, false}, {429, 9646, ErrThrottled, true},
		{200, 9646, ErrThrottled, true}, {403, 9647, ErrForbidden, false}, {400, 9650, ErrBadPageIndex, false},
		{400, 9700, ErrLimitExceeded, false}, {400, 9701, ErrLimitExceeded, false}, {400, 9702, ErrLimitExceeded, false},
		{400, 9703, ErrDuplicate, false}, {400, 9704, ErrDuplicate, false}, {400, 9705, ErrDuplicate, false},
		{400, 9706, ErrNotRevocable, false}, {400, 9707, ErrNotDeviceAssignable, false}, {400, 9708, ErrEventNotFound, false},
		{400, 9709, ErrNotEnoughLicenses, false}, {400, 9710, ErrInvalidRequest, false}, {400, 9711, ErrInvalidRequest, false},
		{400, 9712, ErrInvalidRequest, false}, {400, 9713, ErrInvalidRequest, false}, {400, 9714, ErrLimitExceeded, false},
		{400, 9715, ErrDuplicate, false}, {400, 9716, ErrUserExists, false}, {400, 9717, ErrInvalidRequest, false},
		{400, 9718, ErrInvalidRequest, false}, {400, 9719, ErrInvalidRequest, false}, {400, 9720, ErrInvalidRequest, false},
		{400, 9721, ErrBadVersion, false}, {401, 9722, ErrTokenInvalid, false}, {400, 9723, ErrInvalidRequest, false},
		{400, 9724, ErrInvalidRequest, false}, {400, 9725, ErrInvalidRequest, false}, {405, 9726, ErrInvalidRequest, false},
		{415, 9727, ErrInvalidRequest, false}, {400, 9728, ErrNotificationUnreachable, false}, {503, 9729, ErrThrottled, true},
		{400, 9635, ErrAppleAccountConflict, false}, {400, 9641, ErrAppleAccountConflict, false}, {503, 9644, ErrMaintenance, true},
		{400, 9616, ErrAlreadyAssigned, false}, {400, 9619, ErrNotAssociated, false}, {400, 9811, nil, false},
		{400, 9999, nil, false},
	}
	for _, tt := range cases {
		f := newFake(t)
		f.handle("GET /assets", appleError(tt.status, tt.number, "message for "+http.StatusText(tt.status)))
		clock := newFakeClock()
		c := f.client(Config{Now: clock.Now, MaxAttempts: 3})
		c.jitter = func(d time.Duration) time.Duration { return d }
		_, err := collect(c.Assets(context.Background(), testToken(t), AssetsQuery{}))
		if err == nil {
			t.Errorf("%d/%d: no error", tt.status, tt.number)
			continue
		}
		if tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("%d/%d: err = %v, want kind %v", tt.status, tt.number, err, tt.kind)
		}
		ae, ok := errors.AsType[*Error](err)
		if !ok || ae.Number != tt.number || ae.HTTPStatus != tt.status || !strings.HasPrefix(ae.Message, "message for") || ae.Endpoint != "GET /assets" {
			t.Errorf("%d/%d: *Error = %+v", tt.status, tt.number, ae)
		}
		_, throttled := ThrottledUntil(err)
		if throttled != tt.throttle {
			t.Errorf("%d/%d: throttled = %v, want %v", tt.status, tt.number, throttled, tt.throttle)
		}
		if n := len(f.requests("GET /assets")); n != 1 {
			t.Errorf("%d/%d: %d requests, want 1 (no retry without an inline wait)", tt.status, tt.number, n)
		}
	}
}

func TestNonJSONErrorAnswers(t *testing.T) {
	f := newFake(t)
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		_, _ = w.Write([]byte("<html>" + r.Header.Get("Authorization") + "</html>"))
	})
	c := f.client(Config{})
	tok := testToken(t)
	_, err := c.ClientConfig(context.Background(), tok)
	ae, ok := errors.AsType[*Error](err)
	if !ok || ae.HTTPStatus != 404 || ae.Number != 0 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "text/html") {
		t.Errorf("error should describe the body: %v", err)
	}
	assertNoSecret(t, err.Error(), tok)

	// A truncated 200 body is a DecodeError, never retried.
	f.handle("GET /client/config", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"uId": "u", "countryISO2ACode": `))
	})
	_, err = c.ClientConfig(context.Background(), tok)
	if !errors.As(err, new(*DecodeError)) {
		t.Errorf("truncated body: err = %v", err)
	}
	// An oversized answer is refused.
	c2 := f.client(Config{MaxResponseBytes: 16})
	f.handle("GET /client/config", respond(200, map[string]any{"uId": strings.Repeat("x", 100)}))
	if _, err := c2.ClientConfig(context.Background(), tok); !errors.As(err, new(*DecodeError)) {
		t.Errorf("oversized body: err = %v", err)
	}
}

func TestObserveHook(t *testing.T) {
	f := newFake(t)
	f.handle("GET /client/config", appleError(401, 9621, "expired"))
	type obs struct {
		endpoint       string
		status, number int
	}
	var mu sync.Mutex
	var got []obs
	c := f.client(Config{Observe: func(endpoint string, status, number int, d time.Duration) {
		mu.Lock()
		got = append(got, obs{endpoint, status, number})
		mu.Unlock()
	}})
	_, _ = c.ClientConfig(context.Background(), testToken(t))
	want := []obs{{"GET /service/config", 200, 0}, {"GET /client/config", 401, 9621}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(obs{})); diff != "" {
		t.Errorf("observations mismatch (-want +got):\n%s", diff)
	}
}
