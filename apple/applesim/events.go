package applesim

import (
	"math"
	"time"
)

// Asynchronous events (doc/apple-api.md §5.4–5.6, §6.3). A manage request that passes the
// synchronous validation is accepted with an eventId and stays PENDING for
// Options.EventDelay. Then the event is processed in one step under the token's lock: its
// changes to assets, assignments and users all carry one new version, and it becomes COMPLETE
// (every task succeeded) or FAILED (at least one failed; numCompleted counts successes only,
// failures are grouped by error number). Events are processed in the order they were
// accepted — by a timer, and before any request or Go call touches the token, so a client that
// reads event status COMPLETE also reads the changed data.

// event is one asynchronous request and, once done, its result.
type event struct {
	id, typ      string
	created, due time.Time
	numRequested int
	numCompleted int
	done         bool
	failures     []*failureGroup
	timer        *time.Timer

	// The request.
	assets   []assetKey
	users    []string
	serials  []string
	reqUsers []wireRequestUser

	// Successful items, for notifications.
	okAssignments []wireNotificationAssignment
	okUsers       []wireUser
}

// failureGroup collects the tasks that failed with one error number.
type failureGroup struct {
	number        int
	assets        []wireAsset
	users         []string
	serials       []string
	seenAssets    map[assetKey]bool
	seenUsers     map[string]bool
	seenSerials   map[string]bool
	assignments   []wireNotificationAssignment // asset events
	notifiedUsers []wireUser                   // user events
}

// group returns the failure group of an error number, creating it in first-failure order.
func (ev *event) group(number int) *failureGroup {
	for _, g := range ev.failures {
		if g.number == number {
			return g
		}
	}
	g := &failureGroup{number: number, seenAssets: map[assetKey]bool{}, seenUsers: map[string]bool{}, seenSerials: map[string]bool{}}
	ev.failures = append(ev.failures, g)
	return g
}

// failTask records a failed asset task (an asset and one target). As in Apple's example, the
// errorInfo of 9609 (user not registered) names only the users, not the assets.
func (ev *event) failTask(number int, k assetKey, serial, user string) {
	g := ev.group(number)
	if number != errUserNotFound && !g.seenAssets[k] {
		g.seenAssets[k] = true
		g.assets = append(g.assets, wireAsset{AdamID: k.adamID, PricingParam: k.pricing})
	}
	g.addTarget(serial, user)
	g.assignments = append(g.assignments, wireNotificationAssignment{AdamID: k.adamID, PricingParam: k.pricing, SerialNumber: serial, ClientUserID: user})
}

func (g *failureGroup) addTarget(serial, user string) {
	if serial != "" && !g.seenSerials[serial] {
		g.seenSerials[serial] = true
		g.serials = append(g.serials, serial)
	}
	if user != "" && !g.seenUsers[user] {
		g.seenUsers[user] = true
		g.users = append(g.users, user)
	}
}

func (ev *event) succeedTask(k assetKey, serial, user string) {
	ev.numCompleted++
	ev.okAssignments = append(ev.okAssignments, wireNotificationAssignment{AdamID: k.adamID, PricingParam: k.pricing, SerialNumber: serial, ClientUserID: user})
}

func (ev *event) state() string {
	switch {
	case !ev.done:
		return statusPending
	case len(ev.failures) > 0:
		return statusFailed
	}
	return statusComplete
}

// accept registers an event and answers the EventResponse.
func (c *call) accept(ev *event) {
	s, t := c.s, c.t
	ev.id = newUUID()
	ev.created = c.now
	ev.due = c.now.Add(s.opts.EventDelay)
	t.mu.Lock()
	t.events[ev.id] = ev
	t.pending = append(t.pending, ev)
	if len(t.pending) == 1 {
		t.nextDue.Store(ev.due.UnixNano())
	}
	if !s.closed.Load() {
		ev.timer = time.AfterFunc(s.opts.EventDelay, func() { s.settle(t) })
	}
	env := t.envelope(s, c.now)
	t.mu.Unlock()
	writeJSON(c.w, 200, wireEventResponse{EventID: ev.id, envelope: env})
}

// settle processes the token's due events and sends their notifications.
func (s *Sim) settle(t *token) {
	now := s.now()
	if t.nextDue.Load() > now.UnixNano() {
		return
	}
	t.mu.Lock()
	var out []*outgoing
	for len(t.pending) > 0 && !t.pending[0].due.After(now) {
		ev := t.pending[0]
		t.pending[0] = nil
		t.pending = t.pending[1:]
		out = append(out, t.process(s, ev)...)
	}
	if len(t.pending) > 0 {
		t.nextDue.Store(t.pending[0].due.UnixNano())
	} else {
		t.nextDue.Store(math.MaxInt64)
	}
	t.mu.Unlock()
	s.notifier.send(out...)
}

// process applies an event and returns its notifications. Callers hold t.mu.
func (t *token) process(s *Sim, ev *event) []*outgoing {
	v := t.bump()
	switch ev.typ {
	case eventAssociate, eventDisassociate:
		t.processAssets(s, ev, v)
	case eventRevoke:
		t.processRevoke(ev, v)
	case eventCreate, eventUpdate, eventRetire:
		t.processUsers(s, ev, v)
	}
	ev.done = true
	ev.timer = nil
	switch ev.typ {
	case eventCreate, eventUpdate, eventRetire:
		return t.userNotifications(s, ev)
	}
	return t.assetNotifications(s, ev)
}

// assetNotifications builds the ASSET_MANAGEMENT messages of a finished event: the successes
// in chunks of at most 100 assignments, then each error group, also chunked, with its error.
func (t *token) assetNotifications(s *Sim, ev *event) []*outgoing {
	var out []*outgoing
	if len(ev.okAssignments) > 0 || len(ev.failures) == 0 {
		for _, chunk := range splitItems(ev.okAssignments) {
			out = append(out, t.notification(s, notifAssetManagement, wireAssetManagementNotification{
				Type: ev.typ, Result: "SUCCESS", EventID: ev.id, Assignments: chunk})...)
		}
	}
	for _, g := range ev.failures {
		e := &wireError{ErrorNumber: g.number, ErrorMessage: errorMessage(g.number)}
		for _, chunk := range splitItems(g.assignments) {
			out = append(out, t.notification(s, notifAssetManagement, wireAssetManagementNotification{
				Type: ev.typ, Result: "FAILURE", EventID: ev.id, Assignments: chunk, Error: e})...)
		}
	}
	return out
}

// userNotifications builds the USER_MANAGEMENT messages of a finished user event.
func (t *token) userNotifications(s *Sim, ev *event) []*outgoing {
	var out []*outgoing
	if len(ev.okUsers) > 0 || len(ev.failures) == 0 {
		for _, chunk := range splitItems(ev.okUsers) {
			out = append(out, t.notification(s, notifUserManagement, wireUserManagementNotification{
				Type: ev.typ, Result: "SUCCESS", EventID: ev.id, Users: chunk})...)
		}
	}
	for _, g := range ev.failures {
		e := &wireError{ErrorNumber: g.number, ErrorMessage: errorMessage(g.number)}
		for _, chunk := range splitItems(g.notifiedUsers) {
			out = append(out, t.notification(s, notifUserManagement, wireUserManagementNotification{
				Type: ev.typ, Result: "FAILURE", EventID: ev.id, Users: chunk, Error: e})...)
		}
	}
	return out
}

// status serves GET /status?eventId=…; an unknown id (or another token's) is 9708.
func (c *call) status() {
	id := c.r.URL.Query().Get("eventId")
	t := c.t
	t.mu.RLock()
	ev := t.events[id]
	if ev == nil {
		t.mu.RUnlock()
		writeError(c.w, errEventNotFound, nil)
		return
	}
	resp := wireStatusResponse{EventStatus: ev.state(), EventType: ev.typ, NumRequested: ev.numRequested, envelope: t.envelope(c.s, c.now)}
	if ev.done {
		resp.NumCompleted = ev.numCompleted
		for _, g := range ev.failures {
			info := &wireErrorInfo{Assets: g.assets, ClientUserIDs: g.users, SerialNumbers: g.serials}
			resp.Failures = append(resp.Failures, wireError{ErrorNumber: g.number, ErrorMessage: errorMessage(g.number), ErrorInfo: info})
		}
	}
	t.mu.RUnlock()
	writeJSON(c.w, 200, resp)
}

// EventState is an event as the simulator sees it.
type EventState struct {
	ID, Type, Status           string
	NumRequested, NumCompleted int
	// Failures maps error numbers to the number of failed tasks.
	Failures map[int]int
}

// Event returns the state of an event of a token.
func (s *Sim) Event(tokenFile, eventID string) (EventState, bool) {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.RLock()
	defer t.mu.RUnlock()
	ev := t.events[eventID]
	if ev == nil {
		return EventState{}, false
	}
	st := EventState{ID: ev.id, Type: ev.typ, Status: ev.state(), NumRequested: ev.numRequested, NumCompleted: ev.numCompleted}
	for _, g := range ev.failures {
		if st.Failures == nil {
			st.Failures = map[int]int{}
		}
		st.Failures[g.number] = max(len(g.assignments), len(g.notifiedUsers))
	}
	return st, true
}
