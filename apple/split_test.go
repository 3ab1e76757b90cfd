package apple

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type pair struct {
	asset  AssetRef
	target string
}

// coverage returns every asset × target pair a request list covers, failing
// on limits, duplicates within a request, or a pair covered twice.
func coverage(t *testing.T, reqs []ManageAssetsRequest, l Limits) map[pair]bool {
	t.Helper()
	seen := map[pair]bool{}
	for i, r := range reqs {
		if len(r.Assets) == 0 || len(r.Assets) > l.MaxAssets || len(r.ClientUserIDs) > l.MaxClientUserIDs ||
			len(r.SerialNumbers) > l.MaxSerialNumbers || len(r.ClientUserIDs)+len(r.SerialNumbers) == 0 {
			t.Fatalf("request %d outside limits: %d assets, %d users, %d serials", i, len(r.Assets), len(r.ClientUserIDs), len(r.SerialNumbers))
		}
		uniq := map[string]bool{}
		for _, a := range r.Assets {
			k := "a:" + a.AdamID + "/" + a.PricingParam
			if uniq[k] || a.PricingParam == "" {
				t.Fatalf("request %d: duplicate or unnormalized asset %v", i, a)
			}
			uniq[k] = true
		}
		for _, u := range r.ClientUserIDs {
			if uniq["u:"+u] {
				t.Fatalf("request %d: duplicate user %s", i, u)
			}
			uniq["u:"+u] = true
		}
		for _, s := range r.SerialNumbers {
			if uniq["s:"+s] {
				t.Fatalf("request %d: duplicate serial %s", i, s)
			}
			uniq["s:"+s] = true
		}
		for _, a := range r.Assets {
			for _, u := range r.ClientUserIDs {
				p := pair{a, "u:" + u}
				if seen[p] {
					t.Fatalf("pair %v covered twice", p)
				}
				seen[p] = true
			}
			for _, s := range r.SerialNumbers {
				p := pair{a, "s:" + s}
				if seen[p] {
					t.Fatalf("pair %v covered twice", p)
				}
				seen[p] = true
			}
		}
	}
	return seen
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestSplitManage(t *testing.T) {
	l := Limits{MaxAssets: 3, MaxClientUserIDs: 4, MaxSerialNumbers: 2}.withDefaults()
	for _, tc := range []struct{ assets, users, serials, wantReqs int }{
		{1, 1, 0, 1}, {3, 4, 2, 1}, {4, 4, 2, 2}, {7, 9, 0, 9}, {7, 0, 5, 9}, {7, 9, 5, 9}, {2, 1, 6, 3}, {0, 3, 3, 0}, {3, 0, 0, 0},
	} {
		var assets []AssetRef
		for i := range tc.assets {
			assets = append(assets, AssetRef{AdamID: fmt.Sprint(100 + i)})
		}
		req := ManageAssetsRequest{Assets: assets, ClientUserIDs: ids("u", tc.users), SerialNumbers: ids("s", tc.serials)}
		// Duplicates and empties in the input are removed.
		req.Assets = append(req.Assets, req.Assets...)
		if tc.assets > 0 {
			req.Assets = append(req.Assets, AssetRef{AdamID: "100", PricingParam: "STDQ"}, AssetRef{})
		}
		req.ClientUserIDs = append(req.ClientUserIDs, append(req.ClientUserIDs, "")...)
		req.SerialNumbers = append(req.SerialNumbers, req.SerialNumbers...)
		out := SplitManage(req, l)
		if len(out) != tc.wantReqs {
			t.Errorf("%+v: %d requests, want %d", tc, len(out), tc.wantReqs)
		}
		got := coverage(t, out, l)
		if want := tc.assets * (tc.users + tc.serials); len(got) != want {
			t.Errorf("%+v: %d pairs covered, want %d", tc, len(got), want)
		}
	}
	// Zero limits mean defaults (25 assets, 1000 ids).
	out := SplitManage(ManageAssetsRequest{Assets: []AssetRef{{AdamID: "1", PricingParam: "PLUS"}}, SerialNumbers: ids("s", 2500)}, Limits{})
	if len(out) != 3 || len(out[0].SerialNumbers) != 1000 || out[0].Assets[0].PricingParam != "PLUS" {
		t.Errorf("default limits: %d requests", len(out))
	}
}

func TestSplitRevoke(t *testing.T) {
	l := Limits{MaxRevokeClientUserIDs: 3, MaxRevokeSerialNumbers: 2}
	out := SplitRevoke(RevokeAssetsRequest{ClientUserIDs: append(ids("u", 7), "u1", ""), SerialNumbers: ids("s", 3)}, l)
	want := []RevokeAssetsRequest{
		{ClientUserIDs: []string{"u0", "u1", "u2"}, SerialNumbers: []string{"s0", "s1"}},
		{ClientUserIDs: []string{"u3", "u4", "u5"}, SerialNumbers: []string{"s2"}},
		{ClientUserIDs: []string{"u6"}},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("SplitRevoke mismatch (-want +got):\n%s", diff)
	}
	if got := SplitRevoke(RevokeAssetsRequest{}, l); len(got) != 0 {
		t.Errorf("empty revoke: %v", got)
	}
}

func TestSplitUsers(t *testing.T) {
	users := []RequestUser{{ClientUserID: "a", Email: "old@x"}, {ClientUserID: "b"}, {ClientUserID: ""}, {ClientUserID: "c"}, {ClientUserID: "a", Email: "new@x"}}
	out := SplitUsers(users, Limits{MaxUsers: 2})
	want := [][]RequestUser{{{ClientUserID: "a", Email: "new@x"}, {ClientUserID: "b"}}, {{ClientUserID: "c"}}}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("SplitUsers mismatch (-want +got):\n%s", diff)
	}
	if len(SplitUsers(make([]RequestUser, 0), Limits{})) != 0 {
		t.Error("empty users")
	}
}
