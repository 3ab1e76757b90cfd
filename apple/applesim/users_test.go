package applesim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// userFailures summarises a StatusResponse's failures as number → clientUserIds.
func userFailures(st response) map[int][]string {
	out := map[int][]string{}
	for _, f := range asList(st.body["failures"]) {
		m := f.(map[string]any)
		n := int(m["errorNumber"].(float64))
		for _, u := range asList(m["errorInfo"].(map[string]any)["clientUserIds"]) {
			out[n] = append(out[n], u.(string))
		}
	}
	return out
}

func TestUserEvents(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e) // u1 Associated, u2 Registered

	st := e.manage("/mdm/v2/users/create", map[string]any{"users": []map[string]string{
		{"clientUserId": "u1"},                                         // active already → 9716
		{"clientUserId": "u3", "email": "u3@example.com"},              // Registered
		{"clientUserId": "u4", "managedAppleId": "u4@appleid.example"}, // Associated at once
		{"clientUserId": "u5", "managedAppleId": "u1@appleid.example"}, // account taken → 9641
	}})
	if diff := cmp.Diff(map[int][]string{9716: {"u1"}, 9641: {"u5"}}, userFailures(st)); diff != "" {
		t.Errorf("create failures mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"FAILED", "CREATE", 4.0, 2.0}, []any{st.body["eventStatus"], st.body["eventType"], st.body["numRequested"], st.body["numCompleted"]}); diff != "" {
		t.Errorf("create status mismatch (-want +got):\n%s", diff)
	}
	status := func(id string) string {
		s, _ := e.sim.User(e.token, id)
		return s
	}
	if diff := cmp.Diff([]string{"Registered", "Associated", ""}, []string{status("u3"), status("u4"), status("u5")}); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}

	st = e.manage("/mdm/v2/users/update", map[string]any{"users": []map[string]string{
		{"clientUserId": "u3", "managedAppleId": "u3@appleid.example"},
		{"clientUserId": "ghost", "email": "g@example.com"},
	}})
	if diff := cmp.Diff(map[int][]string{9609: {"ghost"}}, userFailures(st)); diff != "" {
		t.Errorf("update failures mismatch (-want +got):\n%s", diff)
	}
	if status("u3") != "Associated" {
		t.Errorf("u3 after update = %s, want Associated", status("u3"))
	}

	// Retire releases revocable licenses only; the user can be registered again.
	for _, a := range []string{"100", "300"} {
		if err := e.sim.AddAssignment(e.token, a, "", "u3"); err != nil {
			t.Fatal(err)
		}
	}
	st = e.manage("/mdm/v2/users/retire", map[string]any{"users": []map[string]string{{"clientUserId": "u3"}, {"clientUserId": "nobody"}}})
	if diff := cmp.Diff(map[int][]string{9609: {"nobody"}}, userFailures(st)); diff != "" {
		t.Errorf("retire failures mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Assignment{{"300", "STDQ", "", "u3"}}, e.sim.Assignments(e.token)); diff != "" {
		t.Errorf("assignments after retire mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{3, 0, 3}, countsOf(t, e, "100")); diff != "" {
		t.Errorf("asset 100 after retire mismatch (-want +got):\n%s", diff)
	}
	st = e.manage("/mdm/v2/users/create", map[string]any{"users": []map[string]string{{"clientUserId": "u3"}}})
	if st.str("eventStatus") != "COMPLETE" || status("u3") != "Registered" {
		t.Errorf("re-register: %s, status %s", st.raw, status("u3"))
	}
	// A retired user cannot receive licenses; a registered one can.
	st = e.manage("/mdm/v2/assets/associate", assetsBody([]string{"100"}, []string{"u3"}, nil))
	if st.str("eventStatus") != "COMPLETE" {
		t.Errorf("associate to re-registered user: %s", st.raw)
	}
}

func TestAssociateUserFromApplesSide(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	if err := e.sim.AssociateUser(e.token, "u2"); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.sim.User(e.token, "u2"); s != "Associated" {
		t.Errorf("u2 = %s", s)
	}
	if err := e.sim.AssociateUser(e.token, "u2"); err != nil {
		t.Errorf("associating twice: %v", err)
	}
	if err := e.sim.AssociateUser(e.token, "ghost"); err == nil {
		t.Errorf("associating an unknown user succeeded")
	}
}
