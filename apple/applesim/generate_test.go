package applesim

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateDeterministic(t *testing.T) {
	spec := GenSpec{Tokens: 3, AppsPerToken: 40, AssignmentsPerToken: 2000, Seed: 42, Countries: []string{"US", "GB", "DE"}}
	type snapshot struct {
		Gen         Generated
		Assets      [][]AssetState
		Assignments [][]Assignment
		Users       [][]UserState
	}
	take := func() snapshot {
		sim := New(Options{Clock: fixedNow})
		defer sim.Close()
		g := sim.Generate(spec)
		s := snapshot{Gen: g}
		for _, f := range g.TokenFiles {
			s.Assets = append(s.Assets, sim.AssetStates(f))
			s.Assignments = append(s.Assignments, sim.Assignments(f))
			s.Users = append(s.Users, sim.Users(f))
		}
		return s
	}
	a, b := take(), take()
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("two runs differ (-first +second):\n%s", diff)
	}
	spec.Seed = 43
	sim := New(Options{Clock: fixedNow})
	defer sim.Close()
	if c := sim.Generate(spec); c.TokenFiles[0] == a.Gen.TokenFiles[0] {
		t.Errorf("another seed gave the same token file")
	}
}

func TestGenerateContent(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	g := sim.Generate(GenSpec{Tokens: 2, AppsPerToken: 200, AssignmentsPerToken: 3000, Seed: 7, UsersFraction: 0.3})
	if len(g.TokenFiles) != 2 || len(g.Tokens) != 2 {
		t.Fatalf("generated %d tokens", len(g.TokenFiles))
	}
	serialRE := regexp.MustCompile(`^SIM\d{9}$`)
	userRE := regexp.MustCompile(`^user-\d+$`)
	for i, tok := range g.TokenFiles {
		gt := g.Tokens[i]
		assets := sim.AssetStates(tok)
		var paid, free, books, plus, userOnly int
		assigned := map[string]int{}
		for _, a := range assets {
			switch {
			case a.ProductType == "Book":
				books++
				if a.DeviceAssignable || a.Revocable {
					t.Errorf("book %s is device-assignable or revocable", a.AdamID)
				}
				if a.PricingParam == "PLUS" {
					plus++
				}
			case a.Unlimited:
				free++
				if a.Total != unlimitedCount {
					t.Errorf("unlimited asset total %d", a.Total)
				}
			case !a.DeviceAssignable:
				userOnly++
			default:
				paid++
			}
			if !a.Unlimited && a.Available <= 0 {
				t.Errorf("asset %s has no license left (%+v)", a.AdamID, a)
			}
			if !a.Unlimited && a.Total != a.Assigned+a.Available {
				t.Errorf("asset %s: total %d != assigned %d + available %d", a.AdamID, a.Total, a.Assigned, a.Available)
			}
			assigned[a.AdamID+"/"+a.PricingParam] = a.Assigned
		}
		if paid == 0 || free == 0 || books == 0 || plus == 0 || userOnly == 0 {
			t.Errorf("token %d lacks a category: paid %d free %d books %d plus %d user-only %d", i, paid, free, books, plus, userOnly)
		}
		list := sim.Assignments(tok)
		if len(list) != 3000 || gt.Assignments != 3000 || gt.UserAssignments != 900 || gt.DeviceAssignments != 2100 {
			t.Errorf("token %d: %d assignments, summary %+v", i, len(list), gt)
		}
		byAsset := map[string]int{}
		kinds := map[string]AssetState{}
		for _, a := range assets {
			kinds[a.AdamID+"/"+a.PricingParam] = a
		}
		for _, a := range list {
			key := a.AdamID + "/" + a.PricingParam
			byAsset[key]++
			switch {
			case a.SerialNumber != "":
				if !serialRE.MatchString(a.SerialNumber) {
					t.Errorf("serial %q", a.SerialNumber)
				}
				if !kinds[key].DeviceAssignable {
					t.Errorf("device assignment of non-device-assignable %s", key)
				}
			default:
				if !userRE.MatchString(a.ClientUserID) {
					t.Errorf("clientUserId %q", a.ClientUserID)
				}
				if s, ok := sim.User(tok, a.ClientUserID); !ok || (s != "Registered" && s != "Associated") {
					t.Errorf("assigned user %s is %q", a.ClientUserID, s)
				}
			}
		}
		if diff := cmp.Diff(assigned, mergeZero(byAsset, assigned)); diff != "" {
			t.Errorf("assigned counts disagree with assignments (-assets +assignments):\n%s", diff)
		}
	}
	// B2B apps and apps not sold somewhere exist in the catalogue.
	var b2b, notSold int
	sim.catMu.RLock()
	for _, e := range sim.catalog {
		if e.meta.B2B {
			b2b++
			if !strings.HasSuffix(e.meta.Name, "(Custom)") {
				t.Errorf("B2B name %q", e.meta.Name)
			}
		}
		if len(e.meta.NotSoldIn) > 0 {
			notSold++
		}
		if e.meta.ProductType == "App" && !strings.HasPrefix(e.meta.BundleID, "com.") {
			t.Errorf("bundle id %q", e.meta.BundleID)
		}
	}
	sim.catMu.RUnlock()
	if b2b == 0 || notSold == 0 {
		t.Errorf("B2B apps %d, apps not sold somewhere %d", b2b, notSold)
	}
	// Neighbouring tokens share half their apps.
	shared := 0
	first := map[string]bool{}
	for _, a := range sim.AssetStates(g.TokenFiles[0]) {
		first[a.AdamID] = true
	}
	for _, a := range sim.AssetStates(g.TokenFiles[1]) {
		if first[a.AdamID] {
			shared++
		}
	}
	if shared != 100 {
		t.Errorf("tokens share %d apps, want 100", shared)
	}
}

func mergeZero(counts, keys map[string]int) map[string]int {
	out := map[string]int{}
	for k := range keys {
		out[k] = counts[k]
	}
	return out
}

func TestGenerate100kQuickly(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	start := time.Now()
	g := sim.Generate(GenSpec{Tokens: 1, AppsPerToken: 2000, AssignmentsPerToken: 100_000, Seed: 1})
	// First listing merges and sorts the generated assignments.
	n := len(sim.Assignments(g.TokenFiles[0]))
	el := time.Since(start)
	if n != 100_000 {
		t.Fatalf("generated %d assignments", n)
	}
	limit := 2 * time.Second
	if raceEnabled {
		limit = 10 * time.Second
	}
	if el > limit {
		t.Errorf("generating 100,000 assignments took %v", el)
	}
	t.Logf("generated and sorted 100,000 assignments over 2,000 assets in %v", el)
}

func TestGenerateDevicesOnly(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	g := sim.Generate(GenSpec{AppsPerToken: 10, AssignmentsPerToken: 100, UsersFraction: -1})
	for _, a := range sim.Assignments(g.TokenFiles[0]) {
		if a.ClientUserID != "" {
			t.Fatalf("user assignment %+v", a)
		}
	}
	if g.Tokens[0].Users != 0 {
		t.Errorf("users = %d", g.Tokens[0].Users)
	}
}

func BenchmarkGenerate100k(b *testing.B) {
	for b.Loop() {
		sim := New(Options{})
		g := sim.Generate(GenSpec{Tokens: 1, AppsPerToken: 2000, AssignmentsPerToken: 100_000, Seed: 1})
		_ = sim.Assignments(g.TokenFiles[0])
		sim.Close()
	}
}
