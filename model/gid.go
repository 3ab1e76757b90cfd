package model

import (
	"encoding/base64"
	"strconv"
)

// GlobalID is a node's opaque global id as the API shows it: base64url of "<Type>:<number>".
// It lives beside the entities (rather than with the resolvers' other Relay helpers) so that
// the GraphQL id field binds to a plain method: a field with a resolver costs a goroutine per
// object, and a page of a hundred objects has a hundred ids.
func GlobalID(typ string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(typ + ":" + strconv.FormatInt(id, 10)))
}

// NodeID methods give each node type its global id.

func (a *Account) NodeID() string           { return GlobalID("Account", a.ID) }
func (a *App) NodeID() string               { return GlobalID("App", a.ID) }
func (p *LicensePool) NodeID() string       { return GlobalID("LicensePool", p.ID) }
func (a *LicenseAssignment) NodeID() string { return GlobalID("LicenseAssignment", a.ID) }
func (d *Device) NodeID() string            { return GlobalID("Device", d.ID) }
func (u *User) NodeID() string              { return GlobalID("User", u.ID) }
func (g *Group) NodeID() string             { return GlobalID("Group", g.ID) }
func (e *AuditEvent) NodeID() string        { return GlobalID("AuditEvent", e.ID) }
func (r *SyncRun) NodeID() string           { return GlobalID("SyncRun", r.ID) }
func (c *DeviceCommand) NodeID() string     { return GlobalID("DeviceCommand", c.ID) }
func (k *APIKey) NodeID() string            { return GlobalID("ApiKey", k.ID) }
