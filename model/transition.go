package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The assignment state machine, as one table. Every change of an assignment's status, and the
// move of its pool's counters that goes with it, is a row of Transitions: db applies the table
// (db.ApplyTransitions) and decides nothing on its own, license and the scheduler only name
// the event. The table is the source of the list in AssignmentStatus's doc comment
// (TestTransitionDiagram renders it and compares).

// AssignmentEvent is something that happens to an assignment: Apple's answer to a call, a
// request of the API, what a sync or a notification finds at Apple.
type AssignmentEvent string

const (
	// EventAssociateConfirmed: Apple confirmed the associate (its event completed, or the
	// outcome came by notification).
	EventAssociateConfirmed AssignmentEvent = "ASSOCIATE_CONFIRMED"
	// EventAssociateRefused: Apple refused the associate, or the user it was for could not be
	// registered; the reservation is released.
	EventAssociateRefused AssignmentEvent = "ASSOCIATE_REFUSED"
	// EventAssociateCancelled: the associate was still queued when its account's work was
	// cancelled (the account was removed); it never reached Apple.
	EventAssociateCancelled AssignmentEvent = "ASSOCIATE_CANCELLED"
	// EventReclaimAsked: an API call (or the removal of an account) asks for the license back.
	// A PENDING one whose associate may have reached Apple is only marked: it goes on to its
	// reclaim once Apple confirms it (an accepted reclaim is never dropped).
	EventReclaimAsked AssignmentEvent = "RECLAIM_ASKED"
	// EventReclaimUnsent: the license was asked back while its associate had never been sent
	// (the caller cancelled that associate): the reservation is simply released.
	EventReclaimUnsent AssignmentEvent = "RECLAIM_UNSENT"
	// EventReclaimConfirmed: Apple confirmed the disassociate (or revoke).
	EventReclaimConfirmed AssignmentEvent = "RECLAIM_CONFIRMED"
	// EventReclaimRefused: Apple refused to take the license back; it stays with its holder.
	EventReclaimRefused AssignmentEvent = "RECLAIM_REFUSED"
	// EventReclaimCancelled: the disassociate was still queued when its account's work was
	// cancelled; the license stays where it is.
	EventReclaimCancelled AssignmentEvent = "RECLAIM_CANCELLED"
	// EventFoundAtApple: a sync or a notification finds at Apple a license Orchard was still
	// waiting to hear about: the associate went through.
	EventFoundAtApple AssignmentEvent = "FOUND_AT_APPLE"
	// EventGoneAtApple: a full pass no longer finds a license at Apple, or a notification says
	// it was taken away: drift for an ASSIGNED one, the end of a RECLAIMING one's reclaim.
	EventGoneAtApple AssignmentEvent = "GONE_AT_APPLE"
)

// AssignmentEvents lists every event, in the order of the table.
var AssignmentEvents = []AssignmentEvent{
	EventAssociateConfirmed, EventAssociateRefused, EventAssociateCancelled,
	EventReclaimAsked, EventReclaimUnsent, EventReclaimConfirmed, EventReclaimRefused, EventReclaimCancelled,
	EventFoundAtApple, EventGoneAtApple,
}

// AssignmentState is a state of the machine: a status, and for a PENDING assignment whether a
// reclaim was asked while it was on its way to Apple (its reclaim reason is set). The two
// PENDING states answer Apple's confirmation differently.
type AssignmentState struct {
	Status       AssignmentStatus
	ReclaimAsked bool
}

// StateOf returns the state of an assignment with this status and reclaim reason. Only a
// PENDING assignment can wait with a reclaim: an ASSIGNED one whose reclaim Apple refused
// keeps its reason for the record but is plainly ASSIGNED.
func StateOf(status AssignmentStatus, reclaimReason *string) AssignmentState {
	return AssignmentState{Status: status, ReclaimAsked: status == AssignmentPending && reclaimReason != nil}
}

// The states of the machine.
var (
	StatePending        = AssignmentState{Status: AssignmentPending}
	StatePendingReclaim = AssignmentState{Status: AssignmentPending, ReclaimAsked: true}
	StateAssigned       = AssignmentState{Status: AssignmentAssigned}
	StateReclaiming     = AssignmentState{Status: AssignmentReclaiming}
	StateReclaimed      = AssignmentState{Status: AssignmentReclaimed}
	StateFailed         = AssignmentState{Status: AssignmentFailed}
	StateRemovedAtApple = AssignmentState{Status: AssignmentRemovedAtApple}
)

// AssignmentStates lists every state, in the order of their life.
var AssignmentStates = []AssignmentState{
	StatePending, StatePendingReclaim, StateAssigned, StateReclaiming, StateReclaimed, StateFailed, StateRemovedAtApple,
}

func (s AssignmentState) String() string {
	if s.ReclaimAsked {
		return string(s.Status) + "+RECLAIM"
	}
	return string(s.Status)
}

// TransitionEffect is something an applied transition does besides setting the status.
type TransitionEffect uint16

const (
	// EffectReleaseHolder clears the holder key, freeing the (pool, holder) slot for a new
	// assignment (every move to an inactive status).
	EffectReleaseHolder TransitionEffect = 1 << iota
	// EffectStampAssigned records when Apple confirmed the license (assigned_at).
	EffectStampAssigned
	// EffectStampReclaimed records when the license came back (reclaimed_at).
	EffectStampReclaimed
	// EffectStampRemoved records when the license was found gone at Apple (removed_at_apple_at).
	EffectStampRemoved
	// EffectRecordReclaim records why and by whom the license is taken back.
	EffectRecordReclaim
	// EffectClearReclaim forgets a reclaim that will not happen.
	EffectClearReclaim
	// EffectRecordError records Apple's refusal (error number and message).
	EffectRecordError
	// EffectQueueDisassociate queues the disassociate that takes the license back at Apple.
	EffectQueueDisassociate
	// EffectReleaseCommands lets the device commands that waited for Apple's confirmation
	// ("install only after Apple confirms") go.
	EffectReleaseCommands
)

var effectNames = []string{"release holder", "stamp assigned", "stamp reclaimed", "stamp removed",
	"record reclaim", "clear reclaim", "record error", "queue disassociate", "release commands"}

// Has reports whether e includes every effect of f.
func (e TransitionEffect) Has(f TransitionEffect) bool { return e&f == f }

func (e TransitionEffect) String() string {
	var parts []string
	for i, name := range effectNames {
		if e&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, ", ")
}

// TransitionStep is what an event does to an assignment in a state: its next state, how its
// pool's counters move (Assigned counts licenses held at Apple — ASSIGNED and RECLAIMING —,
// Reserved those on their way there — PENDING), and the effects that go with it. Apple's own
// assigned count of the pool moves with Assigned, where the caller applies Apple's counts.
type TransitionStep struct {
	To                 AssignmentState
	Assigned, Reserved int64
	Effects            TransitionEffect
}

// TransitionKey is a row's key in the table.
type TransitionKey struct {
	Event AssignmentEvent
	From  AssignmentState
}

const (
	confirmEffects = EffectStampAssigned | EffectReleaseCommands
	// A license reclaimed on its way to Apple goes on to its reclaim as soon as Apple holds it.
	confirmReclaimEffects = EffectStampAssigned | EffectQueueDisassociate
	refuseEffects         = EffectReleaseHolder | EffectRecordError
	unsentEffects         = EffectReleaseHolder | EffectRecordReclaim | EffectStampReclaimed
)

// Transitions is the assignment state machine. An event in a state not listed changes
// nothing: Apple's answer to a call that is no longer wanted (a confirmation of an associate
// already found by a sync, a refusal of a disassociate already cancelled), a reclaim of a
// license already on its way back.
var Transitions = map[TransitionKey]TransitionStep{
	{EventAssociateConfirmed, StatePending}:        {StateAssigned, +1, -1, confirmEffects},
	{EventAssociateConfirmed, StatePendingReclaim}: {StateReclaiming, +1, -1, confirmReclaimEffects},
	{EventAssociateRefused, StatePending}:          {StateFailed, 0, -1, refuseEffects},
	{EventAssociateRefused, StatePendingReclaim}:   {StateFailed, 0, -1, refuseEffects},
	{EventAssociateCancelled, StatePending}:        {StateFailed, 0, -1, refuseEffects},
	{EventAssociateCancelled, StatePendingReclaim}: {StateFailed, 0, -1, refuseEffects},

	{EventReclaimAsked, StateAssigned}:        {StateReclaiming, 0, 0, EffectRecordReclaim | EffectQueueDisassociate},
	{EventReclaimAsked, StatePending}:         {StatePendingReclaim, 0, 0, EffectRecordReclaim},
	{EventReclaimAsked, StatePendingReclaim}:  {StatePendingReclaim, 0, 0, EffectRecordReclaim},
	{EventReclaimUnsent, StatePending}:        {StateReclaimed, 0, -1, unsentEffects},
	{EventReclaimUnsent, StatePendingReclaim}: {StateReclaimed, 0, -1, unsentEffects},
	{EventReclaimConfirmed, StateReclaiming}:  {StateReclaimed, -1, 0, EffectReleaseHolder | EffectStampReclaimed},
	{EventReclaimRefused, StateReclaiming}:    {StateAssigned, 0, 0, EffectRecordError},
	{EventReclaimCancelled, StateReclaiming}:  {StateAssigned, 0, 0, EffectClearReclaim},

	{EventFoundAtApple, StatePending}:        {StateAssigned, +1, -1, confirmEffects},
	{EventFoundAtApple, StatePendingReclaim}: {StateReclaiming, +1, -1, confirmReclaimEffects},
	{EventGoneAtApple, StateAssigned}:        {StateRemovedAtApple, -1, 0, EffectReleaseHolder | EffectStampRemoved | EffectRecordReclaim},
	{EventGoneAtApple, StateReclaiming}:      {StateReclaimed, -1, 0, EffectReleaseHolder | EffectStampReclaimed},
}

// LookupTransition returns what ev does to an assignment in state from; ok is false when
// the table has no such transition (the event changes nothing).
func LookupTransition(ev AssignmentEvent, from AssignmentState) (step TransitionStep, ok bool) {
	step, ok = Transitions[TransitionKey{ev, from}]
	return step, ok
}

// EventSources returns the statuses an event moves assignments out of, in the order of
// AssignmentStates (for a query that selects the rows an event may apply to).
func EventSources(ev AssignmentEvent) []AssignmentStatus {
	var out []AssignmentStatus
	for _, s := range AssignmentStates {
		if _, ok := LookupTransition(ev, s); ok && !slices.Contains(out, s.Status) {
			out = append(out, s.Status)
		}
	}
	return out
}

// ErrNoTransition is returned by Transition for an event that does not apply in a state.
var ErrNoTransition = errors.New("no such transition")

// Transition is LookupTransition for callers that must have the transition: it returns an
// error wrapping ErrNoTransition when the table has none.
func Transition(ev AssignmentEvent, from AssignmentState) (TransitionStep, error) {
	step, ok := LookupTransition(ev, from)
	if !ok {
		return TransitionStep{}, fmt.Errorf("%s in state %s: %w", ev, from, ErrNoTransition)
	}
	return step, nil
}

// OutboxItemNeeded reports whether a queued associate or disassociate is still wanted by its
// assignment: whether Apple's confirmation of it would move the assignment. Sending one that
// is not would undo what happened since (an associate re-sent after a crash must not reach
// Apple after the license was reclaimed). Other actions (a revoke, a registration) are always
// needed.
func OutboxItemNeeded(action OutboxAction, s AssignmentState) bool {
	switch action {
	case OutboxAssociate:
		_, ok := LookupTransition(EventAssociateConfirmed, s)
		return ok
	case OutboxDisassociate:
		_, ok := LookupTransition(EventReclaimConfirmed, s)
		return ok
	}
	return true
}

// HeldAtApple reports whether an assignment in this status holds a license at Apple (the
// pool's Assigned counter counts it).
func (s AssignmentStatus) HeldAtApple() bool {
	return s == AssignmentAssigned || s == AssignmentReclaiming
}

// AppliedTransition is one transition db applied, as reported to the observers registered
// with db.OnTransitions: enough for license (and the policy engine) to react to a FAILED or
// RECLAIMED assignment, or a pool that gained licenses, without reading db's internals.
type AppliedTransition struct {
	AssignmentID, PoolID, AccountID, AppID int64
	Kind                                   LicenseKind
	DeviceID, UserID                       *int64
	Origin                                 AssignmentOrigin
	Event                                  AssignmentEvent
	From, To                               AssignmentStatus
}

// FreesLicense reports whether the transition gave a license back to its pool: the
// assignment held or reserved one and no longer does (FAILED, RECLAIMED, REMOVED_AT_APPLE).
func (t AppliedTransition) FreesLicense() bool { return t.From.Active() && !t.To.Active() }

// TransitionList renders the table as the list in AssignmentStatus's doc comment: one line per
// transition, grouped by the state it leaves, in the order of AssignmentStates and
// AssignmentEvents.
func TransitionList() []string {
	var out []string
	w := 0
	for _, ev := range AssignmentEvents {
		w = max(w, len(ev))
	}
	tw := 0
	for _, s := range AssignmentStates {
		tw = max(tw, len(s.String()))
	}
	for _, from := range AssignmentStates {
		var lines []string
		for _, ev := range AssignmentEvents {
			step, ok := LookupTransition(ev, from)
			if !ok {
				continue
			}
			line := fmt.Sprintf("  %-*s ──▶ %-*s  assigned %+d, reserved %+d", w, ev, tw, step.To, step.Assigned, step.Reserved)
			if step.Effects != 0 {
				line += "; " + step.Effects.String()
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			out = append(out, from.String()+" (final)")
			continue
		}
		out = append(out, from.String())
		out = append(out, lines...)
	}
	return slices.Clip(out)
}
