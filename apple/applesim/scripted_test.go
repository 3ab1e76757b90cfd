package applesim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScriptedChangeRules(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	e.sim.AddAsset(e.token, Asset{AdamID: "500", Total: 1, DeviceAssignable: true, Revocable: true})
	if err := e.sim.AddAssignment(e.token, "500", "S1", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		run     func() error
		wantErr bool
	}{
		{"assign to a device", func() error { return e.sim.AddAssignment(e.token, "100", "D1", "") }, false},
		{"assign twice is a no-op", func() error { return e.sim.AddAssignment(e.token, "100", "D1", "") }, false},
		{"both targets", func() error { return e.sim.AddAssignment(e.token, "100", "D2", "u1") }, true},
		{"no target", func() error { return e.sim.AddAssignment(e.token, "100", "", "") }, true},
		{"unknown asset", func() error { return e.sim.AddAssignment(e.token, "999", "D1", "") }, true},
		{"device on a book", func() error { return e.sim.AddAssignment(e.token, "300", "D1", "") }, true},
		{"unregistered user", func() error { return e.sim.AddAssignment(e.token, "100", "", "ghost") }, true},
		{"no license left", func() error { return e.sim.AddAssignment(e.token, "500", "S2", "") }, true},
		{"remove a missing assignment", func() error { return e.sim.RemoveAssignment(e.token, "100", "D9", "") }, true},
		{"purchase an unknown asset", func() error { return e.sim.Purchase(e.token, "999", 1) }, true},
		{"purchase an unlimited asset", func() error { return e.sim.Purchase(e.token, "200", 1) }, true},
		{"refund assigned licenses", func() error { return e.sim.Purchase(e.token, "500", -1) }, true},
		{"refund a free license", func() error { return e.sim.Purchase(e.token, "100", -1) }, false},
		{"associate an unknown user", func() error { return e.sim.AssociateUser(e.token, "ghost") }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); (err != nil) != tc.wantErr {
				t.Errorf("error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	// 100: 3 bought, 1 refunded (retired), 1 assigned.
	if diff := cmp.Diff(AssetState{AdamID: "100", PricingParam: "STDQ", ProductType: "App", Total: 2, Assigned: 1, Available: 1, Retired: 1, DeviceAssignable: true, Revocable: true},
		stateOf(t, e.sim, e.token, "100")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestBooksAreUserOnlyWhateverTheSpecSays(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	tok := sim.AddToken(TokenSpec{})
	sim.AddAsset(tok, Asset{AdamID: "1", ProductType: "Book", PricingParam: "PLUS", Total: 1, DeviceAssignable: true, Revocable: true})
	want := []AssetState{{AdamID: "1", PricingParam: "PLUS", ProductType: "Book", Total: 1, Available: 1}}
	if diff := cmp.Diff(want, sim.AssetStates(tok)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
