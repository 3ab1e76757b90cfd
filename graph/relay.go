package graph

import (
	"context"

	"orchard/model"
)

// PageInfo says where a page of a connection stands.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// Edge is an item of a connection with its cursor.
type Edge[T any] struct {
	Cursor string
	Node   *T
}

// Connection is a page of a Relay connection. TotalCount is computed only when a client asks
// for it, because counting a large filtered table costs more than reading a page of it.
type Connection[T any] struct {
	Edges    []*Edge[T]
	PageInfo *PageInfo
	// Count computes the total number of matching items; nil means len(Edges).
	Count func(ctx context.Context) (int, error)
}

// Nodes are the page's items without cursors.
func (c *Connection[T]) Nodes() []*T {
	out := make([]*T, len(c.Edges))
	for i, e := range c.Edges {
		out[i] = e.Node
	}
	return out
}

// TotalCount is the number of matching items in all pages.
func (c *Connection[T]) TotalCount(ctx context.Context) (int, error) {
	if c.Count == nil {
		return len(c.Edges), nil
	}
	return c.Count(ctx)
}

// The concrete connection and edge types the schema binds to.
type (
	AccountConnection           = Connection[model.Account]
	AccountEdge                 = Edge[model.Account]
	AppConnection               = Connection[model.App]
	AppEdge                     = Edge[model.App]
	LicensePoolConnection       = Connection[model.LicensePool]
	LicensePoolEdge             = Edge[model.LicensePool]
	LicenseAssignmentConnection = Connection[model.LicenseAssignment]
	LicenseAssignmentEdge       = Edge[model.LicenseAssignment]
	DeviceConnection            = Connection[model.Device]
	DeviceEdge                  = Edge[model.Device]
	DeviceAppConnection         = Connection[model.DeviceApp]
	DeviceAppEdge               = Edge[model.DeviceApp]
	UserConnection              = Connection[model.User]
	UserEdge                    = Edge[model.User]
	GroupConnection             = Connection[model.Group]
	GroupEdge                   = Edge[model.Group]
	AuditEventConnection        = Connection[model.AuditEvent]
	AuditEventEdge              = Edge[model.AuditEvent]
	SyncRunConnection           = Connection[model.SyncRun]
	SyncRunEdge                 = Edge[model.SyncRun]
	DeviceCommandConnection     = Connection[model.DeviceCommand]
	DeviceCommandEdge           = Edge[model.DeviceCommand]
	ApiKeyConnection            = Connection[model.APIKey]
	ApiKeyEdge                  = Edge[model.APIKey]
	LicenseLabelConnection      = Connection[model.Label]
	LicenseLabelEdge            = Edge[model.Label]
	WaitingHolderConnection     = Connection[model.PolicyWaiting]
	WaitingHolderEdge           = Edge[model.PolicyWaiting]
)

// Node is any object with a global id. The schema's Node interface binds to it; the executor
// tells the concrete types apart by their Go type, so domain types need no marker method.
type Node any
