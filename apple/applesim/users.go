package applesim

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/mail"
	"slices"
	"strings"
)

// Users (doc/apple-api.md §6). A clientUserId has at most one active row (Registered or
// Associated) and any number of Retired rows; the listing shows all rows in creation order.
// Registration with a managedAppleId associates the user at once; otherwise the user is
// Registered with an inviteCode until the invitation is accepted (AssociateUser, or the
// invitation URL from service config, which points at the control API).

// userRow is one row of the users listing.
type userRow struct {
	clientUserID, email, managedAppleID, idHash, inviteCode, status string
	version                                                         uint64
}

type userLogEntry struct {
	version uint64
	row     *userRow
}

type userStore struct {
	rows      []*userRow
	byID      map[string][]*userRow
	active    map[string]*userRow
	byAppleID map[string]*userRow // managedAppleId → active row
	log       []userLogEntry
	version   uint64
	views     viewCache[*userRow]
}

func (st *userStore) init() {
	st.byID = make(map[string][]*userRow)
	st.active = make(map[string]*userRow)
	st.byAppleID = make(map[string]*userRow)
}

// current returns the active row of a clientUserId, else its newest row.
func (st *userStore) current(id string) *userRow {
	if r := st.active[id]; r != nil {
		return r
	}
	if rows := st.byID[id]; len(rows) > 0 {
		return rows[len(rows)-1]
	}
	return nil
}

// touch records a change of a row at version v.
func (st *userStore) touch(r *userRow, v uint64) {
	r.version = v
	st.log = append(st.log, userLogEntry{v, r})
	st.version = v
}

// idHash derives the stable hash Apple shows for an associated Apple Account.
func idHash(uid, account string) string {
	sum := sha1.Sum([]byte(uid + "/" + account))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newUserRow registers a user: Associated at once with a managedAppleId, else Registered.
// Callers hold t.mu and have checked there is no active row.
func (t *token) newUserRow(s *Sim, clientUserID, email, managedAppleID string, v uint64) *userRow {
	st := &t.users
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", t.uid, clientUserID, len(st.byID[clientUserID])))
	r := &userRow{clientUserID: clientUserID, email: email, inviteCode: hex.EncodeToString(sum[:16]), status: userRegistered}
	if managedAppleID != "" {
		r.managedAppleID, r.status, r.idHash = managedAppleID, userAssociated, idHash(t.uid, managedAppleID)
		st.byAppleID[managedAppleID] = r
	}
	st.rows = append(st.rows, r)
	st.byID[clientUserID] = append(st.byID[clientUserID], r)
	st.active[clientUserID] = r
	st.touch(r, v)
	s.inviteMu.Lock()
	s.invites[r.inviteCode] = inviteRef{t: t, clientUserID: clientUserID}
	s.inviteMu.Unlock()
	return r
}

// associate links an Apple Account to a Registered row (the invitation was accepted).
func (t *token) associate(r *userRow, account string, v uint64) {
	if account == "" {
		account = r.clientUserID + "@appleid.example"
	}
	r.status, r.managedAppleID, r.idHash = userAssociated, account, idHash(t.uid, account)
	t.users.byAppleID[account] = r
	t.users.touch(r, v)
}

// retire retires a row and releases the user's revocable licenses (doc/apple-api.md §15); books
// stay assigned to the retired user.
func (t *token) retire(r *userRow, v uint64) {
	st := &t.users
	r.status = userRetired
	delete(st.active, r.clientUserID)
	if r.managedAppleID != "" && st.byAppleID[r.managedAppleID] == r {
		delete(st.byAppleID, r.managedAppleID)
	}
	st.touch(r, v)
	released := false
	for _, a := range slices.SortedFunc(slices.Values(t.assigns.byUser[r.clientUserID]), cmpAssign) {
		asset := t.assets.byKey[assetKey{a.adamID, a.pricing}]
		if asset == nil || !asset.meta.Revocable {
			continue
		}
		t.assigns.remove(a, v)
		asset.assigned--
		released = true
	}
	if released {
		t.assets.version = v
	}
}

func (r *userRow) wire() wireUser {
	return wireUser{ClientUserID: r.clientUserID, Email: r.email, IDHash: r.idHash, InviteCode: r.inviteCode, Status: r.status}
}

// inviteRef locates the user of an invitation code.
type inviteRef struct {
	t            *token
	clientUserID string
}

// AddUser registers a user as if created through users/create (no event, no notification):
// Associated when managedAppleID is set, else Registered. An active user of that clientUserId
// is updated instead.
func (s *Sim) AddUser(tokenFile string, clientUserID, email, managedAppleID string) {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.bump()
	if r := t.users.active[clientUserID]; r != nil {
		r.email = email
		if managedAppleID != "" && r.managedAppleID != managedAppleID {
			t.associate(r, managedAppleID, v)
		} else {
			t.users.touch(r, v)
		}
		return
	}
	t.newUserRow(s, clientUserID, email, managedAppleID, v)
}

// AssociateUser makes a Registered user Associated, as when the user accepts the invitation,
// and sends USER_ASSOCIATED if subscribed. An Associated user is left as is.
func (s *Sim) AssociateUser(tokenFile, clientUserID string) error {
	t, err := s.findToken(tokenFile)
	if err != nil {
		return err
	}
	return s.associateUser(t, clientUserID)
}

func (s *Sim) associateUser(t *token, clientUserID string) error {
	s.settle(t)
	t.mu.Lock()
	r := t.users.active[clientUserID]
	if r == nil {
		t.mu.Unlock()
		return fmt.Errorf("applesim: no registered user %q", clientUserID)
	}
	if r.status == userAssociated {
		t.mu.Unlock()
		return nil
	}
	t.associate(r, "", t.bump())
	out := t.notification(s, notifUserAssociated, wireUserAssociatedNotification{AssociatedUsers: []wireUser{r.wire()}})
	t.mu.Unlock()
	s.notifier.send(out...)
	return nil
}

// User returns the status of a user's current row (its active row, else its newest).
func (s *Sim) User(tokenFile, clientUserID string) (status string, ok bool) {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.RLock()
	defer t.mu.RUnlock()
	if r := t.users.current(clientUserID); r != nil {
		return r.status, true
	}
	return "", false
}

// UserState is one row of a token's users.
type UserState struct {
	ClientUserID   string `json:"clientUserId"`
	Email          string `json:"email,omitempty"`
	ManagedAppleID string `json:"managedAppleId,omitempty"`
	IDHash         string `json:"idHash,omitempty"`
	InviteCode     string `json:"inviteCode,omitempty"`
	Status         string `json:"status"`
}

// Users returns all user rows of a token in creation order (retired rows included).
func (s *Sim) Users(tokenFile string) []UserState {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]UserState, len(t.users.rows))
	for i, r := range t.users.rows {
		out[i] = UserState{r.clientUserID, r.email, r.managedAppleID, r.idHash, r.inviteCode, r.status}
	}
	return out
}

// userFilter is the query of GET /users.
type userFilter struct {
	clientUserID            string
	activeOnly, retiredOnly bool
	since                   uint64
	hasSince                bool
}

func (f userFilter) key() string {
	return fmt.Sprintf("%q %v %v %v %d", f.clientUserID, f.activeOnly, f.retiredOnly, f.hasSince, f.since)
}

func (t *token) userView(f userFilter) []*userRow {
	st := &t.users
	var base []*userRow
	switch {
	case f.hasSince:
		i, _ := slices.BinarySearchFunc(st.log, f.since+1, func(e userLogEntry, v uint64) int { return cmp.Compare(e.version, v) })
		for _, e := range st.log[i:] {
			if e.row.version == e.version {
				base = append(base, e.row)
			}
		}
	case f.clientUserID != "":
		base = st.byID[f.clientUserID]
	default:
		base = st.rows
	}
	if f.clientUserID == "" && !f.activeOnly && !f.retiredOnly {
		return slices.Clip(base)
	}
	var out []*userRow
	for _, r := range base {
		active := r.status == userRegistered || r.status == userAssociated
		switch {
		case f.clientUserID != "" && r.clientUserID != f.clientUserID,
			f.activeOnly && !active,
			f.retiredOnly && r.status != userRetired:
			continue
		}
		out = append(out, r)
	}
	return out
}

// getUsers serves GET /users with clientUserId, activeOnly, retiredOnly, sinceVersionId
// (9721) and pagination (9650).
func (c *call) getUsers() {
	q := c.r.URL.Query()
	page, ok := queryPageIndex(q)
	if !ok {
		writeError(c.w, errBadPageIndex, nil)
		return
	}
	f := userFilter{clientUserID: q.Get("clientUserId")}
	var ok1, ok2 bool
	f.activeOnly, _, ok1 = queryBool(q, "activeOnly")
	f.retiredOnly, _, ok2 = queryBool(q, "retiredOnly")
	if !ok1 || !ok2 {
		writeError(c.w, errInvalidArgument, nil)
		return
	}
	t := c.t
	if sv := q.Get("sinceVersionId"); sv != "" {
		v, ok := parseVersion(t.uid, setUsers, sv)
		t.mu.RLock()
		ok = ok && v <= t.users.version
		t.mu.RUnlock()
		if !ok {
			writeError(c.w, errInvalidVersionID, nil)
			return
		}
		f.since, f.hasSince = v, true
	}
	key := f.key()
	t.mu.RLock()
	view, cached := t.users.views.get(t.users.version, 0, key)
	if !cached {
		view = t.userView(f)
		t.users.views.put(t.users.version, 0, key, view)
	}
	lo, hi, p, ok := pageSpan(len(view), c.s.opts.PageSize, page)
	if !ok {
		t.mu.RUnlock()
		writeError(c.w, errBadPageIndex, nil)
		return
	}
	p.VersionID = renderVersion(t.uid, setUsers, t.users.version)
	resp := wireUsersPage{Users: make([]wireUser, 0, hi-lo), wirePage: p, envelope: t.envelope(c.s, c.now)}
	for _, r := range view[lo:hi] {
		resp.Users = append(resp.Users, r.wire())
	}
	t.mu.RUnlock()
	writeJSON(c.w, 200, resp)
}

func (c *call) createUsers() { c.manageUsers(eventCreate) }
func (c *call) updateUsers() { c.manageUsers(eventUpdate) }
func (c *call) retireUsers() { c.manageUsers(eventRetire) }

// validEmail accepts a bare addr-spec such as "a@b.example".
func validEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && a.Name == "" && strings.Contains(e[strings.LastIndexByte(e, '@'):], ".")
}

// manageUsers validates users/create, users/update and users/retire: users present (9720),
// at most maxUsers (9714), no duplicate clientUserId (9715), valid emails (9717).
func (c *call) manageUsers(typ string) {
	var req wireManageUsersRequest
	present, ok := c.decodeBody(&req)
	if !ok {
		return
	}
	if !present || len(req.Users) == 0 {
		writeError(c.w, errNoUsers, nil)
		return
	}
	ids := make([]string, len(req.Users))
	for i, u := range req.Users {
		if u.ClientUserID == "" {
			writeError(c.w, errInvalidArgument, nil)
			return
		}
		ids[i] = u.ClientUserID
	}
	uniq, dups := uniqueStrings(ids)
	switch {
	case len(uniq) > c.s.Limits().MaxUsers:
		writeError(c.w, errTooManyUsers, nil)
		return
	case len(dups) > 0:
		writeError(c.w, errDuplicateUsers, &wireErrorInfo{ClientUserIDs: dups})
		return
	}
	if typ != eventRetire {
		var bad []string
		for _, u := range req.Users {
			if u.Email != "" && !validEmail(u.Email) {
				bad = append(bad, u.ClientUserID)
			}
		}
		if len(bad) > 0 {
			writeError(c.w, errInvalidEmail, &wireErrorInfo{ClientUserIDs: bad})
			return
		}
	}
	c.accept(&event{typ: typ, reqUsers: req.Users, numRequested: len(req.Users)})
}

// failUser records a failed user task.
func (ev *event) failUser(number int, u wireRequestUser) {
	g := ev.group(number)
	g.addTarget("", u.ClientUserID)
	g.notifiedUsers = append(g.notifiedUsers, wireUser{ClientUserID: u.ClientUserID, Email: u.Email})
}

// processUsers runs a user event. Create: 9716 if the clientUserId has an active row, 9641 if
// the managedAppleId belongs to another active user. Update: 9609 without an active row;
// sets the email and, if given, the managedAppleId (associating the user). Retire: 9609
// without an active row; releases the user's revocable licenses.
func (t *token) processUsers(s *Sim, ev *event, v uint64) {
	st := &t.users
	for _, u := range ev.reqUsers {
		r := st.active[u.ClientUserID]
		switch ev.typ {
		case eventCreate:
			if r != nil {
				ev.failUser(errUserAlreadyExists, u)
				continue
			}
			if other := st.byAppleID[u.ManagedAppleID]; u.ManagedAppleID != "" && other != nil {
				ev.failUser(errAccountAlreadyLinked, u)
				continue
			}
			r = t.newUserRow(s, u.ClientUserID, u.Email, u.ManagedAppleID, v)
		case eventUpdate:
			if r == nil {
				ev.failUser(errUserNotFound, u)
				continue
			}
			if other := st.byAppleID[u.ManagedAppleID]; u.ManagedAppleID != "" && other != nil && other != r {
				ev.failUser(errAccountAlreadyLinked, u)
				continue
			}
			if u.Email != "" {
				r.email = u.Email
			}
			if u.ManagedAppleID != "" && u.ManagedAppleID != r.managedAppleID {
				if r.managedAppleID != "" {
					delete(st.byAppleID, r.managedAppleID)
				}
				t.associate(r, u.ManagedAppleID, v)
			} else {
				st.touch(r, v)
			}
		case eventRetire:
			if r == nil {
				ev.failUser(errUserNotFound, u)
				continue
			}
			t.retire(r, v)
		}
		ev.numCompleted++
		ev.okUsers = append(ev.okUsers, r.wire())
	}
}
