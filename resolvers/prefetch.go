package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"orchard/db"
	"orchard/graph"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// Look-ahead prefetch. The loaders batch by time: loads that arrive within a short wait share
// a statement. On a busy machine the resolvers of one level of a 100-item page do not all run
// within that wait, and a page then costs a few statements more than it should. So a list
// resolver looks at what the query selects under its items and loads each to-one relation
// for the whole page in one statement, level by level, priming the request's loaders; the
// field resolvers then find everything cached. Nested connections are primed the same way:
// the pages of children of all the page's items in one statement (and their counts in another,
// when totalCount is selected), then the relations under those children, level by level. A
// root field that returns one object (account, device, node, …) prefetches as for a page of
// one. The cost of a page is one statement per relation selected, whatever its size and
// whatever the machine is doing; resolvers/nplus1_test.go holds every relation to that.

// fieldSelections returns the selections under the field being resolved.
func fieldSelections(ctx context.Context) ast.SelectionSet {
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		return fc.Field.Selections
	}
	return nil
}

// nodeSelections returns the selections under a connection's edges.node and nodes.
func nodeSelections(ctx context.Context) ast.SelectionSet {
	if !graphql.HasOperationContext(ctx) || graphql.GetFieldContext(ctx) == nil {
		return nil
	}
	op := graphql.GetOperationContext(ctx)
	var out ast.SelectionSet
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		switch f.Name {
		case "nodes":
			out = append(out, f.Selections...)
		case "edges":
			for _, e := range graphql.CollectFields(op, f.Selections, nil) {
				if e.Name == "node" {
					out = append(out, e.Selections...)
				}
			}
		}
	}
	return out
}

// children groups the selections of the fields of typ by field name.
func children(ctx context.Context, sel ast.SelectionSet, typ string) map[string]ast.SelectionSet {
	if len(sel) == 0 {
		return nil
	}
	op := graphql.GetOperationContext(ctx)
	out := map[string]ast.SelectionSet{}
	for _, f := range graphql.CollectFields(op, sel, []string{typ, "Node"}) {
		out[f.Name] = append(out[f.Name], f.Selections...)
	}
	return out
}

// prime loads the rows with the given ids in one statement (those not cached yet) and puts
// them in the loader's cache; it returns every row found, cached or new.
func prime[T any](ctx context.Context, l *loaders.Loader[int64, *T], fetch func(context.Context, []int64) ([]*T, error), id func(*T) int64, ids []int64) []*T {
	seen := map[int64]bool{}
	var want []int64
	for _, i := range ids {
		if i != 0 && !seen[i] {
			seen[i] = true
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return nil
	}
	rows, err := fetch(ctx, want)
	if err != nil {
		return nil // the field resolvers will load (and report) on their own
	}
	for _, r := range rows {
		l.Prime(ctx, id(r), r)
	}
	return rows
}

func ids[T any](items []*T, f func(*T) int64) []int64 {
	out := make([]int64, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	return out
}

func optIDs[T any](items []*T, f func(*T) *int64) []int64 {
	out := make([]int64, 0, len(items))
	for _, it := range items {
		if p := f(it); p != nil {
			out = append(out, *p)
		}
	}
	return out
}

func (r *Resolver) prefetchAssignments(ctx context.Context, items []*model.LicenseAssignment, sel ast.SelectionSet) {
	fields := children(ctx, sel, "LicenseAssignment")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if s, ok := fields["pool"]; ok {
		pools := prime(ctx, l.PoolsByID, r.DB.PoolsByID, poolID, ids(items, func(a *model.LicenseAssignment) int64 { return a.PoolID }))
		r.prefetchPools(ctx, pools, s)
	}
	if _, ok := fields["account"]; ok {
		prime(ctx, l.AccountsByID, r.DB.AccountsByID, accountID, ids(items, func(a *model.LicenseAssignment) int64 { return a.AccountID }))
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.AppsByID, r.DB.AppsByID, appID, ids(items, func(a *model.LicenseAssignment) int64 { return a.AppID }))
	}
	var users []int64
	var userSel ast.SelectionSet
	if s, ok := fields["device"]; ok {
		devices := prime(ctx, l.DevicesByID, r.DB.DevicesByID, deviceID, optIDs(items, func(a *model.LicenseAssignment) *int64 { return a.DeviceID }))
		// A device's user is usually selected beside the assignment's own user: load both
		// sets in one statement.
		if us, ok := children(ctx, s, "Device")["user"]; ok {
			users = append(users, optIDs(devices, func(d *model.Device) *int64 { return d.UserID })...)
			userSel = append(userSel, us...)
		}
		r.prefetchDeviceConnections(ctx, devices, s)
	}
	if s, ok := fields["user"]; ok {
		users = append(users, optIDs(items, func(a *model.LicenseAssignment) *int64 { return a.UserID })...)
		userSel = append(userSel, s...)
	}
	r.prefetchUsers(ctx, prime(ctx, l.UsersByID, r.DB.UsersByID, userID, users), userSel)
	if s, ok := fields["label"]; ok {
		labels := prime(ctx, l.LabelsByID, r.DB.LabelsByID, labelID, optIDs(items, func(a *model.LicenseAssignment) *int64 { return a.LabelID }))
		r.prefetchLabels(ctx, labels, typeLicenseLabel, s)
	}
}

func (r *Resolver) prefetchPools(ctx context.Context, items []*model.LicensePool, sel ast.SelectionSet) {
	fields := children(ctx, sel, "LicensePool")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if _, ok := fields["account"]; ok {
		prime(ctx, l.AccountsByID, r.DB.AccountsByID, accountID, ids(items, func(p *model.LicensePool) int64 { return p.AccountID }))
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.AppsByID, r.DB.AppsByID, appID, ids(items, func(p *model.LicensePool) int64 { return p.AppID }))
	}
	if f, ok := connectionField(ctx, sel, "LicensePool", "assignments"); ok {
		as, s := prefetchConnection(ctx, f, ids(items, poolID), l.AssignmentsByParent[db.AssignmentsOfPool], l.CountAssignmentsByParent[db.AssignmentsOfPool])
		r.prefetchAssignments(ctx, as, s)
	}
}

func (r *Resolver) prefetchDevices(ctx context.Context, items []*model.Device, sel ast.SelectionSet) {
	if s, ok := children(ctx, sel, "Device")["user"]; ok && len(items) > 0 {
		users := prime(ctx, loaders.For(ctx).UsersByID, r.DB.UsersByID, userID, optIDs(items, func(d *model.Device) *int64 { return d.UserID }))
		r.prefetchUsers(ctx, users, s)
	}
	r.prefetchDeviceConnections(ctx, items, sel)
}

// prefetchDeviceConnections primes the nested connections of a page of devices.
func (r *Resolver) prefetchDeviceConnections(ctx context.Context, items []*model.Device, sel ast.SelectionSet) {
	if len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if f, ok := connectionField(ctx, sel, "Device", "assignments"); ok {
		as, s := prefetchConnection(ctx, f, ids(items, deviceID), l.AssignmentsByParent[db.AssignmentsOfDevice], l.CountAssignmentsByParent[db.AssignmentsOfDevice])
		r.prefetchAssignments(ctx, as, s)
	}
	if f, ok := connectionField(ctx, sel, "Device", "installedApps"); ok {
		apps, s := prefetchConnection(ctx, f, ids(items, deviceID), l.DeviceAppsByDevice, l.CountDeviceAppsByDevice)
		if _, ok := children(ctx, s, "DeviceApp")["app"]; ok {
			prime(ctx, l.AppsByID, r.DB.AppsByID, appID, optIDs(apps, func(a *model.DeviceApp) *int64 { return a.AppID }))
		}
	}
}

// prefetchAccounts primes the nested connections of a page of accounts.
func (r *Resolver) prefetchAccounts(ctx context.Context, items []*model.Account, sel ast.SelectionSet) {
	if len(items) == 0 || len(sel) == 0 {
		return
	}
	l := loaders.For(ctx)
	parents := ids(items, accountID)
	if f, ok := connectionField(ctx, sel, "Account", "syncRuns"); ok {
		runs, s := prefetchConnection(ctx, f, parents, l.SyncRunsByAccount, l.CountSyncRunsByAccount)
		r.prefetchAccountsOf(ctx, "SyncRun", ids(runs, func(s *model.SyncRun) int64 { return s.AccountID }), s)
	}
	if f, ok := connectionField(ctx, sel, "Account", "licensePools"); ok {
		pools, s := prefetchConnection(ctx, f, parents, l.PoolsByParent[db.PoolsOfAccount], l.CountPoolsByParent[db.PoolsOfAccount])
		r.prefetchPools(ctx, pools, s)
	}
	if f, ok := connectionField(ctx, sel, "Account", "licenseAssignments"); ok {
		as, s := prefetchConnection(ctx, f, parents, l.AssignmentsByParent[db.AssignmentsOfAccount], l.CountAssignmentsByParent[db.AssignmentsOfAccount])
		r.prefetchAssignments(ctx, as, s)
	}
}

// prefetchApps primes the countries and the nested pools of a page of apps.
func (r *Resolver) prefetchApps(ctx context.Context, items []*model.App, sel ast.SelectionSet) {
	if len(items) == 0 || len(sel) == 0 {
		return
	}
	l := loaders.For(ctx)
	if _, ok := children(ctx, sel, "App")["soldIn"]; ok {
		loaders.Prefill(ctx, l.CountriesByApp, ids(items, appID))
	}
	if f, ok := connectionField(ctx, sel, "App", "licensePools"); ok {
		pools, s := prefetchConnection(ctx, f, ids(items, appID), l.PoolsByParent[db.PoolsOfApp], l.CountPoolsByParent[db.PoolsOfApp])
		r.prefetchPools(ctx, pools, s)
	}
}

// prefetchUsers primes the nested connections and the Apple registrations of a page of users.
func (r *Resolver) prefetchUsers(ctx context.Context, items []*model.User, sel ast.SelectionSet) {
	if len(items) == 0 || len(sel) == 0 {
		return
	}
	l := loaders.For(ctx)
	parents := ids(items, userID)
	if f, ok := connectionField(ctx, sel, "User", "devices"); ok {
		devices, s := prefetchConnection(ctx, f, parents, l.DevicesByUser, l.CountDevicesByUser)
		r.prefetchDevices(ctx, devices, s)
	}
	if f, ok := connectionField(ctx, sel, "User", "assignments"); ok {
		as, s := prefetchConnection(ctx, f, parents, l.AssignmentsByParent[db.AssignmentsOfUser], l.CountAssignmentsByParent[db.AssignmentsOfUser])
		r.prefetchAssignments(ctx, as, s)
	}
	if f, ok := connectionField(ctx, sel, "User", "groups"); ok {
		groups, s := prefetchConnection(ctx, f, parents, l.GroupsByUser, l.CountGroupsByUser)
		r.prefetchGroups(ctx, groups, s)
	}
	if s, ok := children(ctx, sel, "User")["appleRegistrations"]; ok {
		var accounts []int64
		for _, regs := range loaders.Prefill(ctx, l.AppleUsersByUserIDs, parents) {
			accounts = append(accounts, ids(regs, func(a *model.AppleUser) int64 { return a.AccountID })...)
		}
		r.prefetchAccountsOf(ctx, "AppleRegistration", accounts, s)
	}
}

// prefetchGroups primes the nested members and devices and the license labels of a page of
// groups.
func (r *Resolver) prefetchGroups(ctx context.Context, items []*model.Group, sel ast.SelectionSet) {
	if len(items) == 0 || len(sel) == 0 {
		return
	}
	l := loaders.For(ctx)
	parents := ids(items, groupID)
	if f, ok := connectionField(ctx, sel, "Group", "members"); ok {
		users, s := prefetchConnection(ctx, f, parents, l.MembersByGroup, l.CountMembersByGroup)
		r.prefetchUsers(ctx, users, s)
	}
	if f, ok := connectionField(ctx, sel, "Group", "devices"); ok {
		devices, s := prefetchConnection(ctx, f, parents, l.DevicesByGroup, l.CountDevicesByGroup)
		r.prefetchDevices(ctx, devices, s)
	}
	if s, ok := children(ctx, sel, "Group")["licenseLabels"]; ok {
		var labels []*model.Label
		for _, ls := range loaders.Prefill(ctx, l.LicenseLabelsByGroup, parents) {
			labels = append(labels, ls...)
		}
		r.prefetchLabels(ctx, labels, typeLicenseLabel, s)
	}
}

// prefetchLabels primes the relations and counts of a page of labels of one type (LicenseLabel
// or AppLabel): their app, accounts (and so their source), groups, counts and waiting holders.
// The labels themselves are primed too, for the waiting holders' label.
func (r *Resolver) prefetchLabels(ctx context.Context, items []*model.Label, typ string, sel ast.SelectionSet) {
	fields := children(ctx, sel, typ)
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	for _, it := range items {
		l.LabelsByID.Prime(ctx, it.ID, it)
	}
	parents := ids(items, labelID)
	if _, ok := fields["app"]; ok {
		prime(ctx, l.AppsByID, r.DB.AppsByID, appID, ids(items, func(v *model.Label) int64 { return v.AppID }))
	}
	_, accounts := fields["accounts"]
	if _, source := fields["source"]; accounts || source {
		var accountIDs []int64
		for _, as := range loaders.Prefill(ctx, l.LabelAccountIDs, parents) {
			accountIDs = append(accountIDs, as...)
		}
		if accounts {
			prime(ctx, l.AccountsByID, r.DB.AccountsByID, accountID, accountIDs)
		}
	}
	if s, ok := fields["groups"]; ok {
		var groupIDs []int64
		for _, gs := range loaders.Prefill(ctx, l.LabelGroupIDs, parents) {
			groupIDs = append(groupIDs, gs...)
		}
		r.prefetchGroups(ctx, prime(ctx, l.GroupsByID, r.DB.GroupsByID, groupID, groupIDs), s)
	}
	if _, ok := fields["heldCount"]; ok {
		loaders.Prefill(ctx, l.CountLabelAssignments, parents)
	}
	if _, ok := fields["waitingCount"]; ok {
		keys := make([]loaders.ChildKey, len(parents))
		for i, id := range parents {
			keys[i] = loaders.ChildKey{Parent: id}
		}
		loaders.Prefill(ctx, l.CountWaitingByLabel, keys)
	}
	if f, ok := connectionField(ctx, sel, typ, "waiting"); ok {
		ws, s := prefetchConnection(ctx, f, parents, l.WaitingByLabel, l.CountWaitingByLabel)
		r.prefetchWaiting(ctx, ws, s)
	}
}

// prefetchExplanation primes the relations of an explanation's lists (the labels covering the
// holder, those leaving it out, the app labels) and of the license it holds.
func (r *Resolver) prefetchExplanation(ctx context.Context, ex *graph.LicenseExplanation, sel ast.SelectionSet) {
	fields := children(ctx, sel, "LicenseExplanation")
	if s, ok := fields["holds"]; ok && ex.Holds != nil {
		r.prefetchAssignments(ctx, []*model.LicenseAssignment{ex.Holds}, s)
	}
	if s, ok := fields["covering"]; ok {
		covering := children(ctx, s, "CoveringLabel")
		labels, groups := make([]*model.Label, 0, len(ex.Covering)), make([]*model.Group, 0, len(ex.Covering))
		for _, c := range ex.Covering {
			labels = append(labels, c.Label)
			if c.Group != nil {
				groups = append(groups, c.Group)
			}
		}
		r.prefetchLabels(ctx, labels, typeLicenseLabel, covering["label"])
		r.prefetchGroups(ctx, groups, covering["group"])
	}
	if s, ok := fields["leftOut"]; ok {
		r.prefetchWaiting(ctx, ex.LeftOut, s)
	}
	if s, ok := fields["appLabels"]; ok {
		r.prefetchLabels(ctx, ex.AppLabels, "AppLabel", s)
	}
}

// prefetchWaiting primes the label, device and user of waiting holders.
func (r *Resolver) prefetchWaiting(ctx context.Context, items []*model.PolicyWaiting, sel ast.SelectionSet) {
	fields := children(ctx, sel, "WaitingHolder")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if s, ok := fields["label"]; ok {
		// Under a page of labels, the holders' label is the page's own (primed already).
		var want []int64
		for _, w := range items {
			if !l.LabelsByID.Cached(w.LabelID) {
				want = append(want, w.LabelID)
			}
		}
		r.prefetchLabels(ctx, prime(ctx, l.LabelsByID, r.DB.LabelsByID, labelID, want), typeLicenseLabel, s)
	}
	if s, ok := fields["device"]; ok {
		r.prefetchDevices(ctx, prime(ctx, l.DevicesByID, r.DB.DevicesByID, deviceID, optIDs(items, func(w *model.PolicyWaiting) *int64 { return w.DeviceID })), s)
	}
	if s, ok := fields["user"]; ok {
		r.prefetchUsers(ctx, prime(ctx, l.UsersByID, r.DB.UsersByID, userID, optIDs(items, func(w *model.PolicyWaiting) *int64 { return w.UserID })), s)
	}
}

func (r *Resolver) prefetchCommands(ctx context.Context, items []*model.DeviceCommand, sel ast.SelectionSet) {
	fields := children(ctx, sel, "DeviceCommand")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if s, ok := fields["device"]; ok {
		devices := prime(ctx, l.DevicesByID, r.DB.DevicesByID, deviceID, ids(items, func(c *model.DeviceCommand) int64 { return c.DeviceID }))
		r.prefetchDevices(ctx, devices, s)
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.AppsByID, r.DB.AppsByID, appID, ids(items, func(c *model.DeviceCommand) int64 { return c.AppID }))
	}
	if s, ok := fields["assignment"]; ok {
		as := prime(ctx, l.AssignmentsByID, r.DB.AssignmentsByID, assignmentID, optIDs(items, func(c *model.DeviceCommand) *int64 { return c.AssignmentID }))
		r.prefetchAssignments(ctx, as, s)
	}
}

// prefetchAccountsOf primes the accounts of rows that point to one (sync runs, audit events).
func (r *Resolver) prefetchAccountsOf(ctx context.Context, typ string, accountIDs []int64, sel ast.SelectionSet) {
	if _, ok := children(ctx, sel, typ)["account"]; ok {
		prime(ctx, loaders.For(ctx).AccountsByID, r.DB.AccountsByID, accountID, accountIDs)
	}
}

// connectionField returns the first selection of a nested connection field of typ, with its
// arguments. (A second selection of the same field, under another alias with other arguments,
// is not prefetched: its resolvers load through the loaders as usual.)
func connectionField(ctx context.Context, sel ast.SelectionSet, typ, name string) (graphql.CollectedField, bool) {
	if len(sel) == 0 {
		return graphql.CollectedField{}, false
	}
	for _, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), sel, []string{typ, "Node"}) {
		if f.Name == name {
			return f, true
		}
	}
	return graphql.CollectedField{}, false
}

// prefetchConnection primes a nested connection for every parent of a page: the parents'
// pages of children in one statement, and their counts in another when totalCount is
// selected, under the keys the connection's resolver will ask for (see nested). It returns
// all the children and the selections under them, for the next level's prefetch. Arguments
// the resolver would refuse prefetch nothing: the resolver reports them.
func prefetchConnection[T any](ctx context.Context, f graphql.CollectedField, parents []int64,
	pages *loaders.Loader[loaders.ChildKey, *loaders.Children[T]], counts *loaders.Loader[loaders.ChildKey, int]) ([]*T, ast.SelectionSet) {
	op := graphql.GetOperationContext(ctx)
	args := f.ArgumentMap(op.Variables)
	var first *int
	if v, ok := args["first"]; ok && v != nil {
		n, err := graphql.UnmarshalInt(v)
		if err != nil {
			return nil, nil
		}
		first = &n
	}
	var after *string
	if v, ok := args["after"]; ok && v != nil {
		a, err := graphql.UnmarshalString(v)
		if err != nil {
			return nil, nil
		}
		after = &a
	}
	filter := ""
	if v, ok := args["status"].([]any); ok {
		st := make([]model.AssignmentStatus, 0, len(v))
		for _, e := range v {
			s, err := graphql.UnmarshalString(e)
			if err != nil {
				return nil, nil
			}
			st = append(st, model.AssignmentStatus(s))
		}
		filter = loaders.StatusFilter(st)
	}
	p, err := pageArgs(first, after)
	if err != nil || len(parents) == 0 {
		return nil, nil
	}
	keys := make([]loaders.ChildKey, len(parents))
	for i, id := range parents {
		keys[i] = loaders.ChildKey{Parent: id, First: p.First, After: p.After, Filter: filter}
	}
	var items []*T
	for _, ch := range loaders.Prefill(ctx, pages, keys) {
		if ch != nil {
			items = append(items, ch.Items...)
		}
	}
	var under ast.SelectionSet
	for _, c := range graphql.CollectFields(op, f.Selections, nil) {
		switch c.Name {
		case "totalCount":
			countKeys := make([]loaders.ChildKey, len(parents))
			for i, id := range parents {
				countKeys[i] = loaders.ChildKey{Parent: id, Filter: filter}
			}
			loaders.Prefill(ctx, counts, countKeys)
		case "nodes":
			under = append(under, c.Selections...)
		case "edges":
			for _, e := range graphql.CollectFields(op, c.Selections, nil) {
				if e.Name == "node" {
					under = append(under, e.Selections...)
				}
			}
		}
	}
	return items, under
}

// prefetchNodes loads the objects of a nodes(ids:) query in one statement per type, then their
// relations as a page of each type would.
func (r *Resolver) prefetchNodes(ctx context.Context, gids []string) {
	sel := fieldSelections(ctx)
	byType := map[string][]int64{}
	for _, gid := range gids {
		if typ, id, ok := parseGlobalID(gid); ok {
			byType[typ] = append(byType[typ], id)
		}
	}
	l := loaders.For(ctx)
	for typ, keys := range byType {
		switch typ {
		case typeAccount:
			r.prefetchAccounts(ctx, rowsOf(loaders.Prefill(ctx, l.AccountsByID, keys)), sel)
		case typeApp:
			r.prefetchApps(ctx, rowsOf(loaders.Prefill(ctx, l.AppsByID, keys)), sel)
		case typePool:
			r.prefetchPools(ctx, rowsOf(loaders.Prefill(ctx, l.PoolsByID, keys)), sel)
		case typeAssignment:
			r.prefetchAssignments(ctx, rowsOf(loaders.Prefill(ctx, l.AssignmentsByID, keys)), sel)
		case typeDevice:
			r.prefetchDevices(ctx, rowsOf(loaders.Prefill(ctx, l.DevicesByID, keys)), sel)
		case typeUser:
			r.prefetchUsers(ctx, rowsOf(loaders.Prefill(ctx, l.UsersByID, keys)), sel)
		case typeGroup:
			r.prefetchGroups(ctx, rowsOf(loaders.Prefill(ctx, l.GroupsByID, keys)), sel)
		case typeAuditEvent:
			events := rowsOf(loaders.Prefill(ctx, l.AuditEventsByID, keys))
			r.prefetchAccountsOf(ctx, "AuditEvent", optIDs(events, func(e *model.AuditEvent) *int64 { return e.AccountID }), sel)
		case typeSyncRun:
			runs := rowsOf(loaders.Prefill(ctx, l.SyncRunsByID, keys))
			r.prefetchAccountsOf(ctx, "SyncRun", ids(runs, func(s *model.SyncRun) int64 { return s.AccountID }), sel)
		case typeDeviceCommand:
			r.prefetchCommands(ctx, rowsOf(loaders.Prefill(ctx, l.CommandsByID, keys)), sel)
		case typeLicenseLabel:
			r.prefetchLabels(ctx, rowsOf(loaders.Prefill(ctx, l.LabelsByID, keys)), typeLicenseLabel, sel)
		case typeAPIKey:
			if k := KeyFrom(ctx); k != nil && k.Role.Rank() >= 3 { // as node(): admins only
				loaders.Prefill(ctx, l.APIKeysByID, keys)
			}
		}
	}
}

// rowsOf returns the rows a Prefill found (ids without a row map to nil).
func rowsOf[T any](m map[int64]*T) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

// single prefetches the relations of the one object a root field returns, as for a page of
// one: the items of its nested connections then load their own relations in one statement
// each, rather than in as many as the loaders' time-based batches make of them.
func single[T any](ctx context.Context, prefetch func(context.Context, []*T, ast.SelectionSet)) func(*T, error) (*T, error) {
	return func(v *T, err error) (*T, error) {
		if err == nil && v != nil {
			prefetch(ctx, []*T{v}, fieldSelections(ctx))
		}
		return v, err
	}
}
