package applesim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// receiver is a notification endpoint that records what it receives and can fail the first
// attempts.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	failNext int
	got      []wireNotificationIn
	auth     []string
}

// wireNotificationIn is a received notification, decoded generically.
type wireNotificationIn struct {
	NotificationID   string         `json:"notificationId"`
	NotificationType string         `json:"notificationType"`
	UID              string         `json:"uId"`
	Notification     map[string]any `json:"notification"`
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.failNext > 0 {
			rc.failNext--
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var n wireNotificationIn
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("notification is not JSON: %s", body)
		}
		rc.got = append(rc.got, n)
		rc.auth = append(rc.auth, r.Header.Get("Authorization"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []wireNotificationIn {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]wireNotificationIn(nil), rc.got...)
}

// subscribe configures the receiver through POST client/config.
func (e *env) subscribe(rc *receiver, types ...string) {
	e.t.Helper()
	e.mustOK(e.post("/mdm/v2/client/config", map[string]any{"notificationUrl": rc.srv.URL + "/hook", "notificationAuthToken": "hook-secret", "notificationTypes": types}))
}

// ofType filters notifications by type.
func ofType(list []wireNotificationIn, typ string) []wireNotificationIn {
	var out []wireNotificationIn
	for _, n := range list {
		if n.NotificationType == typ {
			out = append(out, n)
		}
	}
	return out
}

func TestAssetManagementNotifications(t *testing.T) {
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 130, DeviceAssignable: true, Revocable: true})
	e.subscribe(rc, "ASSET_MANAGEMENT")
	serials := ids("S", 150)
	r := e.mustOK(e.post("/mdm/v2/assets/associate", assetsBody([]string{"100"}, []string{"nobody"}, serials)))
	eventID := r.str("eventId")
	// 151 tasks: 130 succeed, 20 fail 9709, 1 fails 9609 → SUCCESS ×2 (100 + 30),
	// FAILURE 9609 ×1, FAILURE 9709 ×1.
	waitFor(t, "notifications", func() bool { return len(ofType(rc.received(), "ASSET_MANAGEMENT")) == 4 })
	type summary struct {
		Result  string
		Error   float64
		Items   int
		EventID string
	}
	var got []summary
	for _, n := range ofType(rc.received(), "ASSET_MANAGEMENT") {
		s := summary{Result: n.Notification["result"].(string), Items: len(asList(n.Notification["assignments"])), EventID: n.Notification["eventId"].(string)}
		if er, ok := n.Notification["error"].(map[string]any); ok {
			s.Error = er["errorNumber"].(float64)
		}
		if n.Notification["type"] != "ASSOCIATE" || n.UID != "2049025000000001" {
			t.Errorf("unexpected notification %+v", n)
		}
		got = append(got, s)
	}
	sort.Slice(got, func(i, j int) bool { return fmt.Sprint(got[i]) < fmt.Sprint(got[j]) })
	want := []summary{{"FAILURE", 9609, 1, eventID}, {"FAILURE", 9709, 20, eventID}, {"SUCCESS", 0, 100, eventID}, {"SUCCESS", 0, 30, eventID}}
	sort.Slice(want, func(i, j int) bool { return fmt.Sprint(want[i]) < fmt.Sprint(want[j]) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	rc.mu.Lock()
	for _, a := range rc.auth {
		if a != "Bearer hook-secret" {
			t.Errorf("Authorization = %q", a)
		}
	}
	rc.mu.Unlock()
	// The first notification of the list was the TEST_NOTIFICATION, with an empty payload.
	if first := rc.received()[0]; first.NotificationType != "TEST_NOTIFICATION" || len(first.Notification) != 0 {
		t.Errorf("first notification = %+v", first)
	}
}

func TestNotificationRetryAndDuplicates(t *testing.T) {
	e := newEnv(t, Options{DuplicateNotifications: true})
	rc := newReceiver(t)
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 10})
	e.subscribe(rc, "ASSET_COUNT")
	rc.mu.Lock()
	rc.failNext = 2 // both copies' first attempts fail
	rc.mu.Unlock()
	if err := e.sim.Purchase(e.token, "100", 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retried duplicates", func() bool { return len(ofType(rc.received(), "ASSET_COUNT")) == 2 })
	got := ofType(rc.received(), "ASSET_COUNT")
	if got[0].NotificationID != got[1].NotificationID {
		t.Errorf("duplicates have different ids: %s %s", got[0].NotificationID, got[1].NotificationID)
	}
	if diff := cmp.Diff(map[string]any{"adamId": "100", "pricingParam": "STDQ", "countDelta": 5.0}, got[0].Notification); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	var attempts []int
	waitFor(t, "four recorded attempts", func() bool {
		attempts = attempts[:0]
		for _, d := range e.sim.Deliveries() {
			if d.NotificationType == "ASSET_COUNT" {
				attempts = append(attempts, d.Attempt)
			}
		}
		return len(attempts) == 4
	})
	sort.Ints(attempts)
	if diff := cmp.Diff([]int{1, 1, 2, 2}, attempts); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
}

func TestNotificationGivesUpAfterAttempts(t *testing.T) {
	e := newEnv(t, Options{NotificationAttempts: 3})
	rc := newReceiver(t)
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 10})
	e.subscribe(rc, "ASSET_COUNT")
	rc.mu.Lock()
	rc.failNext = 100
	rc.mu.Unlock()
	if err := e.sim.Purchase(e.token, "100", -2); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		for _, d := range e.sim.Deliveries() {
			if d.NotificationType == "ASSET_COUNT" {
				n++
			}
		}
		return n
	}
	waitFor(t, "three attempts", func() bool { return count() == 3 })
	if diff := cmp.Diff(AssetState{AdamID: "100", PricingParam: "STDQ", ProductType: "App", Total: 8, Available: 8, Retired: 2}, stateOf(t, e.sim, e.token, "100")); diff != "" {
		t.Errorf("refund accounting mismatch (-want +got):\n%s", diff)
	}
}

func TestScriptedChangeNotifications(t *testing.T) {
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	seedAssets(e)
	if err := e.sim.AddAssignment(e.token, "100", "S1", ""); err != nil {
		t.Fatal(err)
	}
	e.subscribe(rc, "ASSET_MANAGEMENT", "USER_ASSOCIATED", "USER_MANAGEMENT")
	if err := e.sim.RemoveAssignment(e.token, "100", "S1", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AssociateUser(e.token, "u2"); err != nil {
		t.Fatal(err)
	}
	e.manage("/mdm/v2/users/create", map[string]any{"users": []map[string]string{{"clientUserId": "u9", "email": "u9@example.com"}}})
	if err := e.sim.Purchase(e.token, "100", 1); err != nil { // not subscribed: no ASSET_COUNT
		t.Fatal(err)
	}
	waitFor(t, "notifications", func() bool { return len(rc.received()) == 4 })
	got := rc.received()[1:]
	sort.Slice(got, func(i, j int) bool { return got[i].NotificationType < got[j].NotificationType })
	am := got[0].Notification
	if diff := cmp.Diff([]any{"DISASSOCIATE", "SUCCESS", []any{map[string]any{"adamId": "100", "pricingParam": "STDQ", "serialNumber": "S1"}}},
		[]any{am["type"], am["result"], am["assignments"]}); diff != "" {
		t.Errorf("ASSET_MANAGEMENT mismatch (-want +got):\n%s", diff)
	}
	// The eventId of a change made on Apple's side can be looked up.
	if st := e.waitEvent(e.token, am["eventId"].(string)); st.str("eventStatus") != "COMPLETE" {
		t.Errorf("status of the ABM event: %s", st.raw)
	}
	ua := asList(got[1].Notification["associatedUsers"])
	if got[1].NotificationType != "USER_ASSOCIATED" || len(ua) != 1 || ua[0].(map[string]any)["status"] != "Associated" || ua[0].(map[string]any)["idHash"] == nil {
		t.Errorf("USER_ASSOCIATED = %+v", got[1])
	}
	um := got[2].Notification
	if got[2].NotificationType != "USER_MANAGEMENT" || um["type"] != "CREATE" || um["result"] != "SUCCESS" || len(asList(um["users"])) != 1 {
		t.Errorf("USER_MANAGEMENT = %+v", got[2])
	}
}

func TestCloseStopsDelivery(t *testing.T) {
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 10})
	e.subscribe(rc, "ASSET_COUNT")
	e.sim.Close()
	if err := e.sim.Purchase(e.token, "100", 1); err != nil {
		t.Fatal(err)
	}
	if n := len(ofType(rc.received(), "ASSET_COUNT")); n != 0 {
		t.Errorf("%d notifications after Close", n)
	}
	// The API keeps answering after Close; events are processed on access.
	e.mustOK(e.get("/mdm/v2/assets"))
}

func TestSetNotificationConfig(t *testing.T) {
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 1})
	e.sim.SetNotificationConfig(e.token, rc.srv.URL, "direct", []string{"ASSET_COUNT"})
	if u, types := e.sim.NotificationConfig(e.token); u != rc.srv.URL || !cmp.Equal(types, []string{"ASSET_COUNT"}) {
		t.Errorf("NotificationConfig = %q %v", u, types)
	}
	if err := e.sim.Purchase(e.token, "100", 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ASSET_COUNT", func() bool { return len(rc.received()) == 1 })
	if got := rc.received()[0].NotificationType; got != "ASSET_COUNT" {
		t.Errorf("got %s (no TEST_NOTIFICATION is sent by SetNotificationConfig)", got)
	}
}
