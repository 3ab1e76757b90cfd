package resolvers

import (
	"context"

	"orchard/graph"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// Helpers of the policy resolvers (policy.resolvers.go): thin translations between GraphQL
// inputs and the domain's policy operations in package license.

const typeLicenseLabel = "LicenseLabel"

func labelID(v *model.Label) int64 { return v.ID }

// decodeIDs decodes a list of global ids of one type.
func decodeIDs(gids []string, typ string, field ...string) ([]int64, error) {
	out := make([]int64, 0, len(gids))
	for i, g := range gids {
		id, err := decodeID(g, typ, append(field[:len(field):len(field)], itoa(int64(i)))...)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// labelGroups loads a label's groups through the loaders, together (LoadMany).
func labelGroups(ctx context.Context, labelID int64) ([]*model.Group, error) {
	l := loaders.For(ctx)
	ids, err := loaders.Load(ctx, l.LabelGroupIDs, labelID)
	if err != nil {
		return nil, err
	}
	return present(loaders.LoadMany(ctx, l.GroupsByID, ids))
}

// present drops the rows a loader found none for (a dangling reference is left out).
func present[T any](rows []*T, err error) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(rows))
	for _, r := range rows {
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// waitingOfLabel answers a page of a label's waiting holders through the loaders. The fair
// order is by time, not id, so the cursor is a position in that order (the page's After an
// offset), not an id as in the other connections.
func waitingOfLabel(ctx context.Context, labelID int64, first *int, after *string) (*graph.Connection[model.PolicyWaiting], error) {
	p, err := pageArgs(first, after)
	if err != nil {
		return nil, err
	}
	l := loaders.For(ctx)
	ch, err := loaders.Load(ctx, l.WaitingByLabel, loaders.ChildKey{Parent: labelID, First: p.First, After: p.After})
	if err != nil {
		return nil, err
	}
	pos := make(map[*model.PolicyWaiting]int64, len(ch.Items))
	for i, w := range ch.Items {
		pos[w] = p.After + int64(i) + 1
	}
	count := func(ctx context.Context) (int, error) {
		return loaders.Load(ctx, loaders.For(ctx).CountWaitingByLabel, loaders.ChildKey{Parent: labelID})
	}
	return connection(ch.Items, ch.More, p, func(w *model.PolicyWaiting) int64 { return pos[w] }, count), nil
}

// groupMembers runs one of the membership mutations.
func (r *mutationResolver) groupMembers(ctx context.Context, input graph.GroupMembersInput, op license.MembersOp) (*graph.GroupMembersPayload, error) {
	fail := func(err error) (*graph.GroupMembersPayload, error) {
		ue, err := refusal(err)
		return &graph.GroupMembersPayload{UserErrors: ue}, err
	}
	if (input.GroupID == nil) == (input.GroupExternalID == nil) {
		return fail(model.FieldError([]string{"input"}, "give exactly one of groupId and groupExternalId"))
	}
	gid, err := optional(input.GroupID, typeGroup, "input", "groupId")
	if err != nil {
		return fail(err)
	}
	refs := make([]license.MemberRef, len(input.Members))
	for i, m := range input.Members {
		field := []string{"input", "members", itoa(int64(i))}
		n := 0
		for _, set := range []bool{m.UserID != nil, m.ExternalID != nil, m.DeviceID != nil, m.SerialNumber != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fail(model.FieldError(field, "give exactly one of userId, externalId, deviceId and serialNumber"))
		}
		if refs[i].UserID, err = optional(m.UserID, typeUser, append(field, "userId")...); err != nil {
			return fail(err)
		}
		if refs[i].DeviceID, err = optional(m.DeviceID, typeDevice, append(field, "deviceId")...); err != nil {
			return fail(err)
		}
		refs[i].ExternalID, refs[i].SerialNumber = strOr(m.ExternalID), strOr(m.SerialNumber)
	}
	res, err := r.License.ChangeGroupMembers(ctx, actor(ctx), gid, strOr(input.GroupExternalID), op, refs)
	if err != nil {
		return fail(err)
	}
	ue := res.Errors
	if ue == nil {
		ue = []*model.Error{}
	}
	return &graph.GroupMembersPayload{Group: res.Group, Added: res.Added, Removed: res.Removed, UserErrors: ue}, nil
}

// labelChange carries out (or, dryRun, previews) a label change and answers with the label and
// what the change does: the real change is evaluated once, with the change, and answers with
// what that evaluation did; a dry run answers with the same evaluation rolled back.
func (r *mutationResolver) labelChange(ctx context.Context, ch license.LabelChange, dryRun bool) (*graph.LicenseLabelPayload, error) {
	if !dryRun {
		// The change and its evaluation, once: the answer is what was done.
		l, res, err := r.License.ChangeLicenseLabel(ctx, actor(ctx), ch)
		if err != nil {
			return labelRefusal(err)
		}
		out := &graph.LicenseLabelPayload{Label: l, UserErrors: []*model.Error{}}
		if out.Preview, err = r.preview(ctx, res, true); err != nil {
			return nil, err
		}
		return out, nil
	}
	res, err := r.License.PreviewLicenseLabel(ctx, actor(ctx), ch)
	if err != nil {
		return labelRefusal(err)
	}
	out := &graph.LicenseLabelPayload{UserErrors: []*model.Error{}}
	if out.Preview, err = r.preview(ctx, res, true); err != nil {
		return nil, err
	}
	var l *model.Label
	switch {
	case ch.DeleteID != 0:
		l, err = r.DB.LabelByID(ctx, ch.DeleteID)
	case ch.Label.ID != 0:
		l, err = r.DB.LabelByID(ctx, ch.Label.ID)
	}
	if err != nil {
		return labelRefusal(err)
	}
	out.Label = l
	return out, nil
}

// labelRefusal answers a label mutation that did nothing: the refusal as user errors, or the
// error itself when it is not the client's (see refusal).
func labelRefusal(err error) (*graph.LicenseLabelPayload, error) {
	ue, err := refusal(err)
	return &graph.LicenseLabelPayload{UserErrors: ue}, err
}

// labelFields maps the fields createLicenseLabel and updateLicenseLabel share — groups,
// accounts in priority order, cap, grace — onto in. An absent field stays nil: an update
// leaves it as it is.
func labelFields(in *license.LicenseLabelInput, groupIDs, accountIDs []string, capCount, graceSeconds *int) error {
	if groupIDs != nil {
		groups, err := decodeIDs(groupIDs, typeGroup, "input", "groupIds")
		if err != nil {
			return err
		}
		in.GroupIDs = &groups
	}
	if accountIDs != nil {
		accounts, err := decodeIDs(accountIDs, typeAccount, "input", "accountIds")
		if err != nil {
			return err
		}
		in.AccountIDs = &accounts
	}
	if capCount != nil {
		c := int64(*capCount)
		in.Cap = &c
	}
	if graceSeconds != nil {
		g := int64(*graceSeconds)
		in.GraceSeconds = &g
	}
	return nil
}

// maxPreviewItems bounds the lists of a preview.
const maxPreviewItems = 100

// preview renders an evaluation's result; with counts, per account.
func (r *Resolver) preview(ctx context.Context, res *license.EvalResult, counts bool) (*graph.PolicyPreview, error) {
	pv := &graph.PolicyPreview{AssignCount: len(res.Assigned), ReclaimCount: len(res.Reclaimed), RelabelCount: res.Relabelled, KeptCount: res.Kept,
		WaitingCount: len(res.Waiting), InstallCommands: res.InstallCommands,
		Accounts: []*graph.PolicyAccountCounts{}, Assignments: []*graph.PolicyChange{}, Reclaims: []*graph.PolicyChange{}, Waiting: []*model.PolicyWaiting{}}
	l := loaders.For(ctx)
	change := func(labelID int64, kind model.LicenseKind, deviceID, userID, accountID, assignmentID int64, reason string) (*graph.PolicyChange, error) {
		c := &graph.PolicyChange{Kind: kind, Reason: reason}
		var err error
		if c.Label, err = loaders.Load(ctx, l.LabelsByID, labelID); err != nil {
			return nil, err
		}
		if deviceID != 0 {
			if c.Device, err = loaders.Load(ctx, l.DevicesByID, deviceID); err != nil {
				return nil, err
			}
		}
		if userID != 0 {
			if c.User, err = loaders.Load(ctx, l.UsersByID, userID); err != nil {
				return nil, err
			}
		}
		if accountID != 0 {
			if c.Account, err = loaders.Load(ctx, l.AccountsByID, accountID); err != nil {
				return nil, err
			}
		}
		if assignmentID != 0 {
			if c.Assignment, err = loaders.Load(ctx, l.AssignmentsByID, assignmentID); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	per := map[int64]*graph.PolicyAccountCounts{}
	var order []int64
	tally := func(accountID int64, assign, reclaim int) error {
		if !counts || accountID == 0 {
			return nil
		}
		p := per[accountID]
		if p == nil {
			a, err := loaders.Load(ctx, l.AccountsByID, accountID)
			if err != nil || a == nil {
				return err
			}
			p = &graph.PolicyAccountCounts{Account: a}
			per[accountID] = p
			order = append(order, accountID)
		}
		p.Assign += assign
		p.Reclaim += reclaim
		return nil
	}
	for i, a := range res.Assigned {
		if err := tally(a.AccountID, 1, 0); err != nil {
			return nil, err
		}
		if i < maxPreviewItems {
			// Previewed assignments were rolled back: their ids name nothing (or, reused, another row).
			c, err := change(a.LabelID, a.Kind, a.DeviceID, a.UserID, a.AccountID, 0, a.Reason)
			if err != nil {
				return nil, err
			}
			pv.Assignments = append(pv.Assignments, c)
		}
	}
	for i, a := range res.Reclaimed {
		if err := tally(a.AccountID, 0, 1); err != nil {
			return nil, err
		}
		if i < maxPreviewItems {
			c, err := change(a.LabelID, a.Kind, a.DeviceID, a.UserID, a.AccountID, a.AssignmentID, a.Reason)
			if err != nil {
				return nil, err
			}
			pv.Reclaims = append(pv.Reclaims, c)
		}
	}
	for _, id := range order {
		pv.Accounts = append(pv.Accounts, per[id])
	}
	for i, w := range res.Waiting {
		if i == maxPreviewItems {
			break
		}
		pv.Waiting = append(pv.Waiting, w)
	}
	return pv, nil
}
