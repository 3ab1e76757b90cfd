package resolvers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/graph"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// The N+1 guard. Every relation of the schema — every field of a type the queries reach whose
// value is an object, a list of objects or a connection — is read through a loader, so that a
// page costs one statement per relation selected, whatever its size. The guard is a table of
// queries (readCases) and a check of the table against the schema: each relation must be
// selected, and found non-empty, by one of the table's queries, so a relation added to the
// schema fails the guard until it has its line here (and its loader, and its prefetch clause
// where it sits under a page: see doc/howto.md, "A relation").
//
// Each paged query is sent for a page of 10 and of 100 items, with nested connections of two
// items under every item; both must cost the same number of statements, at most the case's
// bound. The queries of single objects (account, app, device, …) are sent once, within their
// bound. Mutation payloads and subscription events are not in the table: they are single
// objects whose relations use the same resolvers and loaders as the ones here.

// readCase is one query of the guard. A paged query takes the page size as $first and says
// where its list is (list, a path into the data) so the guard can check the page is full.
type readCase struct {
	name  string
	query string
	list  string // "a.b": the data's field a, then b; "" for a single object
	role  model.Role
	vars  func(f *wideFixture, n int) map[string]any
	max   int64 // at most this many statements
}

// nestedPage is a page of assignments with their relations; the benchmarks send it too (keep
// it as it is, or their figures stop being comparable).
const nestedPage = `query($first: Int) {
  licenseAssignments(first: $first) {
    edges { cursor node {
      id status
      pool { account { name } app { name } }
      device { serialNumber user { email } }
      user { email }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`

var readCases = []readCase{
	{name: "accounts", list: "accounts.nodes", max: 10, query: `query($first: Int) {
  accounts(first: $first) { nodes { id name claimedBy { id name }
    syncRuns(first: 2) { totalCount nodes { id account { name } } }
    licensePools(first: 2) { totalCount nodes { id app { name } } }
    licenseAssignments(first: 2) { totalCount nodes { id app { name } } } } pageInfo { hasNextPage } } }`},
	{name: "apiKeys", list: "apiKeys.edges", role: model.RoleAdmin, max: 2, query: `query($first: Int) {
  apiKeys(first: $first) { edges { cursor node { id name role } } totalCount } }`},
	{name: "apps", list: "apps.nodes", max: 7, query: `query($first: Int) {
  apps(first: $first) { nodes { id name soldIn
    licensePools(first: 2) { totalCount nodes { id account { name } assignments(first: 2) { totalCount nodes { id } } } } } } }`},
	{name: "auditEvents", list: "auditEvents.nodes", max: 2, query: `query($first: Int) {
  auditEvents(first: $first) { nodes { id action account { name } } } }`},
	{name: "deviceCommands", list: "deviceCommands.nodes", max: 7, query: `query($first: Int) {
  deviceCommands(first: $first) { nodes { id kind device { serialNumber user { email } } app { name }
    assignment { id pool { app { name } } } } } }`},
	{name: "devices", list: "devices.nodes", max: 8, query: `query($first: Int) {
  devices(first: $first) { nodes { id serialNumber user { email }
    assignments(first: 2) { totalCount nodes { id app { name } } }
    installedApps(first: 2) { totalCount nodes { bundleId app { name } } } } } }`},
	{name: "groups", list: "groups.nodes", max: 8, query: `query($first: Int) {
  groups(first: $first) { nodes { id name dynamic rule { platforms minOsVersion } members(first: 2) { totalCount nodes { id email } }
    devices(first: 2) { totalCount nodes { serialNumber user { email } } }
    licenseLabels { name kind app { name } } } } }`},
	{name: "licenseLabels", list: "licenseLabels.nodes", max: 11, query: `query($first: Int) {
  licenseLabels(first: $first) { nodes { id name kind source cap graceSeconds heldCount waitingCount app { name } accounts { name } groups { name }
    waiting(first: 2) { totalCount edges { cursor node { kind code reason since label { name } device { serialNumber } user { email } } } pageInfo { hasNextPage } } } } }`},
	{name: "licenseAssignments", list: "licenseAssignments.edges", max: 6, query: nestedPage},
	{name: "licensePools", list: "licensePools.nodes", max: 8, query: `query($first: Int) {
  licensePools(first: $first) { nodes { id account { name } app { name }
    assignments(first: 2) { totalCount nodes { id device { serialNumber } user { email } label { name } } } } } }`},
	{name: "syncRuns", list: "syncRuns.nodes", max: 2, query: `query($first: Int) {
  syncRuns(first: $first) { nodes { id status account { name } } } }`},
	{name: "users", list: "users.nodes", max: 9, query: `query($first: Int) {
  users(first: $first) { nodes { id email
    devices(first: 2) { totalCount nodes { serialNumber } }
    assignments(first: 2) { totalCount nodes { id } }
    groups(first: 2) { totalCount nodes { name } }
    appleRegistrations { status account { name } } } } }`},
	{name: "nodes", list: "nodes", max: 7, query: `query($ids: [ID!]!) {
  nodes(ids: $ids) { __typename ... on LicenseAssignment { id pool { app { name } } account { name } app { name } device { serialNumber } user { email } } } }`,
		vars: func(f *wideFixture, n int) map[string]any {
			ids := make([]string, n)
			for i := range n {
				ids[i] = f.Assignments[i].NodeID()
			}
			return map[string]any{"ids": ids}
		}},
	// Single objects, with nested connections of ten.
	{name: "account", max: 3, query: `query($id: ID!) { account(id: $id) { name licensePools(first: 10) { nodes { app { name } } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"id": f.Accounts[1].NodeID()} }},
	{name: "app", max: 3, query: `query($adamId: String) { app(adamId: $adamId) { name licensePools(first: 10) { nodes { account { name } } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"adamId": f.Apps[1].AdamID} }},
	{name: "device", max: 5, query: `query($sn: String) { device(serialNumber: $sn) { user { email } assignments(first: 10) { nodes { pool { app { name } } } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"sn": f.Devices[1].SerialNumber} }},
	{name: "licensePool", max: 4, query: `query($id: ID!) { licensePool(id: $id) { account { name } app { name } assignments(first: 10) { nodes { id } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"id": f.Pools[1].NodeID()} }},
	{name: "node", max: 1, query: `query($id: ID!) { node(id: $id) { ... on Account { name } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"id": f.Accounts[1].NodeID()} }},
	{name: "user", max: 4, query: `query($ext: String) { user(externalId: $ext) { devices(first: 10) { nodes { serialNumber } } appleRegistrations { account { name } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"ext": f.Users[1].ExternalID} }},
	{name: "group", max: 6, query: `query($id: ID!) { group(id: $id) { name dynamic rule { platforms } devices(first: 10) { nodes { serialNumber user { email } } }
    licenseLabels { name accounts { name } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"id": f.Groups[0].NodeID()} }},
	{name: "appLabels", max: 5, query: `query($adamId: String) { appLabels(adamId: $adamId) { name installOnRegistration installOnSignIn app { name } groups { name } } }`,
		vars: func(f *wideFixture, _ int) map[string]any { return map[string]any{"adamId": f.Apps[2].AdamID} }},
	// explainLicense runs an evaluation of the app in a transaction it rolls back: most of its
	// bound is that evaluation's reads and writes (license.Explain), the rest one statement
	// per relation shown. A change to the evaluation moves these bounds.
	{name: "explainLicense assign", max: 61, query: `query($adamId: String, $sn: String) { explainLicense(adamId: $adamId, device: {serialNumber: $sn}) {
    summary app { name } device { serialNumber } holds { id } covering { label { name } group { name } } appLabels { name app { name } groups { name } }
    wouldAssign { kind reason label { name } device { serialNumber } account { name } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any {
			return map[string]any{"adamId": f.Apps[2].AdamID, "sn": f.Devices[1].SerialNumber}
		}},
	{name: "explainLicense reclaim", max: 62, query: `query($adamId: String, $sn: String) { explainLicense(adamId: $adamId, device: {serialNumber: $sn}) {
    summary holds { id label { name } } wouldReclaim { reason label { name } device { serialNumber } account { name } assignment { id } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any {
			return map[string]any{"adamId": f.Apps[2].AdamID, "sn": f.Devices[7].SerialNumber}
		}},
	{name: "explainLicense user", max: 58, query: `query($adamId: String, $ext: String) { explainLicense(adamId: $adamId, userExternalId: $ext) {
    summary user { email } covering { label { name } group { name } } wouldAssign { user { email } account { name } label { name } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any {
			return map[string]any{"adamId": f.Apps[1].AdamID, "ext": f.Users[2].ExternalID}
		}},
	{name: "explainLicense leftOut", max: 44, query: `query($adamId: String, $sn: String) { explainLicense(adamId: $adamId, device: {serialNumber: $sn}) {
    summary leftOut { code reason since label { name } device { serialNumber } user { email } } } }`,
		vars: func(f *wideFixture, _ int) map[string]any {
			return map[string]any{"adamId": f.Apps[4].AdamID, "sn": f.Devices[5].SerialNumber}
		}},
	{name: "viewer", max: 0, query: `{ viewer { role apiKey { name } } }`},
}

// TestNoNPlusOne sends every query of the table on both engines and checks the table covers
// every relation of the schema.
func TestNoNPlusOne(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	docs := make([]*ast.QueryDocument, len(readCases))
	for i, c := range readCases {
		doc, err := gqlparser.LoadQuery(schema, c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		docs[i] = doc
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := seedWide(t, d, 110)
		s := gqltest.New(t, d, gqltest.Options{Limits: resolvers.Limits{Complexity: 1 << 30, Depth: 20, Tokens: 1 << 20, BodyBytes: 1 << 20}})
		exercised := map[string]bool{}
		for i, c := range readCases {
			key := s.Keys[model.RoleViewer]
			if c.role != "" {
				key = s.Keys[c.role]
			}
			sizes := []int{10, 100}
			if c.list == "" {
				sizes = []int{1}
			}
			counts := map[int]int64{}
			for _, n := range sizes {
				vars := map[string]any{"first": n}
				if c.vars != nil {
					vars = c.vars(f, n)
				}
				if !strings.Contains(c.query, "$first") {
					delete(vars, "first")
				}
				// The fewest statements of up to three runs: a loader collects the keys of one
				// level for a 2 ms window, and on a starved machine (the race detector, other
				// suites) a level's resolvers may straggle into a second batch. An N+1 is
				// structural and shows in every run; a straggler does not.
				var data map[string]any
				for try := 0; try < 3; try++ {
					// Warm the key cache just before: it keeps a key for seconds only, and a
					// key looked up again would count as a statement of the query.
					s.Do(t, key, `{ viewer { role } }`, nil)
					data = nil
					s.Do(t, key, c.query, vars).MustData(t, &data)
					if try == 0 || s.Statements < counts[n] {
						counts[n] = s.Statements
					}
					if counts[n] <= c.max && (n == sizes[0] || counts[n] == counts[sizes[0]]) {
						break
					}
				}
				if c.list != "" {
					if got := len(listAt(data, c.list)); got != n {
						t.Fatalf("%s: %s has %d items, want %d", c.name, c.list, got, n)
					}
				}
				markExercised(docs[i].Operations[0].SelectionSet, data, exercised)
			}
			if c.list != "" && counts[10] != counts[100] {
				t.Errorf("%s: %d statements for 10 items, %d for 100; want the same", c.name, counts[10], counts[100])
			}
			for n, got := range counts {
				if got > c.max {
					t.Errorf("%s: %d statements for %d items, want at most %d", c.name, got, n, c.max)
				}
			}
			t.Logf("%s: statements per page %v", c.name, counts)
		}
		if missing := missingRelations(schema, exercised); len(missing) > 0 {
			t.Errorf("relations of the schema no query of readCases selects with a value (add them to the table, with data for them in seedWide):\n  %s",
				strings.Join(missing, "\n  "))
		}
	})
}

// relations returns every relation of the schema the read path reaches, as "Type.field": the
// fields of an object, list of objects, interface or connection type on the types reachable
// from Query, leaving out the plumbing of connections (edges, nodes, pageInfo, node).
func relations(schema *ast.Schema) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(name string)
	visit = func(name string) {
		def := schema.Types[name]
		if def == nil || seen[name] || def.BuiltIn {
			return
		}
		seen[name] = true
		switch def.Kind {
		case ast.Interface, ast.Union:
			for _, p := range schema.GetPossibleTypes(def) {
				visit(p.Name)
			}
			return
		case ast.Object:
		default:
			return
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			target := schema.Types[f.Type.Name()]
			if target == nil || (target.Kind != ast.Object && target.Kind != ast.Interface && target.Kind != ast.Union) {
				continue
			}
			plumbing := strings.HasSuffix(name, "Connection") && slices.Contains([]string{"edges", "nodes", "pageInfo"}, f.Name) ||
				strings.HasSuffix(name, "Edge") && f.Name == "node"
			if !plumbing {
				out = append(out, name+"."+f.Name)
			}
			visit(target.Name)
		}
	}
	visit(schema.Query.Name)
	sort.Strings(out)
	return out
}

// missingRelations lists the relations no query exercised.
func missingRelations(schema *ast.Schema, exercised map[string]bool) []string {
	var out []string
	for _, r := range relations(schema) {
		if !exercised[r] {
			out = append(out, r)
		}
	}
	return out
}

// markExercised walks a response along its query and marks "Type.field" for every relation
// field that has a value: a non-null object, a non-empty list, a connection with items. A
// relation that is null everywhere costs no statement, so it would prove nothing.
func markExercised(sel ast.SelectionSet, v any, out map[string]bool) {
	if list, ok := v.([]any); ok {
		for _, it := range list {
			markExercised(sel, it, out)
		}
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			val, ok := obj[s.Alias]
			if !ok || len(s.SelectionSet) == 0 {
				continue
			}
			if hasValue(s.Definition.Type.Name(), val) {
				out[s.ObjectDefinition.Name+"."+s.Name] = true
			}
			markExercised(s.SelectionSet, val, out)
		case *ast.InlineFragment:
			if tn, ok := obj["__typename"].(string); !ok || s.TypeCondition == "" || tn == s.TypeCondition {
				markExercised(s.SelectionSet, obj, out)
			}
		case *ast.FragmentSpread:
			markExercised(s.Definition.SelectionSet, obj, out)
		}
	}
}

func hasValue(typ string, v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []any:
		return len(v) > 0
	case map[string]any:
		if strings.HasSuffix(typ, "Connection") {
			return len(listAt(v, "nodes")) > 0 || len(listAt(v, "edges")) > 0
		}
		return true
	}
	return true
}

// listAt follows a dotted path of fields into decoded JSON data and returns the list there.
func listAt(v any, path string) []any {
	for _, p := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	l, _ := v.([]any)
	return l
}

// wideFixture holds rows of every type the read path shows, more than a page of 100 of each,
// every relation of every row set.
type wideFixture struct {
	Accounts    []*model.Account
	Apps        []*model.App
	Pools       []*model.LicensePool
	Users       []*model.User
	Devices     []*model.Device
	Assignments []*model.LicenseAssignment
	Groups      []*model.Group
	// LicenseLabels[i] and AppLabels[i] are labels of Apps[i].
	LicenseLabels []*model.Label
	AppLabels     []*model.Label
}

// seedWide writes n accounts, apps, users (each with a device, a group, an Apple registration),
// two pools per account and app, a device and a user assignment per account, two installed
// apps and a command per device, a sync run and an audit event per account, and n API keys.
//
// And the policy of each app i: a license label (DEVICE for even i, USER for odd i; a cap of
// one for i%4 == 0) taking licenses from accounts i and i+1 and covering groups i and i+1, with
// three waiting holders, and an app label covering group i. User i and device i are members of
// groups i and i+1; every tenth group is dynamic. For even i, device i's assignment of app i
// and user i's of app i+1 were made by their app's label, and device i+5 holds a license of app
// i made by the label although no group of it covers the device (an evaluation would take it
// back). So, for app 2: device 1 is covered (through group 2) without a license and under the
// app label (would be assigned); device 7 holds a license the label would reclaim. For app 1,
// user 2 is covered without a license. For app 4, devices 3 and 5 are covered but the cap is
// reached.
func seedWide(t *testing.T, d *db.DB, n int) *wideFixture {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	f := &wideFixture{}
	insert := func(rows any) {
		t.Helper()
		if err := d.InsertRows(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		key := fmt.Sprintf("uid-%d", i)
		a := &model.Account{
			Name: fmt.Sprintf("Account %d", i), OrgName: "Org", LocationName: fmt.Sprintf("Location %d", i),
			CountryCode: "US", AppleUID: key, LocationKey: &key,
			TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(365 * 24 * time.Hour),
			Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever,
		}
		if i%10 == 0 {
			id, name := fmt.Sprintf("mdm-%d", i), "Other MDM"
			a.Health, a.ClaimedByID, a.ClaimedByName = model.TokenHealthClaimedElsewhere, &id, &name
		}
		f.Accounts = append(f.Accounts, a)
		f.Apps = append(f.Apps, &model.App{AdamID: fmt.Sprint(200000 + i), Kind: model.AppKindApp, Name: fmt.Sprintf("App %d", i),
			BundleID: fmt.Sprintf("com.example.wide%d", i), Platforms: "IOS,IPADOS"})
		f.Users = append(f.Users, &model.User{ExternalID: fmt.Sprintf("ext-%d", i), ClientUserID: fmt.Sprintf("cu-%d", i),
			Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i), Status: model.UserActive})
	}
	insert(f.Accounts)
	insert(f.Apps)
	insert(f.Users)
	var groups []*model.Group
	for i := range n {
		uid := f.Users[i].ID
		f.Devices = append(f.Devices, &model.Device{SerialNumber: fmt.Sprintf("WIDE%06d", i), Name: fmt.Sprintf("iPad %d", i),
			Platform: model.PlatformIPadOS, OSVersion: "17.4", CountryCode: "US", UserID: &uid, Status: model.DeviceActive})
		for _, app := range []*model.App{f.Apps[i], f.Apps[(i+1)%n]} {
			f.Pools = append(f.Pools, &model.LicensePool{AccountID: f.Accounts[i].ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ",
				TotalCount: 10, AssignedCount: 1, DeviceAssignable: true, Revocable: true})
		}
		groups = append(groups, &model.Group{ExternalID: fmt.Sprintf("grp-%d", i), Name: fmt.Sprintf("Group %d", i), CreatedAt: now, UpdatedAt: now})
	}
	for i := 0; i < n; i += 10 {
		rule, err := json.Marshal(model.GroupRule{Platforms: []model.Platform{model.PlatformIPadOS}, MinOSVersion: "17"})
		if err != nil {
			t.Fatal(err)
		}
		groups[i].Rule = ptr(string(rule))
	}
	insert(f.Devices)
	insert(f.Pools)
	insert(groups)
	f.Groups = groups
	var (
		labelGroups   []*model.LabelGroup
		labelAccounts []*model.LabelAccount
		waiting       []*model.PolicyWaiting
		groupDevices  []*model.GroupDevice
	)
	for i := range n {
		kind := model.LicenseKindDevice
		if i%2 == 1 {
			kind = model.LicenseKindUser
		}
		l := &model.Label{Kind: model.LabelLicense, Name: fmt.Sprintf("Label %d", i), AppID: f.Apps[i].ID, AccountID: &f.Accounts[i].ID,
			LicenseKind: &kind, CreatedAt: now, UpdatedAt: now}
		if i%4 == 0 {
			l.CapCount = ptr(int64(1))
		}
		f.LicenseLabels = append(f.LicenseLabels, l)
		f.AppLabels = append(f.AppLabels, &model.Label{Kind: model.LabelApp, Name: fmt.Sprintf("App label %d", i), AppID: f.Apps[i].ID,
			InstallOnEnroll: true, CreatedAt: now, UpdatedAt: now})
	}
	insert(f.LicenseLabels)
	insert(f.AppLabels)
	for i := range n {
		l := f.LicenseLabels[i]
		for j, k := range []int{i, (i + 1) % n} {
			labelGroups = append(labelGroups, &model.LabelGroup{LabelID: l.ID, GroupID: groups[k].ID})
			labelAccounts = append(labelAccounts, &model.LabelAccount{LabelID: l.ID, AccountID: f.Accounts[k].ID, Position: j})
			groupDevices = append(groupDevices, &model.GroupDevice{GroupID: groups[k].ID, DeviceID: f.Devices[i].ID, CreatedAt: now})
		}
		labelGroups = append(labelGroups, &model.LabelGroup{LabelID: f.AppLabels[i].ID, GroupID: groups[i].ID})
		for j := range 3 {
			dev, user := f.Devices[(i+2+j)%n], f.Users[(i+2+j)%n]
			w := &model.PolicyWaiting{LabelID: l.ID, AppID: l.AppID, Kind: *l.LicenseKind, Code: model.CodeLabelCapReached,
				Reason: "the label's cap is reached", FirstCoveredAt: now.Add(time.Duration(j) * time.Second), UpdatedAt: now}
			if w.Kind == model.LicenseKindDevice {
				w.DeviceID = &dev.ID
			} else {
				w.UserID = &user.ID
			}
			w.HolderKey = model.HolderKeyFor(w.Kind, dev.SerialNumber, user.ClientUserID)
			waiting = append(waiting, w)
		}
	}
	for _, rows := range []any{labelGroups, labelAccounts, waiting, groupDevices} {
		insert(rows)
	}
	var (
		members   []*model.GroupMember
		apps      []*model.DeviceApp
		runs      []*model.SyncRun
		audits    []*model.AuditEvent
		apple     []*model.AppleUser
		keys      []*model.APIKey
		commands  []*model.DeviceCommand
		uncovered []*model.LicenseAssignment
	)
	for i := range n {
		dev, user := f.Devices[i], f.Users[i]
		for j, p := range []*model.LicensePool{f.Pools[2*i], f.Pools[2*i+1]} {
			a := &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Status: model.AssignmentAssigned,
				Origin: model.OriginAdmin, Reason: "seed", CausedBy: "test", AssignedAt: &now, CreatedAt: now, UpdatedAt: now}
			if j == 0 {
				a.Kind, a.SerialNumber, a.DeviceID = model.LicenseKindDevice, &dev.SerialNumber, &dev.ID
			} else {
				a.Kind, a.ClientUserID, a.UserID = model.LicenseKindUser, &user.ClientUserID, &user.ID
			}
			key := model.HolderKeyFor(a.Kind, dev.SerialNumber, user.ClientUserID)
			a.HolderKey = &key
			if i%2 == 0 {
				// Device i's license of app i, user i's of app i+1: by their app's label.
				a.Origin, a.LabelID = model.OriginLabel, &f.LicenseLabels[(i+j)%n].ID
			}
			f.Assignments = append(f.Assignments, a)
		}
		if i%2 == 0 {
			// A license of app i the label gave a device it no longer covers.
			p, other := f.Pools[2*i], f.Devices[(i+5)%n]
			key := model.HolderKeyFor(model.LicenseKindDevice, other.SerialNumber, "")
			uncovered = append(uncovered, &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Status: model.AssignmentAssigned,
				Origin: model.OriginLabel, LabelID: &f.LicenseLabels[i].ID, Reason: "seed", CausedBy: "test", AssignedAt: &now, CreatedAt: now, UpdatedAt: now,
				Kind: model.LicenseKindDevice, SerialNumber: &other.SerialNumber, DeviceID: &other.ID, HolderKey: &key})
		}
		for _, g := range []*model.Group{groups[i], groups[(i+1)%n]} {
			members = append(members, &model.GroupMember{GroupID: g.ID, UserID: user.ID, CreatedAt: now})
		}
		for _, app := range []*model.App{f.Apps[i], f.Apps[(i+1)%n]} {
			apps = append(apps, &model.DeviceApp{DeviceID: dev.ID, AppID: &app.ID, BundleID: app.BundleID, Name: app.Name, Version: "1.0", Managed: true, ReportedAt: now})
		}
		acct := f.Accounts[i].ID
		runs = append(runs, &model.SyncRun{AccountID: acct, Kind: model.SyncFull, Trigger: model.TriggerSchedule, Status: model.SyncRunSucceeded, StartedAt: now, FinishedAt: &now})
		audits = append(audits, &model.AuditEvent{At: now, ActorKind: model.ActorSystem, ActorName: "test", Action: "seed", AccountID: &acct, Details: "{}"})
		apple = append(apple, &model.AppleUser{AccountID: acct, UserID: &user.ID, ClientUserID: user.ClientUserID, Email: user.Email,
			Status: model.AppleUserAssociated, CreatedAt: now, UpdatedAt: now})
		keys = append(keys, &model.APIKey{Name: fmt.Sprintf("key %d", i), Prefix: fmt.Sprintf("orch_w%d", i), Hash: fmt.Sprintf("wide-hash-%d", i),
			Role: model.RoleViewer, CreatedBy: "test", CreatedAt: now})
	}
	insert(f.Assignments)
	insert(uncovered)
	for i := range n {
		a := f.Assignments[2*i]
		commands = append(commands, &model.DeviceCommand{DeviceID: *a.DeviceID, AppID: a.AppID, AssignmentID: &a.ID,
			Kind: model.CommandInstall, Status: model.CommandPending, Reason: "seed", CreatedAt: now})
	}
	for _, rows := range []any{members, apps, runs, audits, apple, keys, commands} {
		insert(rows)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// TestRelationWaitingPages pages through a label's waiting holders, whose cursor is a position
// in the fair order (first covered first) rather than an id: pages follow each other with
// nothing skipped or repeated, whatever the page size, and totalCount counts them all.
func TestRelationWaitingPages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := seedWide(t, d, 10)
		s := gqltest.New(t, d, gqltest.Options{})
		key := s.Keys[model.RoleViewer]
		// Label 0 (DEVICE) waits for devices 2, 3 and 4, in that order.
		want := []string{f.Devices[2].SerialNumber, f.Devices[3].SerialNumber, f.Devices[4].SerialNumber}
		for _, size := range []int{1, 2, 3} {
			var got []string
			var after any
			for pages := 0; pages < 5; pages++ {
				var data struct {
					Node struct {
						Waiting struct {
							TotalCount int
							Nodes      []struct{ Device struct{ SerialNumber string } }
							PageInfo   struct {
								HasNextPage bool
								EndCursor   string
							}
						}
					}
				}
				s.Do(t, key, `query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on LicenseLabel {
  waiting(first: $first, after: $after) { totalCount nodes { device { serialNumber } } pageInfo { hasNextPage endCursor } } } } }`,
					map[string]any{"id": f.LicenseLabels[0].NodeID(), "first": size, "after": after}).MustData(t, &data)
				if data.Node.Waiting.TotalCount != len(want) {
					t.Fatalf("page size %d: totalCount %d, want %d", size, data.Node.Waiting.TotalCount, len(want))
				}
				for _, n := range data.Node.Waiting.Nodes {
					got = append(got, n.Device.SerialNumber)
				}
				if !data.Node.Waiting.PageInfo.HasNextPage {
					break
				}
				after = data.Node.Waiting.PageInfo.EndCursor
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("page size %d: waiting holders mismatch (-want +got):\n%s", size, diff)
			}
		}
	})
}
