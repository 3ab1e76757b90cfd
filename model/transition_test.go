package model

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the transition list in assignment.go from the table")

// TestTransitions walks the whole machine: every event in every state, against the expected
// table written out again by hand, so a change of the table is a change of this test too.
func TestTransitions(t *testing.T) {
	type row struct {
		ev                 AssignmentEvent
		from, to           AssignmentState
		assigned, reserved int64
		effects            TransitionEffect
	}
	want := []row{
		{EventAssociateConfirmed, StatePending, StateAssigned, 1, -1, EffectStampAssigned | EffectReleaseCommands},
		{EventAssociateConfirmed, StatePendingReclaim, StateReclaiming, 1, -1, EffectStampAssigned | EffectQueueDisassociate},
		{EventAssociateRefused, StatePending, StateFailed, 0, -1, EffectReleaseHolder | EffectRecordError},
		{EventAssociateRefused, StatePendingReclaim, StateFailed, 0, -1, EffectReleaseHolder | EffectRecordError},
		{EventAssociateCancelled, StatePending, StateFailed, 0, -1, EffectReleaseHolder | EffectRecordError},
		{EventAssociateCancelled, StatePendingReclaim, StateFailed, 0, -1, EffectReleaseHolder | EffectRecordError},
		{EventReclaimAsked, StatePending, StatePendingReclaim, 0, 0, EffectRecordReclaim},
		{EventReclaimAsked, StatePendingReclaim, StatePendingReclaim, 0, 0, EffectRecordReclaim},
		{EventReclaimAsked, StateAssigned, StateReclaiming, 0, 0, EffectRecordReclaim | EffectQueueDisassociate},
		{EventReclaimUnsent, StatePending, StateReclaimed, 0, -1, EffectReleaseHolder | EffectRecordReclaim | EffectStampReclaimed},
		{EventReclaimUnsent, StatePendingReclaim, StateReclaimed, 0, -1, EffectReleaseHolder | EffectRecordReclaim | EffectStampReclaimed},
		{EventReclaimConfirmed, StateReclaiming, StateReclaimed, -1, 0, EffectReleaseHolder | EffectStampReclaimed},
		{EventReclaimRefused, StateReclaiming, StateAssigned, 0, 0, EffectRecordError},
		{EventReclaimCancelled, StateReclaiming, StateAssigned, 0, 0, EffectClearReclaim},
		{EventFoundAtApple, StatePending, StateAssigned, 1, -1, EffectStampAssigned | EffectReleaseCommands},
		{EventFoundAtApple, StatePendingReclaim, StateReclaiming, 1, -1, EffectStampAssigned | EffectQueueDisassociate},
		{EventGoneAtApple, StateAssigned, StateRemovedAtApple, -1, 0, EffectReleaseHolder | EffectStampRemoved | EffectRecordReclaim},
		{EventGoneAtApple, StateReclaiming, StateReclaimed, -1, 0, EffectReleaseHolder | EffectStampReclaimed},
	}
	type key struct {
		ev   AssignmentEvent
		from AssignmentState
	}
	byKey := map[key]row{}
	for _, r := range want {
		byKey[key{r.ev, r.from}] = r
	}
	for _, ev := range AssignmentEvents {
		for _, from := range AssignmentStates {
			t.Run(string(ev)+"/"+from.String(), func(t *testing.T) {
				w, wantOK := byKey[key{ev, from}]
				step, ok := LookupTransition(ev, from)
				if ok != wantOK {
					t.Fatalf("LookupTransition(%s, %s) ok = %v, want %v", ev, from, ok, wantOK)
				}
				_, err := Transition(ev, from)
				if ok == (err != nil) {
					t.Fatalf("Transition(%s, %s) err = %v with ok = %v", ev, from, err, ok)
				}
				if !ok {
					return
				}
				got := row{ev, from, step.To, step.Assigned, step.Reserved, step.Effects}
				if diff := cmp.Diff(w, got, cmp.AllowUnexported(row{})); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
	if len(Transitions) != len(want) {
		t.Errorf("the table has %d transitions, the test %d", len(Transitions), len(want))
	}
}

// TestTransitionInvariants checks each transition against the rules the pool counters and the
// holder slot follow, so that no row of the table can break them: Assigned counts the
// licenses held at Apple, Reserved those on their way, and only an active assignment holds
// its (pool, holder) slot.
func TestTransitionInvariants(t *testing.T) {
	held := func(s AssignmentState) int64 {
		if s.Status.HeldAtApple() {
			return 1
		}
		return 0
	}
	pending := func(s AssignmentState) int64 {
		if s.Status == AssignmentPending {
			return 1
		}
		return 0
	}
	for k, step := range Transitions {
		if got, want := step.Assigned, held(step.To)-held(k.From); got != want {
			t.Errorf("%s in %s: assigned delta %+d, the states say %+d", k.Event, k.From, got, want)
		}
		if got, want := step.Reserved, pending(step.To)-pending(k.From); got != want {
			t.Errorf("%s in %s: reserved delta %+d, the states say %+d", k.Event, k.From, got, want)
		}
		if !k.From.Status.Active() {
			t.Errorf("%s leaves %s, which is final", k.Event, k.From)
		}
		if got, want := step.Effects.Has(EffectReleaseHolder), !step.To.Status.Active(); got != want {
			t.Errorf("%s in %s to %s: releases the holder = %v, want %v", k.Event, k.From, step.To, got, want)
		}
		if step.Effects.Has(EffectQueueDisassociate) != (step.To == StateReclaiming && k.From != StateReclaiming) {
			t.Errorf("%s in %s to %s: a disassociate is queued exactly on entering RECLAIMING", k.Event, k.From, step.To)
		}
		if step.Effects.Has(EffectRecordReclaim) && step.Effects.Has(EffectClearReclaim) {
			t.Errorf("%s in %s: records and clears the reclaim", k.Event, k.From)
		}
		if step.To.ReclaimAsked && step.To.Status != AssignmentPending {
			t.Errorf("%s in %s: only a PENDING state waits with a reclaim", k.Event, k.From)
		}
	}
}

// TestStateOf: only a PENDING assignment waits with a reclaim.
func TestStateOf(t *testing.T) {
	reason := "asked back"
	tests := []struct {
		status AssignmentStatus
		reason *string
		want   AssignmentState
	}{
		{AssignmentPending, nil, StatePending},
		{AssignmentPending, &reason, StatePendingReclaim},
		{AssignmentAssigned, &reason, StateAssigned}, // Apple refused its reclaim; the reason stays on record
		{AssignmentReclaiming, &reason, StateReclaiming},
		{AssignmentReclaimed, &reason, StateReclaimed},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, StateOf(tt.status, tt.reason)); diff != "" {
			t.Errorf("StateOf(%s, %v) mismatch (-want +got):\n%s", tt.status, tt.reason != nil, diff)
		}
	}
}

// TestOutboxItemNeeded: a queued associate or disassociate is sent only while Apple's
// confirmation of it would still move its assignment.
func TestOutboxItemNeeded(t *testing.T) {
	tests := []struct {
		action OutboxAction
		state  AssignmentState
		want   bool
	}{
		{OutboxAssociate, StatePending, true},
		{OutboxAssociate, StatePendingReclaim, true},
		{OutboxAssociate, StateAssigned, false}, // a sync found it first
		{OutboxAssociate, StateReclaiming, false},
		{OutboxAssociate, StateReclaimed, false}, // cancelled before it was sent
		{OutboxAssociate, StateFailed, false},
		{OutboxDisassociate, StateReclaiming, true},
		{OutboxDisassociate, StateAssigned, false}, // the reclaim was cancelled
		{OutboxDisassociate, StateRemovedAtApple, false},
		{OutboxDisassociate, StateReclaimed, false},
		{OutboxRevoke, StateAssigned, true},
		{OutboxCreateUser, StateFailed, true},
	}
	for _, tt := range tests {
		if got := OutboxItemNeeded(tt.action, tt.state); got != tt.want {
			t.Errorf("OutboxItemNeeded(%s, %s) = %v, want %v", tt.action, tt.state, got, tt.want)
		}
	}
}

// TestTransitionDiagram: the list of transitions in AssignmentStatus's doc comment is the
// table's. With -update it is rewritten from the table.
func TestTransitionDiagram(t *testing.T) {
	const file = "assignment.go"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	end := -1
	for i, l := range lines {
		if l == "type AssignmentStatus string" {
			end = i
			break
		}
	}
	if end < 0 {
		t.Fatalf("%s: no type AssignmentStatus", file)
	}
	start := end
	for start > 0 && strings.HasPrefix(lines[start-1], "//\t") {
		start--
	}
	var want []string
	for _, l := range TransitionList() {
		want = append(want, strings.TrimRight("//\t"+l, " "))
	}
	got := lines[start:end]
	if *update {
		out := append(append(append([]string{}, lines[:start]...), want...), lines[end:]...)
		if err := os.WriteFile(file, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the transition list in %s's doc comment is not the table's; run go test ./model/ -run TestTransitionDiagram -update\nmismatch (-want +got):\n%s", file, diff)
	}
}

// TestFreesLicense: a transition gives a license back to its pool exactly when its
// assignment leaves the active statuses, whichever event moved it.
func TestFreesLicense(t *testing.T) {
	var got, want []string
	for k, step := range Transitions {
		tr := AppliedTransition{Event: k.Event, From: k.From.Status, To: step.To.Status}
		if tr.FreesLicense() {
			got = append(got, string(k.Event)+" "+k.From.String())
		}
		if step.Assigned+step.Reserved < 0 {
			want = append(want, string(k.Event)+" "+k.From.String())
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
