package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"orchard/model"
	"orchard/resolvers/loaders"
)

// Look-ahead prefetch. The loaders batch by time: loads that arrive within a short wait share
// a statement. On a busy machine the resolvers of one level of a 100-item page do not all run
// within that wait, and a page then costs a few statements more than it should. So a list
// resolver looks at what the query selects under its items and loads each to-one relation
// for the whole page in one statement, level by level, priming the request's loaders; the
// field resolvers then find everything cached. The cost of a page is one statement per
// relation selected, whatever its size and whatever the machine is doing.

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
		pools := prime(ctx, l.Pool, r.DB.PoolsByID, poolID, ids(items, func(a *model.LicenseAssignment) int64 { return a.PoolID }))
		r.prefetchPools(ctx, pools, s)
	}
	if _, ok := fields["account"]; ok {
		prime(ctx, l.Account, r.DB.AccountsByID, accountID, ids(items, func(a *model.LicenseAssignment) int64 { return a.AccountID }))
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.App, r.DB.AppsByID, appID, ids(items, func(a *model.LicenseAssignment) int64 { return a.AppID }))
	}
	var users []int64
	if s, ok := fields["device"]; ok {
		devices := prime(ctx, l.Device, r.DB.DevicesByID, deviceID, optIDs(items, func(a *model.LicenseAssignment) *int64 { return a.DeviceID }))
		// A device's user is usually selected beside the assignment's own user: load both
		// sets in one statement.
		if _, ok := children(ctx, s, "Device")["user"]; ok {
			users = append(users, optIDs(devices, func(d *model.Device) *int64 { return d.UserID })...)
		}
	}
	if _, ok := fields["user"]; ok {
		users = append(users, optIDs(items, func(a *model.LicenseAssignment) *int64 { return a.UserID })...)
	}
	prime(ctx, l.User, r.DB.UsersByID, userID, users)
}

func (r *Resolver) prefetchPools(ctx context.Context, items []*model.LicensePool, sel ast.SelectionSet) {
	fields := children(ctx, sel, "LicensePool")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if _, ok := fields["account"]; ok {
		prime(ctx, l.Account, r.DB.AccountsByID, accountID, ids(items, func(p *model.LicensePool) int64 { return p.AccountID }))
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.App, r.DB.AppsByID, appID, ids(items, func(p *model.LicensePool) int64 { return p.AppID }))
	}
}

func (r *Resolver) prefetchDevices(ctx context.Context, items []*model.Device, sel ast.SelectionSet) {
	if _, ok := children(ctx, sel, "Device")["user"]; ok && len(items) > 0 {
		prime(ctx, loaders.For(ctx).User, r.DB.UsersByID, userID, optIDs(items, func(d *model.Device) *int64 { return d.UserID }))
	}
}

func (r *Resolver) prefetchCommands(ctx context.Context, items []*model.DeviceCommand, sel ast.SelectionSet) {
	fields := children(ctx, sel, "DeviceCommand")
	if len(fields) == 0 || len(items) == 0 {
		return
	}
	l := loaders.For(ctx)
	if s, ok := fields["device"]; ok {
		devices := prime(ctx, l.Device, r.DB.DevicesByID, deviceID, ids(items, func(c *model.DeviceCommand) int64 { return c.DeviceID }))
		r.prefetchDevices(ctx, devices, s)
	}
	if _, ok := fields["app"]; ok {
		prime(ctx, l.App, r.DB.AppsByID, appID, ids(items, func(c *model.DeviceCommand) int64 { return c.AppID }))
	}
	if s, ok := fields["assignment"]; ok {
		as := prime(ctx, l.Assignment, r.DB.AssignmentsByID, assignmentID, optIDs(items, func(c *model.DeviceCommand) *int64 { return c.AssignmentID }))
		r.prefetchAssignments(ctx, as, s)
	}
}

// prefetchAccountsOf primes the accounts of rows that point to one (sync runs, audit events).
func (r *Resolver) prefetchAccountsOf(ctx context.Context, typ string, accountIDs []int64, sel ast.SelectionSet) {
	if _, ok := children(ctx, sel, typ)["account"]; ok {
		prime(ctx, loaders.For(ctx).Account, r.DB.AccountsByID, accountID, accountIDs)
	}
}
