package apple_test

// Integration tests of the client against the simulator (apple/applesim) over
// real HTTP: every endpoint, the error numbers of doc/apple-api.md §9.2–9.3 the
// simulator produces, both settings of every doc/apple-api.md §15 switch, throttling with the
// request log as proof, notifications and the metadata lookup. Error numbers
// the simulator cannot be made to answer to this client (9601, 9722, 9726,
// 9727: the client never sends a malformed header, a wrong method or content
// type; 9623, 9634, 9637, 9647, 9644, 9635) are covered with httptest fakes in
// client_test.go (TestErrorAnswers).

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple"
	"orchard/apple/applesim"
)

var orchardMDM = apple.MDMInfo{ID: "orchard-test-instance", Name: "Orchard", Metadata: "test"}

type simEnv struct {
	t   *testing.T
	sim *applesim.Sim
	srv *httptest.Server
	c   *apple.Client
}

// newSimEnv starts the simulator on a loopback server and a client for it.
// The simulator advertises a high maxRequestPerSecond so that the client's
// limiter (which follows the service config) does not slow the tests.
func newSimEnv(t *testing.T, opts applesim.Options, cfg apple.Config) *simEnv {
	t.Helper()
	if opts.EventDelay == 0 {
		opts.EventDelay = time.Millisecond
	}
	if opts.NotificationRetryBackoff == 0 {
		opts.NotificationRetryBackoff = 10 * time.Millisecond
	}
	sim := applesim.New(opts)
	sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 5000})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		_ = sim.Close()
	})
	e := &simEnv{t: t, sim: sim, srv: srv}
	e.c = e.client(cfg)
	return e
}

func (e *simEnv) client(cfg apple.Config) *apple.Client {
	cfg.BaseURL = e.srv.URL + "/mdm/v2"
	cfg.LookupURL = e.srv.URL + "/lookup"
	if cfg.MDM.ID == "" {
		cfg.MDM = orchardMDM
	}
	if cfg.LookupRequestsPerSecond == 0 {
		cfg.LookupRequestsPerSecond = 1000
	}
	return apple.New(cfg)
}

// token adds a token to the simulator and parses its file.
func (e *simEnv) token(spec applesim.TokenSpec) (*apple.Token, string) {
	e.t.Helper()
	file := e.sim.AddToken(spec)
	tok, err := apple.ParseToken([]byte(file+"\n"), time.Now())
	if err != nil {
		e.t.Fatalf("ParseToken(simulator token): %v", err)
	}
	return tok, file
}

// wait returns a function that takes a manage call's results and polls the
// event until it is done: e.wait(tok)(c.Associate(...)).
func (e *simEnv) wait(tok *apple.Token) func(*apple.EventResponse, error) *apple.EventStatus {
	return func(ev *apple.EventResponse, err error) *apple.EventStatus {
		e.t.Helper()
		return e.poll(tok, ev, err)
	}
}

func (e *simEnv) poll(tok *apple.Token, ev *apple.EventResponse, err error) *apple.EventStatus {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.c.EventStatus(context.Background(), tok, ev.EventID)
		if err != nil {
			e.t.Fatalf("EventStatus: %v", err)
		}
		if st.Done() {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("event %s still %s", ev.EventID, st.Status)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func allAssignments(t *testing.T, c *apple.Client, tok *apple.Token, q apple.AssignmentsQuery) ([]apple.Assignment, string) {
	t.Helper()
	var out []apple.Assignment
	version := ""
	for p, err := range c.Assignments(context.Background(), tok, q) {
		if err != nil {
			t.Fatalf("Assignments: %v", err)
		}
		out = append(out, p.Assignments...)
		version = p.VersionID
	}
	return out, version
}

func TestSimTokenClientConfigAndClaim(t *testing.T) {
	e := newSimEnv(t, applesim.Options{}, apple.Config{})
	exp := time.Now().Add(200 * 24 * time.Hour).UTC().Truncate(time.Second)
	tok, file := e.token(applesim.TokenSpec{OrgName: "Maple Grove", LocationName: "North Campus", Country: "fr", ExpiresAt: exp, DefaultPlatform: "volumestore"})
	if tok.OrgName != "Maple Grove" || !tok.ExpiresAt.Equal(exp) || tok.Bearer() != file {
		t.Fatalf("token = %v (bearer is the file: %v)", tok, tok.Bearer() == file)
	}
	ctx := context.Background()
	cc, err := e.c.ClientConfig(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &apple.ClientConfig{
		Envelope:         apple.Envelope{UID: e.sim.UID(file), TokenExpirationDate: exp},
		CountryISO2ACode: "FR", DefaultPlatform: "volumestore", LocationName: "North Campus", WebsiteURL: "https://school.apple.com",
	}
	if diff := cmp.Diff(want, cc); diff != "" {
		t.Errorf("ClientConfig mismatch (-want +got):\n%s", diff)
	}
	// Claim: our mdmInfo is stored and echoed.
	cc, err = e.c.Claim(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if id, name, meta := e.sim.MDMInfo(file); id != orchardMDM.ID || name != orchardMDM.Name || meta != orchardMDM.Metadata {
		t.Errorf("simulator mdmInfo = %q %q %q", id, name, meta)
	}
	if cc.MDMInfo == nil || *cc.MDMInfo != orchardMDM || cc.LocationName != "North Campus" {
		t.Errorf("claim answer = %v", cc)
	}
	// Another manager takes over: every answer now names it.
	e.sim.AddAsset(file, applesim.Asset{AdamID: "100", Total: 5, DeviceAssignable: true, Revocable: true})
	e.sim.SetMDMInfo(file, "rival-id", "Rival MDM", "7.1")
	rival := apple.MDMInfo{ID: "rival-id", Name: "Rival MDM", Metadata: "7.1"}
	cc, err = e.c.ClientConfig(ctx, tok)
	var ce *apple.ClaimedError
	if !errors.As(err, &ce) || ce.Manager != rival || cc == nil || cc.LocationName != "North Campus" {
		t.Fatalf("ClientConfig after takeover: cc=%v err=%v", cc, err)
	}
	if _, err := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{})); !errors.Is(err, apple.ErrClaimedElsewhere) {
		t.Errorf("Assets after takeover: %v", err)
	}
	ev, err := e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "100"}}, SerialNumbers: []string{"S1"}})
	if !errors.Is(err, apple.ErrClaimedElsewhere) || ev == nil || ev.EventID == "" {
		t.Errorf("Associate after takeover must return the accepted event with the error: ev=%v err=%v", ev, err)
	}
	if !apple.IsTokenUnusable(err) {
		t.Error("a token claimed elsewhere is unusable")
	}
	// Taking it back.
	if _, err := e.c.Claim(ctx, tok); err != nil {
		t.Fatalf("take over: %v", err)
	}
	if _, err := e.c.ClientConfig(ctx, tok); err != nil {
		t.Errorf("after taking it back: %v", err)
	}
}

func TestSimClientConfigValidation(t *testing.T) {
	e := newSimEnv(t, applesim.Options{}, apple.Config{})
	tok, _ := e.token(applesim.TokenSpec{})
	ctx := context.Background()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String() + "/notify"
	_ = closed.Close()
	tests := []struct {
		name string
		req  apple.ClientConfigRequest
		num  int
		kind error
	}{
		{"9723 incomplete mdmInfo", apple.ClientConfigRequest{MDMInfo: &apple.MDMInfo{ID: "x"}}, 9723, apple.ErrInvalidRequest},
		{"9724 id too long", apple.ClientConfigRequest{MDMInfo: &apple.MDMInfo{ID: strings.Repeat("i", 101), Name: "n", Metadata: "m"}}, 9724, apple.ErrInvalidRequest},
		{"9725 name too long", apple.ClientConfigRequest{MDMInfo: &apple.MDMInfo{ID: "i", Name: strings.Repeat("n", 101), Metadata: "m"}}, 9725, apple.ErrInvalidRequest},
		{"9713 metadata too long", apple.ClientConfigRequest{MDMInfo: &apple.MDMInfo{ID: "i", Name: "n", Metadata: strings.Repeat("m", 256)}}, 9713, apple.ErrInvalidRequest},
		{"9710 url without token", apple.ClientConfigRequest{NotificationURL: "https://example.com/n"}, 9710, apple.ErrInvalidRequest},
		{"9711 too long", apple.ClientConfigRequest{NotificationURL: "https://example.com/" + strings.Repeat("n", 600), NotificationAuthToken: "s"}, 9711, apple.ErrInvalidRequest},
		{"9712 not https", apple.ClientConfigRequest{NotificationURL: "http://example.com/n", NotificationAuthToken: "s"}, 9712, apple.ErrInvalidRequest},
		{"9728 unreachable", apple.ClientConfigRequest{NotificationURL: deadURL, NotificationAuthToken: "s"}, 9728, apple.ErrNotificationUnreachable},
		{"9602 unknown type", apple.ClientConfigRequest{NotificationTypes: []string{"NOPE"}}, 9602, apple.ErrInvalidRequest},
	}
	for _, tt := range tests {
		_, err := e.c.SetClientConfig(ctx, tok, tt.req)
		if !errors.Is(err, tt.kind) || apple.ErrorNumber(err) != tt.num {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

// notificationReceiver is Orchard's notification endpoint in miniature:
// verify the secret, parse, deduplicate.
type notificationReceiver struct {
	secret string
	dedup  *apple.Deduper
	mu     sync.Mutex
	got    []*apple.Notification
	dups   int
	denied int
}

func (n *notificationReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !apple.VerifyNotificationAuth(r.Header.Get("Authorization"), n.secret) {
		n.mu.Lock()
		n.denied++
		n.mu.Unlock()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	note, err := apple.ParseNotification(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dedup.Seen(note.NotificationID) {
		n.dups++
		return
	}
	n.got = append(n.got, note)
}

func (n *notificationReceiver) waitFor(t *testing.T, typ string) *apple.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		for _, note := range n.got {
			if note.NotificationType == typ {
				n.mu.Unlock()
				return note
			}
		}
		n.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no %s notification", typ)
	return nil
}

func TestSimNotifications(t *testing.T) {
	e := newSimEnv(t, applesim.Options{DuplicateNotifications: true}, apple.Config{})
	tok, file := e.token(applesim.TokenSpec{})
	recv := &notificationReceiver{secret: "n0tification-s3cret", dedup: apple.NewDeduper(1000, time.Hour)}
	rs := httptest.NewServer(recv)
	defer rs.Close()
	ctx := context.Background()
	cc, err := e.c.SetClientConfig(ctx, tok, apple.ClientConfigRequest{NotificationURL: rs.URL + "/apple/notifications/1",
		NotificationAuthToken: recv.secret, NotificationTypes: []string{apple.NotificationAssetManagement, apple.NotificationUserManagement}})
	if err != nil {
		t.Fatal(err)
	}
	if cc.NotificationURL != rs.URL+"/apple/notifications/1" || cc.NotificationAuthToken != recv.secret || len(cc.SubscribedNotificationTypes) != 2 {
		t.Errorf("stored configuration = %+v", cc)
	}
	test := recv.waitFor(t, apple.NotificationTest)
	if !test.Test || test.UID != e.sim.UID(file) {
		t.Errorf("test notification = %+v", test)
	}
	e.sim.AddAsset(file, applesim.Asset{AdamID: "200", Total: 1, DeviceAssignable: true, Revocable: true})
	st := e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "200"}}, SerialNumbers: []string{"S1", "S2"}}))
	if st.Status != apple.EventFailed || st.NumCompleted != 1 || st.NumRequested != 2 {
		t.Errorf("status = %+v", st)
	}
	am := recv.waitFor(t, apple.NotificationAssetManagement)
	if am.AssetManagement == nil || am.AssetManagement.Type != apple.EventTypeAssociate {
		t.Fatalf("asset management notification = %+v", am)
	}
	// One success and one 9709 failure group arrive as separate notifications.
	deadline := time.Now().Add(10 * time.Second)
	var sawFailure bool
	for !sawFailure && time.Now().Before(deadline) {
		recv.mu.Lock()
		for _, n := range recv.got {
			if n.AssetManagement != nil && n.AssetManagement.Result == apple.ResultFailure {
				sawFailure = errors.Is(n.AssetManagement.Error, apple.ErrNotEnoughLicenses) && n.AssetManagement.EventID == st.EventID
			}
		}
		recv.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	if !sawFailure {
		t.Error("no FAILURE notification with 9709")
	}
	// Duplicate deliveries were dropped by the Deduper.
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		recv.mu.Lock()
		d := recv.dups
		recv.mu.Unlock()
		if d > 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.dups == 0 {
		t.Error("duplicate deliveries not detected")
	}
	ids := map[string]bool{}
	for _, n := range recv.got {
		if ids[n.NotificationID] {
			t.Errorf("notification %s processed twice", n.NotificationID)
		}
		ids[n.NotificationID] = true
	}
	if recv.denied != 0 {
		t.Errorf("%d deliveries failed the secret check", recv.denied)
	}
}

func TestSimAssetsListing(t *testing.T) {
	for _, reject := range []bool{false, true} { // doc/apple-api.md §15: assets with sinceVersionId ignored | 9602
		e := newSimEnv(t, applesim.Options{PageSize: 3, AssetsRejectSinceVersionID: reject}, apple.Config{})
		tok, file := e.token(applesim.TokenSpec{})
		for i, a := range []applesim.Asset{
			{AdamID: "101", Total: 10, DeviceAssignable: true, Revocable: true, Platforms: []string{"iOS", "macOS"}},
			{AdamID: "102", Total: 5, DeviceAssignable: true, Revocable: true},
			{AdamID: "103", Unlimited: true, DeviceAssignable: true, Revocable: true},
			{AdamID: "104", ProductType: "Book", Total: 3, PricingParam: "PLUS"},
			{AdamID: "105", Total: 2, Revocable: true},
			{AdamID: "106", Total: 7, DeviceAssignable: true, Revocable: true},
			{AdamID: "107", Total: 1, DeviceAssignable: true, Revocable: true},
		} {
			_ = i
			e.sim.AddAsset(file, a)
		}
		ctx := context.Background()
		for _, parallel := range []int{1, 5} {
			pages, err := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{Parallel: parallel}))
			if err != nil {
				t.Fatalf("reject=%v: %v", reject, err)
			}
			var got []string
			for _, p := range pages {
				if p.VersionID != pages[0].PageVersionID {
					t.Errorf("VersionID %q, want first page's %q", p.VersionID, pages[0].PageVersionID)
				}
				for _, a := range p.Assets {
					got = append(got, a.AdamID)
				}
			}
			if diff := cmp.Diff([]string{"101", "102", "103", "104", "105", "106", "107"}, got); diff != "" {
				t.Errorf("reject=%v parallel=%d assets (-want +got):\n%s", reject, parallel, diff)
			}
			if len(pages) != 3 || pages[0].TotalPages != 3 || pages[2].HasNext {
				t.Errorf("pagination: %d pages", len(pages))
			}
		}
		// Filters and the three settings of unlimited.
		var unlimited, counted []apple.Asset
		for p, err := range e.c.Assets(ctx, tok, apple.AssetsQuery{Unlimited: apple.Ptr(true)}) {
			if err != nil {
				t.Fatal(err)
			}
			unlimited = append(unlimited, p.UnlimitedAssets...)
			counted = append(counted, p.Assets...)
		}
		if len(unlimited) != 1 || unlimited[0].AdamID != "103" || !unlimited[0].IsUnlimited() || len(counted) != 6 {
			t.Errorf("unlimited=true: %d unlimited, %d counted", len(unlimited), len(counted))
		}
		pages, _ := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{AdamID: "103"}))
		if a := pages[0].Assets[0]; a.TotalCount != apple.UnlimitedCount || !a.IsUnlimited() {
			t.Errorf("unlimited omitted: %+v", a)
		}
		pages, _ = collect(e.c.Assets(ctx, tok, apple.AssetsQuery{ProductType: apple.ProductBook}))
		if len(pages[0].Assets) != 1 || pages[0].Assets[0].PricingParam != "PLUS" || pages[0].Assets[0].Revocable {
			t.Errorf("book filter: %+v", pages[0].Assets)
		}
		pages, _ = collect(e.c.Assets(ctx, tok, apple.AssetsQuery{DeviceAssignable: apple.Ptr(false), Unlimited: apple.Ptr(false)}))
		if len(pages[0].Assets) != 2 {
			t.Errorf("deviceAssignable=false: %+v", pages[0].Assets)
		}
		// The client never sends sinceVersionId to /assets, so both settings work.
		for _, r := range e.sim.RequestsFor(file) {
			if r.Path == "/mdm/v2/assets" && strings.Contains(r.Query, "sinceVersionId") {
				t.Errorf("sinceVersionId sent to assets: %s", r.Query)
			}
		}
		// Bad page index → 9650.
		if _, err := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{StartPage: 99})); !errors.Is(err, apple.ErrBadPageIndex) {
			t.Errorf("StartPage 99: %v", err)
		}
	}
}

// TestSimAssignFlow runs associate, disassociate, revoke and their
// synchronous and asynchronous errors.
func TestSimAssignFlow(t *testing.T) {
	e := newSimEnv(t, applesim.Options{PageSize: 4}, apple.Config{})
	tok, file := e.token(applesim.TokenSpec{})
	ctx := context.Background()
	e.sim.AddAsset(file, applesim.Asset{AdamID: "300", Total: 10, DeviceAssignable: true, Revocable: true})
	e.sim.AddAsset(file, applesim.Asset{AdamID: "301", Total: 1, DeviceAssignable: true, Revocable: true})
	e.sim.AddAsset(file, applesim.Asset{AdamID: "302", Total: 10, DeviceAssignable: false, Revocable: true})
	e.sim.AddAsset(file, applesim.Asset{AdamID: "303", ProductType: "Book", Total: 10})
	e.sim.AddUser(file, "user-1", "u1@example.com", "")
	e.sim.AddUser(file, "user-2", "", "u2@mab.example.com")

	// Associate with pricingParam omitted (doc/apple-api.md §15: STDQ).
	st := e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}},
		ClientUserIDs: []string{"user-1"}, SerialNumbers: []string{"SER-1", "SER-2"}}))
	if st.Status != apple.EventComplete || st.NumCompleted != 3 || st.NumRequested != 3 || st.Type != apple.EventTypeAssociate {
		t.Fatalf("associate: %+v", st)
	}
	got, v1 := allAssignments(t, e.c, tok, apple.AssignmentsQuery{})
	want := []apple.Assignment{
		{AdamID: "300", PricingParam: "STDQ", ClientUserID: "user-1"},
		{AdamID: "300", PricingParam: "STDQ", SerialNumber: "SER-1"},
		{AdamID: "300", PricingParam: "STDQ", SerialNumber: "SER-2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
	// includeUserState adds the user's status.
	withState, _ := allAssignments(t, e.c, tok, apple.AssignmentsQuery{ClientUserID: "user-1", IncludeUserState: true})
	if len(withState) != 1 || withState[0].UserStatus != apple.UserRegistered {
		t.Errorf("includeUserState: %+v", withState)
	}

	// Asynchronous failures: 9609 unknown user, 9709 not enough licenses.
	st = e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "301", PricingParam: "STDQ"}},
		ClientUserIDs: []string{"nobody"}, SerialNumbers: []string{"SER-3", "SER-4"}}))
	if st.Status != apple.EventFailed || st.NumCompleted != 1 || st.NumRequested != 3 {
		t.Fatalf("failing associate: %+v", st)
	}
	kinds := map[int]bool{}
	for _, f := range st.Failures {
		kinds[f.Number] = true
		switch f.Number {
		case 9609:
			if !errors.Is(f.Err(), apple.ErrUnknownUser) || f.Info == nil || !slices.Equal(f.Info.ClientUserIDs, []string{"nobody"}) {
				t.Errorf("9609 failure: %+v", f)
			}
		case 9709:
			if !errors.Is(f.Err(), apple.ErrNotEnoughLicenses) || f.Info == nil || !slices.Equal(f.Info.SerialNumbers, []string{"SER-4"}) {
				t.Errorf("9709 failure: %+v", f)
			}
		}
	}
	if !kinds[9609] || !kinds[9709] {
		t.Errorf("failures = %+v", st.Failures)
	}

	// Synchronous errors: no event is created.
	syncErrs := []struct {
		name string
		call func() (*apple.EventResponse, error)
		num  int
		kind error
	}{
		{"9707", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "302"}}, SerialNumbers: []string{"S"}})
		}, 9707, apple.ErrNotDeviceAssignable},
		{"9706", func() (*apple.EventResponse, error) {
			return e.c.Disassociate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "303"}}, ClientUserIDs: []string{"user-1"}})
		}, 9706, apple.ErrNotRevocable},
		{"9703", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}, {AdamID: "300", PricingParam: "STDQ"}}, SerialNumbers: []string{"S"}})
		}, 9703, apple.ErrDuplicate},
		{"9704", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}}, ClientUserIDs: []string{"u", "u"}})
		}, 9704, apple.ErrDuplicate},
		{"9705", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}}, SerialNumbers: []string{"S", "S"}})
		}, 9705, apple.ErrDuplicate},
		{"9718", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{SerialNumbers: []string{"S"}})
		}, 9718, apple.ErrInvalidRequest},
		{"9719", func() (*apple.EventResponse, error) {
			return e.c.Disassociate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}}})
		}, 9719, apple.ErrInvalidRequest},
		{"9719 revoke", func() (*apple.EventResponse, error) { return e.c.Revoke(ctx, tok, apple.RevokeAssetsRequest{}) }, 9719, apple.ErrInvalidRequest},
		{"9602", func() (*apple.EventResponse, error) {
			return e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300", PricingParam: "GOLD"}}, SerialNumbers: []string{"S"}})
		}, 9602, apple.ErrInvalidRequest},
	}
	for _, se := range syncErrs {
		ev, err := se.call()
		if ev != nil || !errors.Is(err, se.kind) || apple.ErrorNumber(err) != se.num {
			t.Errorf("%s: ev=%v err=%v", se.name, ev, err)
		}
		if ae, ok := errors.AsType[*apple.Error](err); se.num == 9707 && (!ok || ae.Info == nil || len(ae.Info.Assets) != 1) {
			t.Errorf("9707 errorInfo: %+v", ae)
		}
	}
	if _, err := e.c.EventStatus(ctx, tok, "no-such-event"); !errors.Is(err, apple.ErrEventNotFound) {
		t.Errorf("9708: %v", err)
	}

	// Incremental listing from the first page's versionId.
	st = e.wait(tok)(e.c.Disassociate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "300"}}, SerialNumbers: []string{"SER-1"}}))
	if st.Status != apple.EventComplete || st.Type != apple.EventTypeDisassociate {
		t.Fatalf("disassociate: %+v", st)
	}
	delta, _ := allAssignments(t, e.c, tok, apple.AssignmentsQuery{SinceVersionID: v1})
	// v1 was read before the failing associate, which added SER-3 (301).
	if diff := cmp.Diff([]apple.Assignment{{AdamID: "301", PricingParam: "STDQ", SerialNumber: "SER-3"}}, delta); diff != "" {
		t.Errorf("delta without removals (-want +got):\n%s", diff)
	}
	if _, err := collect(e.c.Assignments(ctx, tok, apple.AssignmentsQuery{SinceVersionID: "bogus"})); !errors.Is(err, apple.ErrBadVersion) {
		t.Errorf("9721: %v", err)
	}

	// Revoke: all revocable assets of the targets; books stay.
	st = e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "303"}}, ClientUserIDs: []string{"user-1"}}))
	if st.Status != apple.EventComplete {
		t.Fatalf("book associate: %+v", st)
	}
	st = e.wait(tok)(e.c.Revoke(ctx, tok, apple.RevokeAssetsRequest{ClientUserIDs: []string{"user-1"}, SerialNumbers: []string{"SER-2"}}))
	if st.Status != apple.EventComplete || st.Type != apple.EventTypeRevoke {
		t.Fatalf("revoke: %+v", st)
	}
	got, _ = allAssignments(t, e.c, tok, apple.AssignmentsQuery{})
	want = []apple.Assignment{
		{AdamID: "301", PricingParam: "STDQ", SerialNumber: "SER-3"},
		{AdamID: "303", PricingParam: "STDQ", ClientUserID: "user-1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after revoke (-want +got):\n%s", diff)
	}
}

// TestSimSplitWithinLimits: requests over the limits fail with 9700-9702
// and 9714; SplitManage/SplitRevoke/SplitUsers with the client's Limits
// (read from service config, refreshed after the limit error) succeed.
func TestSimSplitWithinLimits(t *testing.T) {
	e := newSimEnv(t, applesim.Options{}, apple.Config{})
	tok, file := e.token(applesim.TokenSpec{})
	ctx := context.Background()
	var assets []apple.AssetRef
	for i := range 5 {
		id := "40" + string(rune('0'+i))
		e.sim.AddAsset(file, applesim.Asset{AdamID: id, Total: 100, DeviceAssignable: true, Revocable: true})
		assets = append(assets, apple.AssetRef{AdamID: id})
	}
	var users []apple.RequestUser
	var userIDs, serials []string
	for i := range 7 {
		u := "split-user-" + string(rune('a'+i))
		users = append(users, apple.RequestUser{ClientUserID: u})
		userIDs = append(userIDs, u)
		serials = append(serials, "SPLIT-"+string(rune('a'+i)))
	}
	if _, err := e.c.Limits(ctx); err != nil { // cache the default limits first
		t.Fatal(err)
	}
	e.sim.SetLimits(applesim.Limits{MaxAssets: 2, MaxClientUserIDs: 3, MaxSerialNumbers: 4, MaxUsers: 3,
		MaxRevokeClientUserIDs: 2, MaxRevokeSerialNumbers: 2, MaxRequestPerSecond: 5000})
	_, err := e.c.CreateUsers(ctx, tok, users)
	if !errors.Is(err, apple.ErrLimitExceeded) || apple.ErrorNumber(err) != 9714 {
		t.Fatalf("9714: %v", err)
	}
	l, err := e.c.Limits(ctx) // refreshed after the limit error
	if err != nil || l.MaxUsers != 3 || l.MaxAssets != 2 {
		t.Fatalf("limits not refreshed: %+v %v", l, err)
	}
	for _, batch := range apple.SplitUsers(users, l) {
		if st := e.wait(tok)(e.c.CreateUsers(ctx, tok, batch)); st.Status != apple.EventComplete {
			t.Fatalf("create users: %+v", st)
		}
	}
	for _, tc := range []struct {
		req apple.ManageAssetsRequest
		num int
	}{
		{apple.ManageAssetsRequest{Assets: assets, SerialNumbers: []string{"S"}}, 9700},
		{apple.ManageAssetsRequest{Assets: assets[:1], ClientUserIDs: userIDs}, 9701},
		{apple.ManageAssetsRequest{Assets: assets[:1], SerialNumbers: serials}, 9702},
	} {
		if _, err := e.c.Associate(ctx, tok, tc.req); apple.ErrorNumber(err) != tc.num || !errors.Is(err, apple.ErrLimitExceeded) {
			t.Errorf("%d: %v", tc.num, err)
		}
	}
	full := apple.ManageAssetsRequest{Assets: assets, ClientUserIDs: userIDs, SerialNumbers: serials}
	for _, req := range apple.SplitManage(full, l) {
		if st := e.wait(tok)(e.c.Associate(ctx, tok, req)); st.Status != apple.EventComplete {
			t.Fatalf("split associate: %+v", st)
		}
	}
	if n := len(e.sim.Assignments(file)); n != 5*14 {
		t.Errorf("%d assignments, want 70", n)
	}
	if _, err := e.c.Revoke(ctx, tok, apple.RevokeAssetsRequest{SerialNumbers: serials}); apple.ErrorNumber(err) != 9702 {
		t.Errorf("revoke over the limit: %v", err)
	}
	for _, req := range apple.SplitRevoke(apple.RevokeAssetsRequest{ClientUserIDs: userIDs, SerialNumbers: serials}, l) {
		if st := e.wait(tok)(e.c.Revoke(ctx, tok, req)); st.Status != apple.EventComplete {
			t.Fatalf("split revoke: %+v", st)
		}
	}
	if n := len(e.sim.Assignments(file)); n != 0 {
		t.Errorf("%d assignments left after revoking all", n)
	}
}

func TestSimUsers(t *testing.T) {
	e := newSimEnv(t, applesim.Options{PageSize: 2}, apple.Config{})
	tok, file := e.token(applesim.TokenSpec{})
	ctx := context.Background()
	e.sim.AddAsset(file, applesim.Asset{AdamID: "500", Total: 5, DeviceAssignable: true, Revocable: true})
	st := e.wait(tok)(e.c.CreateUsers(ctx, tok, []apple.RequestUser{
		{ClientUserID: "c1", Email: "c1@example.com"}, {ClientUserID: "c2", ManagedAppleID: "c2@mab.example.com"}, {ClientUserID: "c3"}}))
	if st.Status != apple.EventComplete || st.Type != apple.EventTypeCreate || st.NumCompleted != 3 {
		t.Fatalf("create: %+v", st)
	}
	var v0 string
	var users []apple.User
	for p, err := range e.c.Users(ctx, tok, apple.UsersQuery{ActiveOnly: true, Parallel: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, p.Users...)
		v0 = p.VersionID
	}
	if len(users) != 3 {
		t.Fatalf("users = %+v", users)
	}
	byID := map[string]apple.User{}
	for _, u := range users {
		byID[u.ClientUserID] = u
	}
	if byID["c1"].Status != apple.UserRegistered || byID["c1"].InviteCode == "" || byID["c2"].Status != apple.UserAssociated {
		t.Errorf("users = %+v", users)
	}
	sc, err := e.c.ServiceConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u := sc.InvitationURL(byID["c1"].InviteCode); !strings.Contains(u, byID["c1"].InviteCode) {
		t.Errorf("InvitationURL = %q", u)
	}
	// Asynchronous user errors: 9716 (exists), 9641 (Apple Account taken), 9609 (update/retire unknown).
	st = e.wait(tok)(e.c.CreateUsers(ctx, tok, []apple.RequestUser{{ClientUserID: "c1"}, {ClientUserID: "c9", ManagedAppleID: "c2@mab.example.com"}}))
	nums := map[int]bool{}
	for _, f := range st.Failures {
		nums[f.Number] = true
	}
	if st.Status != apple.EventFailed || !nums[9716] || !nums[9641] || !errors.Is(st.Failures[0].Err(), apple.ErrUserExists) {
		t.Errorf("create failures: %+v", st)
	}
	st = e.wait(tok)(e.c.UpdateUsers(ctx, tok, []apple.RequestUser{{ClientUserID: "c3", Email: "c3@example.com"}, {ClientUserID: "ghost"}}))
	if st.Status != apple.EventFailed || st.NumCompleted != 1 || st.Failures[0].Number != 9609 || st.Type != apple.EventTypeUpdate {
		t.Errorf("update: %+v", st)
	}
	// Synchronous user errors.
	for _, tc := range []struct {
		users []apple.RequestUser
		num   int
	}{
		{nil, 9720},
		{[]apple.RequestUser{{ClientUserID: "d"}, {ClientUserID: "d"}}, 9715},
		{[]apple.RequestUser{{ClientUserID: "d", Email: "not an email"}}, 9717},
	} {
		if _, err := e.c.CreateUsers(ctx, tok, tc.users); apple.ErrorNumber(err) != tc.num {
			t.Errorf("%d: %v", tc.num, err)
		}
	}
	// Retire releases the user's revocable licenses (doc/apple-api.md §15).
	if st := e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "500"}}, ClientUserIDs: []string{"c3"}})); st.Status != apple.EventComplete {
		t.Fatalf("associate: %+v", st)
	}
	st = e.wait(tok)(e.c.RetireUsers(ctx, tok, []apple.RequestUser{{ClientUserID: "c3", Email: "ignored@example.com"}}))
	if st.Status != apple.EventComplete || st.Type != apple.EventTypeRetire {
		t.Fatalf("retire: %+v", st)
	}
	if n := len(e.sim.Assignments(file)); n != 0 {
		t.Errorf("retire left %d assignments", n)
	}
	// Users delta since v0: c3 changed (updated, retired).
	var delta []apple.User
	for p, err := range e.c.Users(ctx, tok, apple.UsersQuery{SinceVersionID: v0}) {
		if err != nil {
			t.Fatal(err)
		}
		delta = append(delta, p.Users...)
	}
	found := false
	for _, u := range delta {
		if u.ClientUserID == "c3" && u.Status == apple.UserRetired {
			found = true
		}
		if u.ClientUserID == "c2" {
			t.Errorf("unchanged user c2 in the delta")
		}
	}
	if !found {
		t.Errorf("delta = %+v", delta)
	}
	var retired []apple.User
	for p, err := range e.c.Users(ctx, tok, apple.UsersQuery{RetiredOnly: true}) {
		if err != nil {
			t.Fatal(err)
		}
		retired = append(retired, p.Users...)
	}
	if len(retired) != 1 || retired[0].ClientUserID != "c3" {
		t.Errorf("retiredOnly = %+v", retired)
	}
	if _, err := collect(e.c.Users(ctx, tok, apple.UsersQuery{SinceVersionID: "nope"})); !errors.Is(err, apple.ErrBadVersion) {
		t.Errorf("users 9721: %v", err)
	}
}

// TestSimTokenStates: expired (9621), revoked (9625), unknown (9622, with
// both doc/apple-api.md §15 settings of its HTTP status).
func TestSimTokenStates(t *testing.T) {
	for _, http401 := range []bool{false, true} {
		e := newSimEnv(t, applesim.Options{UnknownTokenHTTP401: http401}, apple.Config{})
		tok, file := e.token(applesim.TokenSpec{})
		ctx := context.Background()
		other := applesim.New(applesim.Options{})
		foreign, err := apple.ParseToken([]byte(other.AddToken(applesim.TokenSpec{})), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.c.ClientConfig(ctx, foreign)
		ae, ok := errors.AsType[*apple.Error](err)
		wantStatus := 200
		if http401 {
			wantStatus = 401
		}
		if !errors.Is(err, apple.ErrTokenInvalid) || !ok || ae.Number != 9622 || ae.HTTPStatus != wantStatus {
			t.Errorf("unknown token (401=%v): %v", http401, err)
		}
		if _, err := collect(e.c.Assignments(ctx, foreign, apple.AssignmentsQuery{})); !errors.Is(err, apple.ErrTokenInvalid) {
			t.Errorf("unknown token, assignments: %v", err)
		}
		e.sim.SetRevoked(file, true)
		if _, err := e.c.ClientConfig(ctx, tok); !errors.Is(err, apple.ErrTokenRevoked) || !apple.IsTokenUnusable(err) {
			t.Errorf("revoked: %v", err)
		}
		e.sim.SetRevoked(file, false)
		e.sim.SetExpiresAt(file, time.Now().Add(-time.Minute))
		if _, err := e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}}); !errors.Is(err, apple.ErrTokenExpired) {
			t.Errorf("expired: %v", err)
		}
		for _, f := range []struct {
			kind applesim.FaultKind
			want error
		}{{applesim.FaultExpired, apple.ErrTokenExpired}, {applesim.FaultRevoked, apple.ErrTokenRevoked}, {applesim.FaultInvalidToken, apple.ErrTokenInvalid}} {
			e.sim.SetExpiresAt(file, time.Now().Add(time.Hour))
			e.sim.SetFault(file, applesim.Fault{Kind: f.kind, Count: 1})
			if _, err := e.c.ClientConfig(ctx, tok); !errors.Is(err, f.want) {
				t.Errorf("fault %v: %v", f.kind, err)
			}
		}
		_ = other.Close()
	}
}

// TestSimExpirationDateSwitch: tokenExpirationDate always (default) or only
// within 15 days of expiry (doc/apple-api.md §15 switch).
func TestSimExpirationDateSwitch(t *testing.T) {
	for _, within := range []bool{false, true} {
		e := newSimEnv(t, applesim.Options{ExpirationDateOnlyWithin15Days: within}, apple.Config{})
		far, _ := e.token(applesim.TokenSpec{ExpiresAt: time.Now().Add(300 * 24 * time.Hour)})
		near, _ := e.token(applesim.TokenSpec{ExpiresAt: time.Now().Add(10 * 24 * time.Hour)})
		ctx := context.Background()
		ccFar, err := e.c.ClientConfig(ctx, far)
		if err != nil {
			t.Fatal(err)
		}
		ccNear, err := e.c.ClientConfig(ctx, near)
		if err != nil {
			t.Fatal(err)
		}
		if got := ccFar.TokenExpirationDate.IsZero(); got != within {
			t.Errorf("within15=%v: far token's tokenExpirationDate absent = %v", within, got)
		}
		if !ccNear.TokenExpirationDate.Equal(near.ExpiresAt) {
			t.Errorf("within15=%v: near token's date %v, want %v", within, ccNear.TokenExpirationDate, near.ExpiresAt)
		}
		pages, err := collect(e.c.Assignments(ctx, near, apple.AssignmentsQuery{}))
		if err != nil || !pages[0].TokenExpirationDate.Equal(near.ExpiresAt) {
			t.Errorf("within15=%v: envelope on listings: %v", within, err)
		}
	}
}

// TestSimReassociateAndDisassociateSwitches: doc/apple-api.md §15 re-associate (idempotent |
// 9616) and disassociate of nothing (idempotent | 9619).
func TestSimReassociateAndDisassociateSwitches(t *testing.T) {
	for _, strict := range []bool{false, true} {
		e := newSimEnv(t, applesim.Options{ReassociateFails9616: strict, DisassociateMissingFails9619: strict}, apple.Config{})
		tok, file := e.token(applesim.TokenSpec{})
		ctx := context.Background()
		e.sim.AddAsset(file, applesim.Asset{AdamID: "600", Total: 5, DeviceAssignable: true, Revocable: true})
		req := apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "600"}}, SerialNumbers: []string{"D1"}}
		if st := e.wait(tok)(e.c.Associate(ctx, tok, req)); st.Status != apple.EventComplete {
			t.Fatalf("first associate: %+v", st)
		}
		st := e.wait(tok)(e.c.Associate(ctx, tok, req))
		if strict {
			if st.Status != apple.EventFailed || len(st.Failures) != 1 || !errors.Is(st.Failures[0].Err(), apple.ErrAlreadyAssigned) {
				t.Errorf("re-associate with 9616: %+v", st)
			}
		} else if st.Status != apple.EventComplete || st.NumCompleted != 1 {
			t.Errorf("idempotent re-associate: %+v", st)
		}
		states := e.sim.AssetStates(file)
		if states[0].Assigned != 1 || states[0].Available != 4 {
			t.Errorf("strict=%v: re-associate consumed a license: %+v", strict, states[0])
		}
		pages, _ := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{AdamID: "600"}))
		if a := pages[0].Assets[0]; a.AssignedCount != 1 || a.AvailableCount != 4 || a.TotalCount != 5 {
			t.Errorf("asset counts: %+v", a)
		}
		missing := apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "600"}}, SerialNumbers: []string{"NEVER"}}
		st = e.wait(tok)(e.c.Disassociate(ctx, tok, missing))
		if strict {
			if st.Status != apple.EventFailed || !errors.Is(st.Failures[0].Err(), apple.ErrNotAssociated) {
				t.Errorf("disassociate missing with 9619: %+v", st)
			}
		} else if st.Status != apple.EventComplete {
			t.Errorf("idempotent disassociate: %+v", st)
		}
	}
}

// TestSimDeltaRemovalsSwitch: doc/apple-api.md §15 removals in a sinceVersionId delta (not
// reported | reported with "removed": true).
func TestSimDeltaRemovalsSwitch(t *testing.T) {
	for _, report := range []bool{false, true} {
		e := newSimEnv(t, applesim.Options{DeltaReportsRemovals: report}, apple.Config{})
		tok, file := e.token(applesim.TokenSpec{})
		ctx := context.Background()
		e.sim.AddAsset(file, applesim.Asset{AdamID: "700", Total: 5, DeviceAssignable: true, Revocable: true})
		st := e.wait(tok)(e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "700"}}, SerialNumbers: []string{"K1", "K2"}}))
		if st.Status != apple.EventComplete {
			t.Fatal(st)
		}
		_, v := allAssignments(t, e.c, tok, apple.AssignmentsQuery{})
		if err := e.sim.RemoveAssignment(file, "700", "K1", ""); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.AddAssignment(file, "700", "K3", ""); err != nil {
			t.Fatal(err)
		}
		delta, v2 := allAssignments(t, e.c, tok, apple.AssignmentsQuery{SinceVersionID: v})
		want := []apple.Assignment{{AdamID: "700", PricingParam: "STDQ", SerialNumber: "K3"}}
		if report {
			want = []apple.Assignment{{AdamID: "700", PricingParam: "STDQ", SerialNumber: "K1", Removed: true},
				{AdamID: "700", PricingParam: "STDQ", SerialNumber: "K3"}}
		}
		if diff := cmp.Diff(want, delta, cmp.Transformer("sort", func(in []apple.Assignment) []apple.Assignment {
			out := slices.Clone(in)
			slices.SortFunc(out, func(a, b apple.Assignment) int { return strings.Compare(a.SerialNumber, b.SerialNumber) })
			return out
		})); diff != "" {
			t.Errorf("report=%v delta (-want +got):\n%s", report, diff)
		}
		// An empty delta is not an error.
		if empty, _ := allAssignments(t, e.c, tok, apple.AssignmentsQuery{SinceVersionID: v2}); len(empty) != 0 {
			t.Errorf("delta since the latest version: %+v", empty)
		}
	}
}

// TestSimThrottling: every throttle fault yields the right hold; while held,
// the request log proves nothing reaches the account; other accounts carry on.
func TestSimThrottling(t *testing.T) {
	clockMu := sync.Mutex{}
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	e := newSimEnv(t, applesim.Options{}, apple.Config{Now: clock, BackoffBase: 2 * time.Second})
	ctx := context.Background()
	tok, file := e.token(applesim.TokenSpec{})
	bystander, _ := e.token(applesim.TokenSpec{})
	cases := []struct {
		name  string
		fault applesim.Fault
		hold  func(d time.Duration) bool
		num   int
	}{
		{"503 Retry-After 120", applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 120, Count: 1},
			func(d time.Duration) bool { return d == 120*time.Second }, 0},
		{"503 HTTP date", applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterDate: now.Add(45 * time.Minute), Count: 1},
			func(d time.Duration) bool { return d == 45*time.Minute }, 0},
		{"429 9646 backoff", applesim.Fault{Kind: applesim.FaultTooMany429, Count: 1},
			func(d time.Duration) bool { return d >= 0 && d <= 2*time.Second }, 9646},
		{"500 9603 Retry-After 30", applesim.Fault{Kind: applesim.FaultServerError500, RetryAfterSeconds: 30, Count: 1},
			func(d time.Duration) bool { return d == 30*time.Second }, 9603},
		{"503 9729 Retry-After 5", applesim.Fault{Kind: applesim.FaultMaintenance9729, RetryAfterSeconds: 5, Count: 1},
			func(d time.Duration) bool { return d == 5*time.Second }, 9729},
	}
	for _, tc := range cases {
		if !tc.fault.RetryAfterDate.IsZero() {
			// The date must lie ahead of the client's clock: a date in the
			// past means "retry now", which the client does.
			tc.fault.RetryAfterDate = clock().Add(45 * time.Minute)
		}
		e.sim.SetFault(file, tc.fault)
		_, err := e.c.ClientConfig(ctx, tok)
		te, ok := errors.AsType[*apple.ThrottleError](err)
		if !ok {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if d := te.Until.Sub(clock()); !tc.hold(d) || te.Number != tc.num {
			t.Errorf("%s: hold %v, number %d (%s)", tc.name, d, te.Number, te.Reason)
		}
		sent := len(e.sim.RequestsFor(file))
		for range 3 {
			if _, err := collect(e.c.Assignments(ctx, tok, apple.AssignmentsQuery{})); !errors.Is(err, apple.ErrThrottled) {
				t.Errorf("%s: held call: %v", tc.name, err)
			}
			if _, err := e.c.Associate(ctx, tok, apple.ManageAssetsRequest{Assets: []apple.AssetRef{{AdamID: "1"}}, SerialNumbers: []string{"s"}}); !errors.Is(err, apple.ErrThrottled) {
				t.Errorf("%s: held associate: %v", tc.name, err)
			}
		}
		if n := len(e.sim.RequestsFor(file)) - sent; n != 0 {
			t.Errorf("%s: %d requests reached a held account", tc.name, n)
		}
		if _, err := e.c.ClientConfig(ctx, bystander); err != nil {
			t.Errorf("%s: another account is held too: %v", tc.name, err)
		}
		advance(time.Hour + time.Second)
		if _, err := e.c.ClientConfig(ctx, tok); err != nil {
			t.Errorf("%s: after the hold: %v", tc.name, err)
		}
	}
	// Apple's own rate limit (9646 from the simulator's limiter) is a throttle too.
	e.sim.SetRequestsPerSecond(file, 1)
	var throttled error
	for range 5 {
		if _, err := e.c.ClientConfig(ctx, tok); err != nil {
			throttled = err
			break
		}
	}
	if te, ok := errors.AsType[*apple.ThrottleError](throttled); !ok || te.Number != 9646 || te.HTTPStatus != 429 {
		t.Errorf("simulator rate limit: %v", throttled)
	}
	e.sim.SetRequestsPerSecond(file, 0)
	advance(time.Hour)

	// Malformed JSON is a decode error, not a throttle; a slow answer is cut by the deadline.
	e.sim.SetFault(file, applesim.Fault{Kind: applesim.FaultMalformedJSON, Count: 1})
	if _, err := collect(e.c.Assets(ctx, tok, apple.AssetsQuery{})); !errors.As(err, new(*apple.DecodeError)) {
		t.Errorf("malformed JSON: %v", err)
	}
	e.sim.SetFault(file, applesim.Fault{Kind: applesim.FaultSlow, Delay: 5 * time.Second, Count: 1})
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := e.c.ClientConfig(sctx, tok); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow answer: %v", err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("deadline not honoured: %v", el)
	}
}

// TestSimInlineWaitAndRetry: with MaxInlineWait ≥ Retry-After the client
// waits and succeeds within one call; requests stay bounded.
func TestSimInlineWaitAndRetry(t *testing.T) {
	e := newSimEnv(t, applesim.Options{}, apple.Config{MaxInlineWait: 3 * time.Second, MaxAttempts: 3})
	tok, file := e.token(applesim.TokenSpec{})
	e.sim.SetFault(file, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 1, Count: 1})
	if _, err := e.c.ClientConfig(context.Background(), tok); err != nil {
		t.Fatalf("inline retry: %v", err)
	}
	reqs := e.sim.RequestsFor(file)
	if len(reqs) != 2 || reqs[0].Status != 503 || reqs[1].Status != 200 || reqs[1].Time.Sub(reqs[0].Time) < 900*time.Millisecond {
		t.Errorf("requests = %+v", reqs)
	}
	e.sim.ResetRequests()
	e.sim.SetFault(file, applesim.Fault{Kind: applesim.FaultMaintenance9729}) // until cleared
	c2 := e.client(apple.Config{MaxInlineWait: time.Second, MaxAttempts: 3, BackoffBase: time.Millisecond})
	if _, err := c2.ClientConfig(context.Background(), tok); !errors.Is(err, apple.ErrThrottled) {
		t.Fatalf("always unavailable: %v", err)
	}
	if n := len(e.sim.RequestsFor(file)); n != 3 {
		t.Errorf("%d requests, want MaxAttempts = 3", n)
	}
	e.sim.ClearFaults(file)
}

func TestSimLookup(t *testing.T) {
	e := newSimEnv(t, applesim.Options{}, apple.Config{})
	tok, file := e.token(applesim.TokenSpec{Country: "US"})
	other, _ := e.token(applesim.TokenSpec{})
	e.sim.AddAsset(file, applesim.Asset{AdamID: "800", Total: 5, DeviceAssignable: true, Name: "Math Quest", BundleID: "com.example.math",
		Platforms: []string{"iOS", "macOS", "visionOS"}, NotSoldIn: []string{"FR"}, Version: "2.1", MinimumOSVersion: "16.4"})
	e.sim.AddAsset(file, applesim.Asset{AdamID: "801", Total: 5, B2B: true, Name: "Internal Tool"})
	ctx := context.Background()
	got, err := e.c.LookupApps(ctx, tok, "us", []string{"800", "801", "899"})
	if err != nil {
		t.Fatal(err)
	}
	m := got["800"]
	if m.Name != "Math Quest" || m.BundleID != "com.example.math" || m.Version != "2.1" || m.MinimumOSVersion != "16.4" ||
		!m.DeviceBasedLicensing || m.B2B || !strings.HasSuffix(m.IconURL, "512x512bb.png") ||
		!slices.Equal(m.Platforms, []string{"iOS", "iPadOS", "macOS", "visionOS"}) {
		t.Errorf("metadata = %+v", m)
	}
	if b := got["801"]; !b.B2B || b.Name != "Internal Tool" {
		t.Errorf("B2B app with the owning token: %+v", b)
	}
	if _, ok := got["899"]; ok {
		t.Error("unknown id found")
	}
	anon, err := e.c.LookupApps(ctx, nil, "us", []string{"801"})
	if err != nil || len(anon) != 0 {
		t.Errorf("B2B app visible without the token: %v %v", anon, err)
	}
	if byOther, _ := e.c.LookupApps(ctx, other, "us", []string{"801"}); len(byOther) != 0 {
		t.Errorf("B2B app visible to another org's token: %v", byOther)
	}
	avail, err := e.c.Availability(ctx, tok, []string{"800", "801"}, []string{"US", "FR", "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"800": {"US", "DE"}, "801": {"US", "FR", "DE"}}, avail); diff != "" {
		t.Errorf("Availability (-want +got):\n%s", diff)
	}
}

// TestSimGeneratedFullRead: a generated library read sequentially and with
// parallel prefetch gives the simulator's assignments exactly.
func TestSimGeneratedFullRead(t *testing.T) {
	e := newSimEnv(t, applesim.Options{PageSize: 500}, apple.Config{})
	gen := e.sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 50, AssignmentsPerToken: 5000, Seed: 7})
	file := gen.TokenFiles[0]
	tok, err := apple.ParseToken([]byte(file), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := e.sim.Assignments(file)
	for _, parallel := range []int{1, 5} {
		got, _ := allAssignments(t, e.c, tok, apple.AssignmentsQuery{Parallel: parallel})
		if len(got) != len(want) {
			t.Fatalf("parallel=%d: %d assignments, want %d", parallel, len(got), len(want))
		}
		for i, a := range got {
			w := want[i]
			if a.AdamID != w.AdamID || a.PricingParam != w.PricingParam || a.SerialNumber != w.SerialNumber || a.ClientUserID != w.ClientUserID {
				t.Fatalf("parallel=%d: assignment %d = %+v, want %+v", parallel, i, a, w)
			}
		}
	}
	var assets int
	for p, err := range e.c.Assets(context.Background(), tok, apple.AssetsQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		assets += len(p.Assets)
	}
	if assets != gen.Tokens[0].Assets {
		t.Errorf("%d assets, want %d", assets, gen.Tokens[0].Assets)
	}
}

func collect[P any](seq func(func(P, error) bool)) ([]P, error) {
	var out []P
	var err error
	seq(func(p P, e error) bool {
		if e != nil {
			err = e
			return false
		}
		out = append(out, p)
		return true
	})
	return out, err
}
