package applesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seedAssets adds the assets the manage tests use: a paid app (3 licenses), a free unlimited
// app, a book, an app that is not device-assignable, and two registered users.
func seedAssets(e *env) {
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 3, DeviceAssignable: true, Revocable: true})
	e.sim.AddAsset(e.token, Asset{AdamID: "200", Unlimited: true, DeviceAssignable: true, Revocable: true})
	e.sim.AddAsset(e.token, Asset{AdamID: "300", ProductType: "Book", Total: 5})
	e.sim.AddAsset(e.token, Asset{AdamID: "400", Total: 5, Revocable: true})
	e.sim.AddUser(e.token, "u1", "u1@example.com", "u1@appleid.example")
	e.sim.AddUser(e.token, "u2", "", "")
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestManageValidation(t *testing.T) {
	limits := Limits{MaxAssets: 2, MaxClientUserIDs: 3, MaxSerialNumbers: 3, MaxRevokeClientUserIDs: 2, MaxRevokeSerialNumbers: 2, MaxUsers: 2}
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        any
		want        outcome
	}{
		{"GET on associate", http.MethodGet, "/mdm/v2/assets/associate", "", nil, outcome{405, 9726}},
		{"POST on assets", http.MethodPost, "/mdm/v2/assets", "application/json", "{}", outcome{405, 9726}},
		{"DELETE on users", http.MethodDelete, "/mdm/v2/users", "", nil, outcome{405, 9726}},
		{"text/plain", http.MethodPost, "/mdm/v2/assets/associate", "text/plain", "{}", outcome{415, 9727}},
		{"no content type", http.MethodPost, "/mdm/v2/users/create", "", "{}", outcome{415, 9727}},
		{"json with charset", http.MethodPost, "/mdm/v2/assets/associate", "application/json; charset=utf-8", assetsBody([]string{"100"}, nil, []string{"S1"}), outcome{200, 0}},
		{"malformed JSON", http.MethodPost, "/mdm/v2/assets/associate", "application/json", "{", outcome{400, 9602}},
		{"empty body", http.MethodPost, "/mdm/v2/assets/associate", "application/json", "", outcome{400, 9718}},
		{"no assets", http.MethodPost, "/mdm/v2/assets/associate", "application/json", map[string]any{"serialNumbers": []string{"S1"}}, outcome{400, 9718}},
		{"no targets", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100"}, nil, nil), outcome{400, 9719}},
		{"empty target lists", http.MethodPost, "/mdm/v2/assets/disassociate", "application/json", assetsBody([]string{"100"}, []string{}, []string{}), outcome{400, 9719}},
		{"bad pricingParam", http.MethodPost, "/mdm/v2/assets/associate", "application/json", map[string]any{"assets": []map[string]string{{"adamId": "100", "pricingParam": "XXX"}}, "serialNumbers": []string{"S1"}}, outcome{400, 9602}},
		{"too many assets", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100", "200", "400"}, []string{"u1"}, nil), outcome{400, 9700}},
		{"too many users", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100"}, ids("u", 4), nil), outcome{400, 9701}},
		{"too many serials", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100"}, nil, ids("S", 4)), outcome{400, 9702}},
		{"limit counts distinct values", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100"}, nil, []string{"S1", "S2", "S3", "S3"}), outcome{400, 9705}},
		{"duplicate assets", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100", "100"}, []string{"u1"}, nil), outcome{400, 9703}},
		{"duplicate assets via default pricing", http.MethodPost, "/mdm/v2/assets/associate", "application/json", map[string]any{"assets": []map[string]string{{"adamId": "100"}, {"adamId": "100", "pricingParam": "STDQ"}}, "serialNumbers": []string{"S1"}}, outcome{400, 9703}},
		{"duplicate users", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100"}, []string{"u1", "u1"}, nil), outcome{400, 9704}},
		{"duplicate serials", http.MethodPost, "/mdm/v2/assets/disassociate", "application/json", assetsBody([]string{"100"}, nil, []string{"S1", "S1"}), outcome{400, 9705}},
		{"device target on book", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"300"}, nil, []string{"S1"}), outcome{400, 9707}},
		{"device target on user-only app", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"100", "400"}, []string{"u1"}, []string{"S1"}), outcome{400, 9707}},
		{"user target on book is fine", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"300"}, []string{"u1"}, nil), outcome{200, 0}},
		{"disassociate book", http.MethodPost, "/mdm/v2/assets/disassociate", "application/json", assetsBody([]string{"300"}, []string{"u1"}, nil), outcome{400, 9706}},
		{"unknown asset accepted (fails async)", http.MethodPost, "/mdm/v2/assets/associate", "application/json", assetsBody([]string{"999"}, []string{"u1"}, nil), outcome{200, 0}},
		{"revoke without targets", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{}, outcome{400, 9719}},
		{"revoke empty body", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", "", outcome{400, 9719}},
		{"revoke too many users", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{"clientUserIds": ids("u", 3)}, outcome{400, 9701}},
		{"revoke too many serials", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{"serialNumbers": ids("S", 3)}, outcome{400, 9702}},
		{"revoke duplicate users", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{"clientUserIds": []string{"a", "a"}}, outcome{400, 9704}},
		{"revoke duplicate serials", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{"serialNumbers": []string{"a", "a"}}, outcome{400, 9705}},
		{"revoke ok", http.MethodPost, "/mdm/v2/assets/revoke", "application/json", map[string]any{"serialNumbers": []string{"a"}}, outcome{200, 0}},
		{"users empty", http.MethodPost, "/mdm/v2/users/create", "application/json", map[string]any{"users": []any{}}, outcome{400, 9720}},
		{"users no body", http.MethodPost, "/mdm/v2/users/retire", "application/json", "", outcome{400, 9720}},
		{"too many users to create", http.MethodPost, "/mdm/v2/users/create", "application/json", map[string]any{"users": []map[string]string{{"clientUserId": "a"}, {"clientUserId": "b"}, {"clientUserId": "c"}}}, outcome{400, 9714}},
		{"duplicate users to update", http.MethodPost, "/mdm/v2/users/update", "application/json", map[string]any{"users": []map[string]string{{"clientUserId": "a"}, {"clientUserId": "a"}}}, outcome{400, 9715}},
		{"invalid email", http.MethodPost, "/mdm/v2/users/create", "application/json", map[string]any{"users": []map[string]string{{"clientUserId": "a", "email": "not an email"}}}, outcome{400, 9717}},
		{"user without clientUserId", http.MethodPost, "/mdm/v2/users/create", "application/json", map[string]any{"users": []map[string]string{{"email": "a@b.example"}}}, outcome{400, 9602}},
		{"status unknown event", http.MethodGet, "/mdm/v2/status?eventId=nope", "", nil, outcome{400, 9708}},
		{"unknown path", http.MethodGet, "/mdm/v2/nothing", "", nil, outcome{404, 9602}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			seedAssets(e)
			e.sim.SetLimits(limits)
			var r response
			if tc.method == http.MethodPost {
				req := newRequest(t, e, tc.method, tc.path, tc.body)
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				} else {
					req.Header.Del("Content-Type")
				}
				r = e.send(req)
			} else {
				r = e.do(tc.method, tc.path, e.token, tc.body)
			}
			if diff := cmp.Diff(tc.want, outcome{r.status, r.errNum()}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s\nbody: %s", diff, r.raw)
			}
			if tc.want.ErrorNumber != 0 && r.str("eventId") != "" {
				t.Errorf("an event was created despite the error")
			}
		})
	}
}

// newRequest builds a request like env.do without sending it.
func newRequest(t *testing.T, e *env, method, path string, body any) *http.Request {
	t.Helper()
	var raw string
	switch b := body.(type) {
	case nil:
	case string:
		raw = b
	default:
		raw = mustJSON(t, b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, stringsReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestValidationErrorInfo(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	r := e.post("/mdm/v2/assets/associate", assetsBody([]string{"100", "300"}, []string{"u1"}, []string{"S1"}))
	want := map[string]any{
		"errorNumber": 9707.0, "errorMessage": errorMessage(9707),
		"errorInfo": map[string]any{"assets": []any{map[string]any{"adamId": "300", "pricingParam": "STDQ"}}},
	}
	if diff := cmp.Diff(want, r.body); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// counts summarises an asset's accounting.
type counts struct{ Total, Assigned, Available int }

func countsOf(t *testing.T, e *env, adamID string) counts {
	a := stateOf(t, e.sim, e.token, adamID)
	return counts{a.Total, a.Assigned, a.Available}
}

func TestAssociateAccounting(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	// 2 assets × (3 users + 2 serials) = 10 tasks. Asset 100 has 3 licenses: u1, u2 succeed,
	// ghost fails 9609, S1 succeeds, S2 fails 9709. Asset 200 is unlimited: u1, u2, S1, S2
	// succeed, ghost fails 9609.
	st := e.manage("/mdm/v2/assets/associate", assetsBody([]string{"100", "200"}, []string{"u1", "u2", "ghost"}, []string{"S1", "S2"}))
	type failure struct {
		Number         int
		Assets         []string
		Users, Serials []string
	}
	var got []failure
	for _, f := range st.body["failures"].([]any) {
		m := f.(map[string]any)
		info := m["errorInfo"].(map[string]any)
		fl := failure{Number: int(m["errorNumber"].(float64))}
		for _, a := range asList(info["assets"]) {
			fl.Assets = append(fl.Assets, a.(map[string]any)["adamId"].(string))
		}
		for _, u := range asList(info["clientUserIds"]) {
			fl.Users = append(fl.Users, u.(string))
		}
		for _, s := range asList(info["serialNumbers"]) {
			fl.Serials = append(fl.Serials, s.(string))
		}
		got = append(got, fl)
	}
	want := []failure{
		{Number: 9609, Users: []string{"ghost"}},
		{Number: 9709, Assets: []string{"100"}, Serials: []string{"S2"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"eventStatus": "FAILED", "eventType": "ASSOCIATE", "numRequested": 10.0, "numCompleted": 7.0},
		map[string]any{"eventStatus": st.body["eventStatus"], "eventType": st.body["eventType"], "numRequested": st.body["numRequested"], "numCompleted": st.body["numCompleted"]}); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{3, 3, 0}, countsOf(t, e, "100")); diff != "" {
		t.Errorf("asset 100 mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{unlimitedCount, 4, unlimitedCount - 4}, countsOf(t, e, "200")); diff != "" {
		t.Errorf("asset 200 mismatch (-want +got):\n%s", diff)
	}
	wantAssignments := []Assignment{
		{"100", "STDQ", "", "u1"}, {"100", "STDQ", "", "u2"}, {"100", "STDQ", "S1", ""},
		{"200", "STDQ", "", "u1"}, {"200", "STDQ", "", "u2"}, {"200", "STDQ", "S1", ""}, {"200", "STDQ", "S2", ""},
	}
	if diff := cmp.Diff(wantAssignments, e.sim.Assignments(e.token)); diff != "" {
		t.Errorf("assignments mismatch (-want +got):\n%s", diff)
	}

	// Disassociate frees the licenses; then a complete success.
	st = e.manage("/mdm/v2/assets/disassociate", assetsBody([]string{"100"}, []string{"u1"}, []string{"S1"}))
	if got := []any{st.body["eventStatus"], st.body["numCompleted"], st.body["failures"]}; !cmp.Equal(got, []any{"COMPLETE", 2.0, nil}) {
		t.Errorf("disassociate status = %v", got)
	}
	if diff := cmp.Diff(counts{3, 1, 2}, countsOf(t, e, "100")); diff != "" {
		t.Errorf("asset 100 after disassociate mismatch (-want +got):\n%s", diff)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestEventPendingUntilDelay(t *testing.T) {
	now := fixedNow()
	clock := &fakeClock{t: now}
	e := newEnv(t, Options{Clock: clock.Now, EventDelay: 50 * 1e9})
	seedAssets(e)
	r := e.mustOK(e.post("/mdm/v2/assets/associate", assetsBody([]string{"100"}, nil, []string{"S1"})))
	id := r.str("eventId")
	st := e.get("/mdm/v2/status?eventId=" + id)
	if diff := cmp.Diff([]any{"PENDING", 1.0, 0.0}, []any{st.body["eventStatus"], st.body["numRequested"], st.body["numCompleted"]}); diff != "" {
		t.Errorf("pending status mismatch (-want +got):\n%s", diff)
	}
	if got := e.sim.Assignments(e.token); len(got) != 0 {
		t.Errorf("assignments changed before the event completed: %v", got)
	}
	clock.Advance(50 * 1e9)
	st = e.get("/mdm/v2/status?eventId=" + id)
	if st.str("eventStatus") != "COMPLETE" {
		t.Errorf("status after delay = %s", st.raw)
	}
	if got := len(e.sim.Assignments(e.token)); got != 1 {
		t.Errorf("assignments after completion = %d, want 1", got)
	}
	// Another token cannot read the event.
	other := e.sim.AddToken(TokenSpec{})
	if r := e.do(http.MethodGet, "/mdm/v2/status?eventId="+id, other, nil); r.errNum() != 9708 {
		t.Errorf("other token reading the event: %s", r.raw)
	}
}

func TestIdempotencySwitches(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		path       string
		preassign  bool
		wantStatus string
		wantFail   float64
	}{
		{"re-associate is idempotent", Options{}, "/mdm/v2/assets/associate", true, "COMPLETE", 0},
		{"re-associate fails 9616 with switch", Options{ReassociateFails9616: true}, "/mdm/v2/assets/associate", true, "FAILED", 9616},
		{"disassociate missing is idempotent", Options{}, "/mdm/v2/assets/disassociate", false, "COMPLETE", 0},
		{"disassociate missing fails 9619 with switch", Options{DisassociateMissingFails9619: true}, "/mdm/v2/assets/disassociate", false, "FAILED", 9619},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			seedAssets(e)
			if tc.preassign {
				if err := e.sim.AddAssignment(e.token, "100", "S1", ""); err != nil {
					t.Fatal(err)
				}
			}
			before := countsOf(t, e, "100")
			st := e.manage(tc.path, assetsBody([]string{"100"}, nil, []string{"S1"}))
			var fail float64
			if f := asList(st.body["failures"]); len(f) > 0 {
				fail = f[0].(map[string]any)["errorNumber"].(float64)
			}
			if diff := cmp.Diff([]any{tc.wantStatus, tc.wantFail}, []any{st.body["eventStatus"], fail}); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, countsOf(t, e, "100")); diff != "" {
				t.Errorf("counts changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	for _, a := range [][3]string{{"100", "S1", ""}, {"200", "S1", ""}, {"100", "", "u1"}, {"300", "", "u1"}, {"400", "", "u1"}, {"200", "S2", ""}} {
		if err := e.sim.AddAssignment(e.token, a[0], a[1], a[2]); err != nil {
			t.Fatal(err)
		}
	}
	st := e.manage("/mdm/v2/assets/revoke", map[string]any{"clientUserIds": []string{"u1"}, "serialNumbers": []string{"S1", "S9"}})
	if diff := cmp.Diff([]any{"COMPLETE", "REVOKE", 3.0, 3.0}, []any{st.body["eventStatus"], st.body["eventType"], st.body["numRequested"], st.body["numCompleted"]}); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s", diff)
	}
	// The book stays with u1; S2 is untouched.
	want := []Assignment{{"200", "STDQ", "S2", ""}, {"300", "STDQ", "", "u1"}}
	if diff := cmp.Diff(want, e.sim.Assignments(e.token)); diff != "" {
		t.Errorf("assignments mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{3, 0, 3}, countsOf(t, e, "100")); diff != "" {
		t.Errorf("asset 100 mismatch (-want +got):\n%s", diff)
	}
}

func TestConcurrentAssociateNeverOverAssigns(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 10, DeviceAssignable: true, Revocable: true})
	done := make(chan string, 20)
	for i := range 20 {
		go func() {
			// Not e.post: t.Fatal must not be called from this goroutine.
			body, _ := json.Marshal(assetsBody([]string{"100"}, nil, []string{fmt.Sprintf("S%d", i)}))
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mdm/v2/assets/associate", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				done <- ""
				return
			}
			defer resp.Body.Close()
			var ev struct{ EventID string }
			_ = json.NewDecoder(resp.Body).Decode(&ev)
			done <- ev.EventID
		}()
	}
	var events []string
	for range 20 {
		id := <-done
		if id == "" {
			t.Fatal("an associate request failed")
		}
		events = append(events, id)
	}
	okCount := 0
	for _, id := range events {
		if e.waitEvent(e.token, id).str("eventStatus") == "COMPLETE" {
			okCount++
		}
	}
	if okCount != 10 || len(e.sim.Assignments(e.token)) != 10 {
		t.Errorf("completed %d, assignments %d; want 10 and 10", okCount, len(e.sim.Assignments(e.token)))
	}
	if diff := cmp.Diff(counts{10, 10, 0}, countsOf(t, e, "100")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
