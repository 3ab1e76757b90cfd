package license

import (
	"strconv"
	"strings"

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
		if strings.HasPrefix(a.ID, "label:") {
			return a.ID // a license label: "label:4", as assignments' causedBy names it
		}
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

// LabelActor is a license label acting through policy evaluation: its assignments and reclaims
// are caused by "label:<id>".
func LabelActor(l *model.Label) Actor {
	return Actor{Kind: model.ActorRule, ID: "label:" + strconv.FormatInt(l.ID, 10), Name: "label " + l.Name}
}
