package license

import (
	"strconv"

	"orchard/model"
)

// Actor is who or what asks for a change; every change is audited with its actor.
type Actor struct {
	Kind model.ActorKind
	// ID identifies the actor within its kind (an API key's id).
	ID string
	// Name is readable: an API key's name, a rule's name.
	Name string
	// Role is the authority of an API key actor.
	Role model.Role
}

// KeyActor is the actor of a request made with an API key.
func KeyActor(k *model.APIKey) Actor {
	return Actor{Kind: model.ActorAPIKey, ID: strconv.FormatInt(k.ID, 10), Name: k.Name, Role: k.Role}
}

// SystemActor is Orchard itself.
var SystemActor = Actor{Kind: model.ActorSystem, Name: "orchard"}

// String renders the actor for CausedBy fields, e.g. "api-key:12 (mdm-core)".
func (a Actor) String() string {
	switch a.Kind {
	case model.ActorAPIKey:
		return "api-key:" + a.ID + " (" + a.Name + ")"
	case model.ActorRule:
		return "rule:" + a.Name
	case model.ActorSync:
		return "sync"
	}
	return a.Name
}

func (a Actor) audit(e *model.AuditEvent) *model.AuditEvent {
	e.ActorKind = a.Kind
	if a.ID != "" {
		id := a.ID
		e.ActorID = &id
	}
	e.ActorName = a.Name
	return e
}

// RuleActor is a domain rule acting on its own (R4b retirement, R4c inventory, labels).
func RuleActor(name string) Actor { return Actor{Kind: model.ActorRule, Name: name} }
