package applesim

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pageInfo is the pagination part of a listing.
type pageInfo struct {
	Current, Size, Total int
	Next                 any
}

func pageOf(r response) pageInfo {
	return pageInfo{Current: r.num("currentPageIndex"), Size: r.num("size"), Total: r.num("totalPages"), Next: r.body["nextPageIndex"]}
}

// assignmentKeys lists the assignments of a page as "adamId/serial|user" strings.
func assignmentKeys(r response) []string {
	var out []string
	for _, a := range asList(r.body["assignments"]) {
		m := a.(map[string]any)
		target, _ := m["serialNumber"].(string)
		if target == "" {
			target, _ = m["clientUserId"].(string)
		}
		key := m["adamId"].(string) + "/" + target
		if m["removed"] == true {
			key += " removed"
		}
		out = append(out, key)
	}
	return out
}

func TestPagination(t *testing.T) {
	e := newEnv(t, Options{PageSize: 4})
	e.sim.AddAsset(e.token, Asset{AdamID: "100", Total: 20, DeviceAssignable: true, Revocable: true})
	for i := range 10 {
		if err := e.sim.AddAssignment(e.token, "100", fmt.Sprintf("S%02d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		page    string
		want    pageInfo
		wantErr int
	}{
		{"", pageInfo{0, 4, 3, 1.0}, 0},
		{"0", pageInfo{0, 4, 3, 1.0}, 0},
		{"1", pageInfo{1, 4, 3, 2.0}, 0},
		{"2", pageInfo{2, 2, 3, nil}, 0},
		{"3", pageInfo{}, 9650},
		{"-1", pageInfo{}, 9650},
		{"x", pageInfo{}, 9650},
	}
	for _, tc := range tests {
		t.Run("page "+tc.page, func(t *testing.T) {
			r := e.get("/mdm/v2/assignments?pageIndex=" + tc.page)
			if tc.wantErr != 0 {
				if diff := cmp.Diff(outcome{400, tc.wantErr}, outcome{r.status, r.errNum()}); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(tc.want, pageOf(e.mustOK(r))); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// Walking nextPageIndex returns every assignment once, in order.
	var all []string
	for page := 0; ; {
		r := e.mustOK(e.get(fmt.Sprintf("/mdm/v2/assignments?pageIndex=%d", page)))
		all = append(all, assignmentKeys(r)...)
		next, ok := r.body["nextPageIndex"].(float64)
		if !ok {
			break
		}
		page = int(next)
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("100/S%02d", i))
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("walk mismatch (-want +got):\n%s", diff)
	}
	// Empty listings have one empty page; assets and users paginate the same way.
	if diff := cmp.Diff(pageInfo{0, 0, 1, nil}, pageOf(e.mustOK(e.get("/mdm/v2/assignments?adamId=999")))); diff != "" {
		t.Errorf("empty listing mismatch (-want +got):\n%s", diff)
	}
	if r := e.get("/mdm/v2/assets?pageIndex=1"); r.errNum() != 9650 {
		t.Errorf("assets page 1 of 1: %s", r.raw)
	}
	if r := e.get("/mdm/v2/users?pageIndex=1"); r.errNum() != 9650 {
		t.Errorf("users page 1 of 1: %s", r.raw)
	}
}

func TestSinceVersionID(t *testing.T) {
	for _, removals := range []bool{false, true} {
		t.Run(fmt.Sprintf("DeltaReportsRemovals=%v", removals), func(t *testing.T) {
			e := newEnv(t, Options{DeltaReportsRemovals: removals})
			seedAssets(e)
			for _, s := range []string{"S1", "S2"} {
				if err := e.sim.AddAssignment(e.token, "100", s, ""); err != nil {
					t.Fatal(err)
				}
			}
			first := e.mustOK(e.get("/mdm/v2/assignments"))
			v1 := first.str("versionId")
			if v1 == "" {
				t.Fatal("no versionId")
			}
			// Nothing changed: empty delta, same version.
			r := e.mustOK(e.get("/mdm/v2/assignments?sinceVersionId=" + url.QueryEscape(v1)))
			if len(assignmentKeys(r)) != 0 || r.str("versionId") != v1 {
				t.Errorf("delta without changes: %s", r.raw)
			}
			// One association through the API, one removal in ABM.
			e.manage("/mdm/v2/assets/associate", assetsBody([]string{"200"}, []string{"u1"}, nil))
			if err := e.sim.RemoveAssignment(e.token, "100", "S1", ""); err != nil {
				t.Fatal(err)
			}
			r = e.mustOK(e.get("/mdm/v2/assignments?sinceVersionId=" + url.QueryEscape(v1)))
			want := []string{"200/u1"}
			if removals {
				want = append(want, "100/S1 removed")
			}
			if diff := cmp.Diff(want, assignmentKeys(r)); diff != "" {
				t.Errorf("delta mismatch (-want +got):\n%s", diff)
			}
			v2 := r.str("versionId")
			if v2 == v1 {
				t.Errorf("versionId did not change")
			}
			r = e.mustOK(e.get("/mdm/v2/assignments?sinceVersionId=" + url.QueryEscape(v2)))
			if len(assignmentKeys(r)) != 0 {
				t.Errorf("delta since latest version: %s", r.raw)
			}
		})
	}
	e := newEnv(t, Options{})
	other := e.sim.AddToken(TokenSpec{})
	otherVersion := e.mustOK(e.do("GET", "/mdm/v2/assignments", other, nil)).str("versionId")
	usersVersion := e.mustOK(e.get("/mdm/v2/users")).str("versionId")
	for _, bad := range []string{"nonsense", "n999-0000", otherVersion, usersVersion, "n" + "zz-0000"} {
		if r := e.get("/mdm/v2/assignments?sinceVersionId=" + url.QueryEscape(bad)); r.errNum() != 9721 || r.status != 400 {
			t.Errorf("sinceVersionId=%q: %d %s", bad, r.status, r.raw)
		}
	}
	if r := e.get("/mdm/v2/users?sinceVersionId=nonsense"); r.errNum() != 9721 {
		t.Errorf("users sinceVersionId=nonsense: %s", r.raw)
	}
}

func TestAssetsSinceVersionIDSwitch(t *testing.T) {
	e := newEnv(t, Options{})
	if r := e.get("/mdm/v2/assets?sinceVersionId=x"); r.status != 200 || r.errNum() != 0 {
		t.Errorf("default ignores sinceVersionId: %s", r.raw)
	}
	e = newEnv(t, Options{AssetsRejectSinceVersionID: true})
	if r := e.get("/mdm/v2/assets?sinceVersionId=x"); r.errNum() != 9602 || r.status != 400 {
		t.Errorf("switch: %d %s", r.status, r.raw)
	}
}

func TestVersionsChangeOnWrites(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	versions := func() [3]string {
		return [3]string{
			e.mustOK(e.get("/mdm/v2/assets")).str("versionId"),
			e.mustOK(e.get("/mdm/v2/assignments")).str("versionId"),
			e.mustOK(e.get("/mdm/v2/users")).str("versionId"),
		}
	}
	v0 := versions()
	e.manage("/mdm/v2/assets/associate", assetsBody([]string{"100"}, nil, []string{"S1"}))
	v1 := versions()
	if v1[0] == v0[0] || v1[1] == v0[1] || v1[2] != v0[2] {
		t.Errorf("after associate: %v → %v (want assets and assignments changed, users not)", v0, v1)
	}
	e.manage("/mdm/v2/users/create", map[string]any{"users": []map[string]string{{"clientUserId": "new"}}})
	v2 := versions()
	if v2[0] != v1[0] || v2[1] != v1[1] || v2[2] == v1[2] {
		t.Errorf("after create user: %v → %v", v1, v2)
	}
	if err := e.sim.Purchase(e.token, "100", 5); err != nil {
		t.Fatal(err)
	}
	if v3 := versions(); v3[0] == v2[0] {
		t.Errorf("purchase did not change the assets version")
	}
}

func TestAssetFilters(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	e.sim.AddAsset(e.token, Asset{AdamID: "300", PricingParam: "PLUS", ProductType: "Book", Total: 2})
	if err := e.sim.AddAssignment(e.token, "100", "S1", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AddAssignment(e.token, "200", "S1", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query     string
		want      []string
		unlimited []string
		wantErr   int
	}{
		{query: "", want: []string{"100/STDQ", "200/STDQ", "300/PLUS", "300/STDQ", "400/STDQ"}},
		{query: "adamId=300", want: []string{"300/PLUS", "300/STDQ"}},
		{query: "adamId=999", want: nil},
		{query: "productType=Book", want: []string{"300/PLUS", "300/STDQ"}},
		{query: "productType=App&pricingParam=STDQ", want: []string{"100/STDQ", "200/STDQ", "400/STDQ"}},
		{query: "pricingParam=PLUS", want: []string{"300/PLUS"}},
		{query: "revocable=false", want: []string{"300/PLUS", "300/STDQ"}},
		{query: "deviceAssignable=true", want: []string{"100/STDQ", "200/STDQ"}},
		{query: "minAssignedCount=1", want: []string{"100/STDQ", "200/STDQ"}},
		{query: "maxAssignedCount=0", want: []string{"300/PLUS", "300/STDQ", "400/STDQ"}},
		{query: "minAvailableCount=3", want: []string{"200/STDQ", "300/STDQ", "400/STDQ"}},
		{query: "maxAvailableCount=2", want: []string{"100/STDQ", "300/PLUS"}},
		{query: "unlimited=false", want: []string{"100/STDQ", "300/PLUS", "300/STDQ", "400/STDQ"}},
		{query: "unlimited=true", want: []string{"100/STDQ", "300/PLUS", "300/STDQ", "400/STDQ"}, unlimited: []string{"200/STDQ"}},
		{query: "productType=Game", wantErr: 9602},
		{query: "revocable=maybe", wantErr: 9602},
		{query: "minAssignedCount=x", wantErr: 9602},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.get("/mdm/v2/assets?" + tc.query)
			if tc.wantErr != 0 {
				if r.errNum() != tc.wantErr {
					t.Errorf("got %s, want error %d", r.raw, tc.wantErr)
				}
				return
			}
			e.mustOK(r)
			keys := func(list any) []string {
				var out []string
				for _, a := range asList(list) {
					m := a.(map[string]any)
					out = append(out, m["adamId"].(string)+"/"+m["pricingParam"].(string))
				}
				return out
			}
			if diff := cmp.Diff(tc.want, keys(r.body["assets"])); diff != "" {
				t.Errorf("assets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.unlimited, keys(r.body["unlimitedAssets"])); diff != "" {
				t.Errorf("unlimitedAssets mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// The unlimited asset's counts with the parameter omitted, and without counts in
	// unlimitedAssets.
	r := e.mustOK(e.get("/mdm/v2/assets?adamId=200"))
	got := r.body["assets"].([]any)[0].(map[string]any)
	want := map[string]any{
		"adamId": "200", "pricingParam": "STDQ", "productType": "App", "assignedCount": 1.0,
		"availableCount": float64(unlimitedCount - 1), "totalCount": float64(unlimitedCount), "retiredCount": 0.0,
		"deviceAssignable": true, "revocable": true, "supportedPlatforms": []any{"iOS"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unlimited asset mismatch (-want +got):\n%s", diff)
	}
	r = e.mustOK(e.get("/mdm/v2/assets?adamId=200&unlimited=true"))
	got = r.body["unlimitedAssets"].([]any)[0].(map[string]any)
	for _, k := range []string{"availableCount", "totalCount", "retiredCount"} {
		delete(want, k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unlimitedAssets entry mismatch (-want +got):\n%s", diff)
	}
}

func TestAssignmentFilters(t *testing.T) {
	e := newEnv(t, Options{PageSize: 2})
	seedAssets(e)
	for _, a := range [][3]string{{"100", "S1", ""}, {"100", "", "u1"}, {"200", "S1", ""}, {"200", "S2", ""}, {"200", "", "u2"}, {"300", "", "u2"}} {
		if err := e.sim.AddAssignment(e.token, a[0], a[1], a[2]); err != nil {
			t.Fatal(err)
		}
	}
	e.manage("/mdm/v2/users/retire", map[string]any{"users": []map[string]string{{"clientUserId": "u2"}}})
	// Retiring u2 released its revocable license of 200; the book 300 stays.
	all := func(query string) []string {
		var out []string
		for page := 0; ; page++ {
			r := e.mustOK(e.get(fmt.Sprintf("/mdm/v2/assignments?%s&pageIndex=%d", query, page)))
			out = append(out, assignmentKeys(r)...)
			if r.body["nextPageIndex"] == nil {
				return out
			}
		}
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"100/u1", "100/S1", "200/S1", "200/S2", "300/u2"}},
		{"adamId=200", []string{"200/S1", "200/S2"}},
		{"serialNumber=S1", []string{"100/S1", "200/S1"}},
		{"clientUserId=u1", []string{"100/u1"}},
		{"adamId=100&serialNumber=S1", []string{"100/S1"}},
		{"pricingParam=STDQ&adamId=300", []string{"300/u2"}},
		{"excludeInactiveUsers=true", []string{"100/u1", "100/S1", "200/S1", "200/S2"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, all(tc.query)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	r := e.mustOK(e.get("/mdm/v2/assignments?clientUserId=u1&includeUserState=true"))
	want := []any{map[string]any{"adamId": "100", "pricingParam": "STDQ", "clientUserId": "u1", "userStatus": "Associated", "idHash": idHash("2049025000000001", "u1@appleid.example")}}
	if diff := cmp.Diff(want, r.body["assignments"]); diff != "" {
		t.Errorf("includeUserState mismatch (-want +got):\n%s", diff)
	}
	r = e.mustOK(e.get("/mdm/v2/assignments?clientUserId=u2&includeUserState=true"))
	if got := r.body["assignments"].([]any)[0].(map[string]any)["userStatus"]; got != "Retired" {
		t.Errorf("retired user's book assignment userStatus = %v", got)
	}
	if r := e.get("/mdm/v2/assignments?includeUserState=perhaps"); r.errNum() != 9602 {
		t.Errorf("bad boolean: %s", r.raw)
	}
}

func TestUsersListing(t *testing.T) {
	e := newEnv(t, Options{})
	seedAssets(e)
	e.manage("/mdm/v2/users/retire", map[string]any{"users": []map[string]string{{"clientUserId": "u2"}}})
	v := e.mustOK(e.get("/mdm/v2/users")).str("versionId")
	e.manage("/mdm/v2/users/create", map[string]any{"users": []map[string]string{{"clientUserId": "u2", "email": "u2@example.com"}, {"clientUserId": "u3"}}})
	list := func(query string) []string {
		r := e.mustOK(e.get("/mdm/v2/users?" + query))
		var out []string
		for _, u := range asList(r.body["users"]) {
			m := u.(map[string]any)
			out = append(out, m["clientUserId"].(string)+":"+m["status"].(string))
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"u1:Associated", "u2:Retired", "u2:Registered", "u3:Registered"}},
		{"activeOnly=true", []string{"u1:Associated", "u2:Registered", "u3:Registered"}},
		{"retiredOnly=true", []string{"u2:Retired"}},
		{"clientUserId=u2", []string{"u2:Retired", "u2:Registered"}},
		{"clientUserId=u2&activeOnly=true", []string{"u2:Registered"}},
		{"sinceVersionId=" + url.QueryEscape(v), []string{"u2:Registered", "u3:Registered"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, list(tc.query)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	r := e.mustOK(e.get("/mdm/v2/users?clientUserId=u1"))
	want := []any{map[string]any{"clientUserId": "u1", "email": "u1@example.com", "idHash": idHash("2049025000000001", "u1@appleid.example"), "inviteCode": e.sim.Users(e.token)[0].InviteCode, "status": "Associated"}}
	if diff := cmp.Diff(want, r.body["users"]); diff != "" {
		t.Errorf("user shape mismatch (-want +got):\n%s", diff)
	}
}

func TestLargeListingIsConsistentAcrossPages(t *testing.T) {
	e := newEnv(t, Options{PageSize: 1000})
	g := e.sim.Generate(GenSpec{Tokens: 1, AppsPerToken: 50, AssignmentsPerToken: 5000, Seed: 3})
	tok := g.TokenFiles[0]
	var got []string
	for page := 0; ; page++ {
		r := e.mustOK(e.do("GET", fmt.Sprintf("/mdm/v2/assignments?pageIndex=%d", page), tok, nil))
		got = append(got, assignmentKeys(r)...)
		if r.body["nextPageIndex"] == nil {
			break
		}
	}
	var want []string
	for _, a := range e.sim.Assignments(tok) {
		want = append(want, a.AdamID+"/"+a.SerialNumber+a.ClientUserID)
	}
	if len(want) != 5000 {
		t.Fatalf("generated %d assignments, want 5000", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
