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
		return nilOr(loaders.Load(ctx, l.AccountsByID, id))
	case typeApp:
		return nilOr(loaders.Load(ctx, l.AppsByID, id))
	case typePool:
		return nilOr(loaders.Load(ctx, l.PoolsByID, id))
	case typeAssignment:
		return nilOr(loaders.Load(ctx, l.AssignmentsByID, id))
	case typeDevice:
		return nilOr(loaders.Load(ctx, l.DevicesByID, id))
	case typeUser:
		return nilOr(loaders.Load(ctx, l.UsersByID, id))
	case typeGroup:
		return nilOr(loaders.Load(ctx, l.GroupsByID, id))
	case typeAuditEvent:
		return nilOr(loaders.Load(ctx, l.AuditEventsByID, id))
	case typeSyncRun:
		return nilOr(loaders.Load(ctx, l.SyncRunsByID, id))
	case typeDeviceCommand:
		return nilOr(loaders.Load(ctx, l.CommandsByID, id))
	case typeLicenseLabel:
		lb, err := loaders.Load(ctx, l.LabelsByID, id)
		if err != nil || lb == nil || lb.Kind != model.LabelLicense || lb.DeletedAt != nil {
			return nil, err
		}
		return lb, nil
	case typeAPIKey:
		if k := KeyFrom(ctx); k == nil || k.Role.Rank() < 3 {
			return nil, nil // API keys are visible to admins only
		}
		return nilOr(loaders.Load(ctx, l.APIKeysByID, id))
	}
	return nil, nil
}

func nilOr[T any](v *T, err error) (graph.Node, error) {
	if err != nil || v == nil {
		return nil, err
	}
	return v, nil
}
