package resolvers

import (
	"context"

	"orchard/graph"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// node fetches any object by global id through the loaders, so nodes(ids) batches.
func (r *Resolver) node(ctx context.Context, gid string, field ...string) (graph.Node, error) {
	typ, id, ok := parseGlobalID(gid)
	if !ok {
		return nil, badInput(field, "%s is not a valid id", fieldName(field))
	}
	l := loaders.For(ctx)
	// A typed nil inside the interface would not read as null, hence nilOr.
	switch typ {
	case typeAccount:
		return nilOr(loaders.Load(ctx, l.Account, id))
	case typeApp:
		return nilOr(loaders.Load(ctx, l.App, id))
	case typePool:
		return nilOr(loaders.Load(ctx, l.Pool, id))
	case typeAssignment:
		return nilOr(loaders.Load(ctx, l.Assignment, id))
	case typeDevice:
		return nilOr(loaders.Load(ctx, l.Device, id))
	case typeUser:
		return nilOr(loaders.Load(ctx, l.User, id))
	case typeGroup:
		return nilOr(loaders.Load(ctx, l.Group, id))
	case typeAuditEvent:
		return nilOr(loaders.Load(ctx, l.AuditEvent, id))
	case typeSyncRun:
		return nilOr(loaders.Load(ctx, l.SyncRun, id))
	case typeDeviceCommand:
		return nilOr(loaders.Load(ctx, l.Command, id))
	case typeLicenseLabel:
		l, err := loaders.Load(ctx, loaders.For(ctx).Label, id)
		if err != nil || l == nil || l.Kind != model.LabelLicense || l.DeletedAt != nil {
			return nil, err
		}
		return l, nil
	case typeAPIKey:
		if k := KeyFrom(ctx); k == nil || k.Role.Rank() < 3 {
			return nil, nil // API keys are visible to admins only
		}
		return nilOr(loaders.Load(ctx, l.APIKey, id))
	}
	return nil, nil
}

func nilOr[T any](v *T, err error) (graph.Node, error) {
	if err != nil || v == nil {
		return nil, err
	}
	return v, nil
}
