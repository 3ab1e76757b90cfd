package model

import "time"

// ActorKind says what kind of actor caused an audited change.
type ActorKind string

const (
	ActorAPIKey ActorKind = "API_KEY"
	ActorRule   ActorKind = "RULE"   // a domain rule (R4b retirement, R4c inventory, labels)
	ActorSync   ActorKind = "SYNC"   // a reconcile pass or an Apple notification
	ActorSystem ActorKind = "SYSTEM" // start-up, the scheduler
)

// AuditEvent records who or what changed something, and why.
type AuditEvent struct {
	ID        int64 `gorm:"primaryKey"`
	At        time.Time
	ActorKind ActorKind
	// ActorID is e.g. the API key id; ActorName a readable name of the actor.
	ActorID   *string
	ActorName string
	// Action is a dotted verb, e.g. "license.assign", "account.health_changed".
	Action      string
	SubjectType string
	SubjectID   *int64
	AccountID   *int64
	Message     string
	// Details is JSON with the action's specifics.
	Details string
}
