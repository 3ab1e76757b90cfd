package resolvers

import (
	"context"
	"errors"

	"orchard/graph"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// nested resolves a nested connection through its page and count loaders.
func nested[T any](ctx context.Context, pages *loaders.Loader[loaders.ChildKey, *loaders.Children[T]], counts *loaders.Loader[loaders.ChildKey, int],
	parent int64, first *int, after *string, filter string, id func(*T) int64) (*graph.Connection[T], error) {
	p, err := pageArgs(first, after)
	if err != nil {
		return nil, err
	}
	ch, err := loaders.Load(ctx, pages, loaders.ChildKey{Parent: parent, First: p.First, After: p.After, Filter: filter})
	if err != nil {
		return nil, err
	}
	count := func(ctx context.Context) (int, error) {
		return loaders.Load(ctx, counts, loaders.ChildKey{Parent: parent, Filter: filter})
	}
	return connection(ch.Items, ch.More, p, id, count), nil
}

// ref loads an optional reference (a nullable foreign key).
func ref[T any](ctx context.Context, l *loaders.Loader[int64, *T], id *int64) (*T, error) {
	if id == nil {
		return nil, nil
	}
	return loaders.Load(ctx, l, *id)
}

// must loads a required reference; a dangling one is an internal error, not a null.
func must[T any](ctx context.Context, l *loaders.Loader[int64, *T], id int64, what string) (*T, error) {
	v, err := loaders.Load(ctx, l, id)
	if err == nil && v == nil {
		return nil, &danglingError{what: what, id: id}
	}
	return v, err
}

type danglingError struct {
	what string
	id   int64
}

func (e *danglingError) Error() string {
	return "dangling reference to " + e.what + " " + itoa(e.id)
}

// Id getters for cursors.
func accountID(v *model.Account) int64              { return v.ID }
func appID(v *model.App) int64                      { return v.ID }
func poolID(v *model.LicensePool) int64             { return v.ID }
func assignmentID(v *model.LicenseAssignment) int64 { return v.ID }
func deviceID(v *model.Device) int64                { return v.ID }
func deviceAppID(v *model.DeviceApp) int64          { return v.ID }
func userID(v *model.User) int64                    { return v.ID }
func groupID(v *model.Group) int64                  { return v.ID }
func auditEventID(v *model.AuditEvent) int64        { return v.ID }
func syncRunID(v *model.SyncRun) int64              { return v.ID }
func commandID(v *model.DeviceCommand) int64        { return v.ID }
func apiKeyID(v *model.APIKey) int64                { return v.ID }

// orNil turns a not-found lookup into a null answer.
func orNil[T any](v *T, err error) (*T, error) {
	if errors.Is(err, model.ErrNotFound) {
		return nil, nil
	}
	return v, err
}
