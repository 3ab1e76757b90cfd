package applesim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// assignKey identifies an assignment: asset and exactly one target, a device (serial) or a
// user (clientUserId). v2 has no license ids (doc/apple-api.md §5.3).
type assignKey struct{ adamID, pricing, serial, user string }

// assignRec is an assignment. Removed records stay referenced by the change log so that a
// delta can report them (Options.DeltaReportsRemovals).
type assignRec struct {
	assignKey
	version uint64 // token write counter at its last change (creation or removal)
	removed bool
}

type assignLogEntry struct {
	version uint64
	rec     *assignRec
}

// assignmentStore keeps a token's assignments so that any page costs O(page size):
//
//   - byKey, bySerial and byUser index the live assignments;
//   - sorted is the full listing in (adamId, pricingParam, serialNumber, clientUserId) order.
//     Writes do not touch it: additions collect in added and removals only mark records, and
//     the next read merges them in O(n + k log k);
//   - log lists every change in version order, the change log behind sinceVersionId;
//   - views caches filtered listings for the current version, so that paging through a
//     filtered or delta listing computes it once.
type assignmentStore struct {
	byKey    map[assignKey]*assignRec
	bySerial map[string][]*assignRec
	byUser   map[string][]*assignRec
	sorted   []*assignRec
	added    []*assignRec
	dirty    bool
	log      []assignLogEntry
	version  uint64
	views    viewCache[*assignRec]
}

func (st *assignmentStore) init() {
	st.byKey = make(map[assignKey]*assignRec)
	st.bySerial = make(map[string][]*assignRec)
	st.byUser = make(map[string][]*assignRec)
}

func cmpAssign(a, b *assignRec) int {
	return cmp.Or(cmpAdamID(a.adamID, b.adamID), strings.Compare(a.pricing, b.pricing),
		strings.Compare(a.serial, b.serial), strings.Compare(a.user, b.user))
}

// add records a new assignment at version v. Callers hold t.mu and have checked that the key
// is not live.
func (st *assignmentStore) add(k assignKey, v uint64) *assignRec {
	r := &assignRec{assignKey: k, version: v}
	st.insert(r)
	return r
}

// insert indexes a record created elsewhere (the generator allocates them in bulk).
func (st *assignmentStore) insert(r *assignRec) {
	st.byKey[r.assignKey] = r
	if r.serial != "" {
		st.bySerial[r.serial] = append(st.bySerial[r.serial], r)
	} else {
		st.byUser[r.user] = append(st.byUser[r.user], r)
	}
	st.added = append(st.added, r)
	st.dirty = true
	st.log = append(st.log, assignLogEntry{r.version, r})
	st.version = max(st.version, r.version)
}

// remove removes a live assignment at version v.
func (st *assignmentStore) remove(r *assignRec, v uint64) {
	delete(st.byKey, r.assignKey)
	if r.serial != "" {
		st.bySerial[r.serial] = deleteRec(st.bySerial[r.serial], r)
		if len(st.bySerial[r.serial]) == 0 {
			delete(st.bySerial, r.serial)
		}
	} else {
		st.byUser[r.user] = deleteRec(st.byUser[r.user], r)
		if len(st.byUser[r.user]) == 0 {
			delete(st.byUser, r.user)
		}
	}
	r.removed, r.version = true, v
	st.dirty = true
	st.log = append(st.log, assignLogEntry{v, r})
	st.version = v
}

func deleteRec(list []*assignRec, r *assignRec) []*assignRec {
	if i := slices.Index(list, r); i >= 0 {
		last := len(list) - 1
		list[i] = list[last]
		list[last] = nil
		list = list[:last]
	}
	return list
}

// ensureSorted merges pending additions and drops removed records. Callers hold t.mu for
// writing. A new slice is built, so views taken from the old one stay valid.
func (st *assignmentStore) ensureSorted() {
	if !st.dirty {
		return
	}
	add := st.added
	if !slices.IsSortedFunc(add, cmpAssign) {
		slices.SortFunc(add, cmpAssign)
	}
	out := make([]*assignRec, 0, len(st.byKey))
	i, j := 0, 0
	for i < len(st.sorted) || j < len(add) {
		var r *assignRec
		if j >= len(add) || (i < len(st.sorted) && cmpAssign(st.sorted[i], add[j]) <= 0) {
			r = st.sorted[i]
			i++
		} else {
			r = add[j]
			j++
		}
		if !r.removed {
			out = append(out, r)
		}
	}
	st.sorted, st.added, st.dirty = out, nil, false
}

// viewCache caches computed listings for one (data set version, users version) pair.
type viewCache[T any] struct {
	mu       sync.Mutex // views are looked up under t.mu's read lock by concurrent readers
	version  uint64
	uversion uint64
	views    map[string][]T
}

func (c *viewCache[T]) get(version, uversion uint64, key string) ([]T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil || c.version != version || c.uversion != uversion {
		return nil, false
	}
	v, ok := c.views[key]
	return v, ok
}

func (c *viewCache[T]) put(version, uversion uint64, key string, v []T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil || c.version != version || c.uversion != uversion || len(c.views) >= 64 {
		c.views = make(map[string][]T)
		c.version, c.uversion = version, uversion
	}
	c.views[key] = v
}

// assignFilter is the query of GET /assignments (doc/apple-api.md §5.3).
type assignFilter struct {
	adamID, pricing, serial, user string
	since                         uint64
	hasSince                      bool
	excludeInactive               bool
}

func (f assignFilter) key() string {
	return fmt.Sprintf("%q %q %q %q %v %d %v", f.adamID, f.pricing, f.serial, f.user, f.hasSince, f.since, f.excludeInactive)
}

// view computes the listing for a filter. Callers hold t.mu for writing (ensureSorted).
// A delta (sinceVersionId) lists the records whose last change is newer than the version, in
// change order; removed ones only with reportRemovals.
func (t *token) assignmentView(f assignFilter, reportRemovals bool) []*assignRec {
	st := &t.assigns
	st.ensureSorted()
	var base []*assignRec
	needAdam, needSerial, needUser := f.adamID != "", f.serial != "", f.user != ""
	switch {
	case f.hasSince:
		i, _ := slices.BinarySearchFunc(st.log, f.since+1, func(e assignLogEntry, v uint64) int { return cmp.Compare(e.version, v) })
		for _, e := range st.log[i:] {
			if e.rec.version == e.version && (!e.rec.removed || reportRemovals) {
				base = append(base, e.rec)
			}
		}
	case needSerial:
		base = slices.SortedFunc(slices.Values(st.bySerial[f.serial]), cmpAssign)
		needSerial = false
	case needUser:
		base = slices.SortedFunc(slices.Values(st.byUser[f.user]), cmpAssign)
		needUser = false
	case needAdam:
		lo, _ := slices.BinarySearchFunc(st.sorted, f.adamID, func(r *assignRec, id string) int { return cmpAdamID(r.adamID, id) })
		hi := lo
		for hi < len(st.sorted) && st.sorted[hi].adamID == f.adamID {
			hi++
		}
		base = st.sorted[lo:hi:hi]
		needAdam = false
	default:
		base = st.sorted
	}
	if !needAdam && !needSerial && !needUser && f.pricing == "" && !f.excludeInactive {
		return base
	}
	out := make([]*assignRec, 0, len(base))
	for _, r := range base {
		switch {
		case needAdam && r.adamID != f.adamID,
			needSerial && r.serial != f.serial,
			needUser && r.user != f.user,
			f.pricing != "" && r.pricing != f.pricing,
			f.excludeInactive && r.user != "" && t.users.active[r.user] == nil:
			continue
		}
		out = append(out, r)
	}
	return out
}

// bufPool recycles response buffers of assignment pages.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

// getAssignments serves GET /assignments with filters, sinceVersionId (9721 for an unknown
// version), pagination (9650) and includeUserState. The page is encoded by hand from the
// cached listing, under the token's read lock when the listing is cached.
func (c *call) getAssignments() {
	q := c.r.URL.Query()
	page, ok := queryPageIndex(q)
	if !ok {
		writeError(c.w, errBadPageIndex, nil)
		return
	}
	f := assignFilter{adamID: q.Get("adamId"), pricing: q.Get("pricingParam"), serial: q.Get("serialNumber"), user: q.Get("clientUserId")}
	includeState, _, ok1 := queryBool(q, "includeUserState")
	exclude, _, ok2 := queryBool(q, "excludeInactiveUsers")
	if !ok1 || !ok2 || (f.pricing != "" && f.pricing != "STDQ" && f.pricing != "PLUS") {
		writeError(c.w, errInvalidArgument, nil)
		return
	}
	f.excludeInactive = exclude
	t := c.t
	if sv := q.Get("sinceVersionId"); sv != "" {
		v, ok := parseVersion(t.uid, setAssignments, sv)
		t.mu.RLock()
		ok = ok && v <= t.assigns.version
		t.mu.RUnlock()
		if !ok {
			writeError(c.w, errInvalidVersionID, nil)
			return
		}
		f.since, f.hasSince = v, true
	}
	key := f.key()
	removals := c.s.opts.DeltaReportsRemovals

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var b []byte
	status := 0
	t.mu.RLock()
	view, cached := t.assigns.views.get(t.assigns.version, t.users.version, key)
	if cached && !t.assigns.dirty {
		b, status = c.encodeAssignments((*bp)[:0], view, page, includeState)
		t.mu.RUnlock()
	} else {
		t.mu.RUnlock()
		t.mu.Lock()
		view = t.assignmentView(f, removals)
		t.assigns.views.put(t.assigns.version, t.users.version, key, view)
		b, status = c.encodeAssignments((*bp)[:0], view, page, includeState)
		t.mu.Unlock()
	}
	if status != 0 {
		writeError(c.w, status, nil)
		return
	}
	*bp = b
	writeRaw(c.w, 200, b)
}

// encodeAssignments appends page `page` of view as a GetAssignmentsResponse. It returns an
// error number instead when the page is out of range. Callers hold t.mu.
func (c *call) encodeAssignments(b []byte, view []*assignRec, page int, includeState bool) ([]byte, int) {
	t := c.t
	lo, hi, p, ok := pageSpan(len(view), c.s.opts.PageSize, page)
	if !ok {
		return b, errBadPageIndex
	}
	p.VersionID = renderVersion(t.uid, setAssignments, t.assigns.version)
	b = append(b, `{"assignments":[`...)
	for i, r := range view[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(append(b, '{'), true, "adamId", r.adamID)
		b = appendField(b, false, "pricingParam", r.pricing)
		if r.serial != "" {
			b = appendField(b, false, "serialNumber", r.serial)
		} else {
			b = appendField(b, false, "clientUserId", r.user)
			if includeState {
				if u := t.users.current(r.user); u != nil {
					b = appendField(b, false, "userStatus", u.status)
					if u.idHash != "" {
						b = appendField(b, false, "idHash", u.idHash)
					}
				}
			}
		}
		if r.removed {
			b = append(b, `,"removed":true`...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	return appendPageAndEnvelope(b, p, t.envelope(c.s, c.now)), 0
}

// Assignment is one current assignment, to a device (SerialNumber) or a user (ClientUserID).
type Assignment struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam"`
	SerialNumber string `json:"serialNumber,omitempty"`
	ClientUserID string `json:"clientUserId,omitempty"`
}

// Assignments returns a token's current assignments in (adamId, pricingParam, serialNumber,
// clientUserId) order, after processing due events.
func (s *Sim) Assignments(tokenFile string) []Assignment {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.assigns.ensureSorted()
	out := make([]Assignment, len(t.assigns.sorted))
	for i, r := range t.assigns.sorted {
		out[i] = Assignment{r.adamID, r.pricing, r.serial, r.user}
	}
	return out
}

// AddAssignment assigns a license as if done in Apple Business Manager or by another tool:
// exactly one of serialNumber and clientUserID, an owned asset with a free license, a device
// only for a device-assignable asset, a user only if registered. An existing assignment is
// left as is. It sends an ASSET_MANAGEMENT notification if subscribed.
func (s *Sim) AddAssignment(tokenFile, adamID, serialNumber, clientUserID string) error {
	return s.changeAssignment(tokenFile, adamID, serialNumber, clientUserID, true)
}

// RemoveAssignment removes an assignment as if removed in Apple Business Manager: the license
// becomes available again, and an ASSET_MANAGEMENT notification (DISASSOCIATE) goes out if
// subscribed.
func (s *Sim) RemoveAssignment(tokenFile, adamID, serialNumber, clientUserID string) error {
	return s.changeAssignment(tokenFile, adamID, serialNumber, clientUserID, false)
}

func (s *Sim) changeAssignment(tokenFile, adamID, serial, user string, add bool) error {
	t, err := s.findToken(tokenFile)
	if err != nil {
		return err
	}
	if (serial == "") == (user == "") {
		return fmt.Errorf("applesim: an assignment needs exactly one of serial number and clientUserId")
	}
	s.settle(t)
	t.mu.Lock()
	out, err := t.changeAssignmentLocked(s, adamID, serial, user, add)
	t.mu.Unlock()
	s.notifier.send(out...)
	return err
}

func (t *token) changeAssignmentLocked(s *Sim, adamID, serial, user string, add bool) ([]*outgoing, error) {
	a := t.assets.find(adamID, "")
	if a == nil {
		return nil, fmt.Errorf("applesim: asset %s not owned by this token", adamID)
	}
	k := assignKey{adamID: a.meta.AdamID, pricing: a.meta.PricingParam, serial: serial, user: user}
	typ := eventAssociate
	if add {
		switch {
		case t.assigns.byKey[k] != nil:
			return nil, nil
		case serial != "" && !a.meta.DeviceAssignable:
			return nil, fmt.Errorf("applesim: asset %s is not device-assignable", adamID)
		case user != "" && t.users.active[user] == nil:
			return nil, fmt.Errorf("applesim: user %q is not registered", user)
		case !a.canAssign():
			return nil, fmt.Errorf("applesim: no license of %s available", adamID)
		}
		v := t.bump()
		t.assigns.add(k, v)
		a.assigned++
		t.assets.version = v
	} else {
		r := t.assigns.byKey[k]
		if r == nil {
			return nil, fmt.Errorf("applesim: %s is not assigned to %s%s", adamID, serial, user)
		}
		v := t.bump()
		t.assigns.remove(r, v)
		a.assigned--
		t.assets.version = v
		typ = eventDisassociate
	}
	// Apple's side records the change as a completed event of its own, so the eventId of the
	// notification can be looked up with /status like any other.
	ev := &event{id: newUUID(), typ: typ, numRequested: 1, numCompleted: 1, done: true}
	t.events[ev.id] = ev
	return t.notification(s, notifAssetManagement, wireAssetManagementNotification{
		Type: typ, Result: "SUCCESS", EventID: ev.id,
		Assignments: []wireNotificationAssignment{{AdamID: k.adamID, PricingParam: k.pricing, SerialNumber: serial, ClientUserID: user}},
	}), nil
}
