package scheduler_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/resolvers/gqltest"
)

// Done means 4: changes made at Apple's side (in Apple Business Manager, or by another tool)
// reach Orchard — without notifications, additions with the next incremental pass, removals
// only with the next full pass (a sinceVersionId delta does not report them), counts with the
// next pass; with notifications, each at once, without a pass.

// drift is a set of changes made at Apple's side.
type drift struct {
	addDevice, addUser, remove applesim.Assignment
	bought, refunded           applesim.AssetState
}

// makeDrift changes the simulator's state behind Orchard's back: a device and a user
// assignment added, one removed, licenses bought of one asset and refunded of another.
func makeDrift(t testing.TB, sim *applesim.Sim, tok string) drift {
	t.Helper()
	var d drift
	held := map[string]bool{}
	for _, a := range sim.Assignments(tok) {
		held[a.AdamID+"|"+a.SerialNumber+"|"+a.ClientUserID] = true
	}
	var user string
	for _, u := range sim.Users(tok) {
		if u.Status == "Registered" || u.Status == "Associated" {
			user = u.ClientUserID
			break
		}
	}
	for _, a := range sim.AssetStates(tok) {
		switch {
		case d.addDevice.AdamID == "" && a.DeviceAssignable && a.Available > 0 && a.ProductType == "App":
			d.addDevice = applesim.Assignment{AdamID: a.AdamID, PricingParam: a.PricingParam, SerialNumber: "SIMDRIFT0001"}
		case d.addUser.AdamID == "" && a.Available > 0 && a.PricingParam == "STDQ" && !held[a.AdamID+"||"+user]:
			d.addUser = applesim.Assignment{AdamID: a.AdamID, PricingParam: a.PricingParam, ClientUserID: user}
		case d.bought.AdamID == "" && !a.Unlimited:
			d.bought = a
		case d.refunded.AdamID == "" && !a.Unlimited && a.Available >= 2:
			d.refunded = a
		}
	}
	d.remove = sim.Assignments(tok)[7]
	if d.addDevice.AdamID == "" || d.addUser.AdamID == "" || user == "" || d.bought.AdamID == "" || d.refunded.AdamID == "" {
		t.Fatalf("generated data has no candidate for every drift: %+v", d)
	}
	return d
}

func (d drift) applyAdditions(t testing.TB, sim *applesim.Sim, tok string) {
	t.Helper()
	for _, a := range []applesim.Assignment{d.addDevice, d.addUser} {
		if err := sim.AddAssignment(tok, a.AdamID, a.SerialNumber, a.ClientUserID); err != nil {
			t.Fatal(err)
		}
	}
}

func (d drift) applyRemoval(t testing.TB, sim *applesim.Sim, tok string) {
	t.Helper()
	if err := sim.RemoveAssignment(tok, d.remove.AdamID, d.remove.SerialNumber, d.remove.ClientUserID); err != nil {
		t.Fatal(err)
	}
}

func (d drift) applyCounts(t testing.TB, sim *applesim.Sim, tok string) {
	t.Helper()
	if err := sim.PurchasePricing(tok, d.bought.AdamID, d.bought.PricingParam, 5); err != nil {
		t.Fatal(err)
	}
	if err := sim.PurchasePricing(tok, d.refunded.AdamID, d.refunded.PricingParam, -2); err != nil {
		t.Fatal(err)
	}
}

// find returns Orchard's assignments of a holder, newest last.
func find(t testing.TB, st *gqltest.Stack, id string, a applesim.Assignment) []assignmentView {
	t.Helper()
	var out []assignmentView
	for _, x := range assignments(t, st, id) {
		if x.Pool.AdamID == a.AdamID && x.Pool.PricingParam == a.PricingParam && deref(x.SerialNumber) == a.SerialNumber && deref(x.ClientUserID) == a.ClientUserID {
			out = append(out, x)
		}
	}
	return out
}

// statusOf is the status and origin of a holder's newest assignment ("" when none).
func statusOf(t testing.TB, st *gqltest.Stack, id string, a applesim.Assignment) (status, origin string) {
	t.Helper()
	xs := find(t, st, id, a)
	if len(xs) == 0 {
		return "", ""
	}
	x := xs[len(xs)-1]
	return x.Status, x.Origin
}

func poolOf(t testing.TB, st *gqltest.Stack, id string, a applesim.AssetState) poolCounts {
	t.Helper()
	for _, p := range orchardPoolCounts(t, st, id) {
		if p.Asset == a.AdamID+"/"+a.PricingParam {
			return p
		}
	}
	t.Fatalf("no pool of %s/%s", a.AdamID, a.PricingParam)
	return poolCounts{}
}

func TestDriftFoundByPasses(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{NoNotifications: true})
		g := gen(st.Sim, 1, 41)
		tok := g.TokenFiles[0]
		id := addSynced(t, st, "drift", tok)
		dr := makeDrift(t, st.Sim, tok)

		// Additions: unknown until a pass; the next incremental pass finds them.
		dr.applyAdditions(t, st.Sim, tok)
		for _, a := range []applesim.Assignment{dr.addDevice, dr.addUser} {
			if s, _ := statusOf(t, st, id, a); s != "" {
				t.Fatalf("without notifications nor a pass, Orchard already shows %+v as %s", a, s)
			}
		}
		r := syncAndWait(t, st, id, "INCREMENTAL")
		if r.Added != 2 {
			t.Errorf("incremental pass added %d, want the 2 new assignments", r.Added)
		}
		for _, a := range []applesim.Assignment{dr.addDevice, dr.addUser} {
			if s, o := statusOf(t, st, id, a); s != "ASSIGNED" || o != "FOUND_AT_APPLE" {
				t.Errorf("after an incremental pass %+v is %q %q, want ASSIGNED FOUND_AT_APPLE", a, s, o)
			}
		}
		checkMatchesSim(t, st, id, tok)

		// A removal: an incremental pass cannot see it; the full pass does.
		removed := time.Now()
		dr.applyRemoval(t, st.Sim, tok)
		syncAndWait(t, st, id, "INCREMENTAL")
		if s, _ := statusOf(t, st, id, dr.remove); s != "ASSIGNED" {
			t.Errorf("after an incremental pass the removed assignment is %q; a delta cannot report removals, want ASSIGNED until a full pass", s)
		}
		r = syncAndWait(t, st, id, "FULL")
		if r.Removed != 1 || r.Added != 0 {
			t.Errorf("full pass: removed %d added %d, want 1 and 0", r.Removed, r.Added)
		}
		xs := find(t, st, id, dr.remove)
		if len(xs) != 1 || xs[0].Status != "REMOVED_AT_APPLE" || xs[0].RemovedAtAppleAt == nil || xs[0].RemovedAtAppleAt.Before(removed) {
			t.Errorf("after a full pass the removed assignment is %+v, want REMOVED_AT_APPLE with removedAtAppleAt after %v", xs, removed)
		}
		checkMatchesSim(t, st, id, tok)

		// Counts: the next pass (incremental is enough: assets are always read in full).
		before := []poolCounts{poolOf(t, st, id, dr.bought), poolOf(t, st, id, dr.refunded)}
		dr.applyCounts(t, st.Sim, tok)
		if got := []poolCounts{poolOf(t, st, id, dr.bought), poolOf(t, st, id, dr.refunded)}; !cmp.Equal(before, got) {
			t.Errorf("pool counts changed without a pass or a notification")
		}
		syncAndWait(t, st, id, "INCREMENTAL")
		checkMatchesSim(t, st, id, tok)
	})
}

func TestDriftFromNotifications(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{})
		g := gen(st.Sim, 1, 42)
		tok := g.TokenFiles[0]
		id := addSynced(t, st, "drift", tok)
		dr := makeDrift(t, st.Sim, tok)
		nRuns := len(runs(t, st, id))
		since := time.Now()

		dr.applyAdditions(t, st.Sim, tok)
		waitFor(t, "the additions to appear", waitLong, func() bool {
			for _, a := range []applesim.Assignment{dr.addDevice, dr.addUser} {
				if s, o := statusOf(t, st, id, a); s != "ASSIGNED" || o != "FOUND_AT_APPLE" {
					return false
				}
			}
			return true
		})
		dr.applyRemoval(t, st.Sim, tok)
		waitFor(t, "the removal to appear", waitLong, func() bool {
			s, _ := statusOf(t, st, id, dr.remove)
			return s == "REMOVED_AT_APPLE"
		})
		if xs := find(t, st, id, dr.remove); xs[len(xs)-1].RemovedAtAppleAt == nil {
			t.Errorf("removed assignment without removedAtAppleAt: %+v", xs)
		}
		dr.applyCounts(t, st.Sim, tok)
		waitMatchesSim(t, st, id, tok, "the counts to change")

		// No pass was needed: no run, and nothing of the account was listed at Apple.
		if n := len(runs(t, st, id)); n != nRuns {
			t.Errorf("%d sync runs after the notifications, want %d (no pass)", n, nRuns)
		}
		for _, r := range requestsSince(st.Sim, tok, since) {
			if slices.Contains([]string{"/mdm/v2/assets", "/mdm/v2/assignments", "/mdm/v2/users"}, r.Path) {
				t.Errorf("Orchard listed %s after the notifications came: a pass ran", r.Path)
			}
		}
	})
}
