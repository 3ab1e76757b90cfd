package db_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestInsertAudit fills in the time and empty details ("{}") of an event; InsertAudits does
// the same for a batch, and an empty batch writes nothing.
func TestInsertAudit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := &model.AuditEvent{ActorKind: model.ActorSystem, ActorName: "test", Action: "test.one", SubjectType: "Account", Message: "one"}
		mustDo(t, d.InsertAudit(bg(), e))
		if e.At.IsZero() || e.Details != "{}" {
			t.Errorf("defaults not filled: at %v details %q", e.At, e.Details)
		}
		at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		batch := []*model.AuditEvent{
			{At: at, ActorKind: model.ActorRule, Action: "test.two", SubjectType: "Account", Details: `{"n":2}`},
			{ActorKind: model.ActorSync, Action: "test.three", SubjectType: "Account"},
		}
		mustDo(t, d.InsertAudits(bg(), batch))
		var sc db.StatementCounter
		mustDo(t, d.InsertAudits(db.WithStatementCounter(bg(), &sc), nil))
		if sc.Count() != 0 {
			t.Errorf("an empty batch ran %d statements", sc.Count())
		}
		got, err := d.AuditEventsByID(bg(), []int64{e.ID, batch[0].ID, batch[1].ID})
		mustDo(t, err)
		type row struct {
			Action, Details string
			At              bool // the stored time equals the written one
		}
		want := map[string]row{"test.one": {"test.one", "{}", true}, "test.two": {"test.two", `{"n":2}`, true}, "test.three": {"test.three", "{}", true}}
		gotRows := map[string]row{}
		written := map[int64]time.Time{e.ID: e.At, batch[0].ID: at, batch[1].ID: batch[1].At}
		for _, g := range got {
			gotRows[g.Action] = row{g.Action, g.Details, g.At.Equal(written[g.ID])}
		}
		if diff := cmp.Diff(want, gotRows); diff != "" {
			t.Errorf("audit events mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestListAuditEvents filters by account, subject, action, actor and time, newest first when
// asked, and counts the same set.
func TestListAuditEvents(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a1, a2 := seedAccount(t, d).ID, seedAccount(t, d).ID
		subject := int64(7)
		old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		recent := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		events := []*model.AuditEvent{
			{At: old, AccountID: &a1, ActorKind: model.ActorSystem, Action: "account.add", SubjectType: "Account", SubjectID: &a1},
			{At: recent, AccountID: &a1, ActorKind: model.ActorRule, Action: "license.assign", SubjectType: "Device", SubjectID: &subject},
			{At: recent, AccountID: &a2, ActorKind: model.ActorSync, Action: "license.assign", SubjectType: "Device", SubjectID: &subject},
			{At: old, ActorKind: model.ActorSystem, Action: "server.start", SubjectType: "Server"},
		}
		mustDo(t, d.InsertAudits(bg(), events))
		ids := idsOf(events, auditID)
		since := recent.Add(-time.Hour)
		tests := []struct {
			name string
			f    db.AuditFilter
			desc bool
			want []int64
		}{
			{"all newest first", db.AuditFilter{}, true, []int64{ids[3], ids[2], ids[1], ids[0]}},
			{"account", db.AuditFilter{AccountID: a1}, false, []int64{ids[0], ids[1]}},
			{"subject", db.AuditFilter{SubjectType: "Device", SubjectID: subject}, false, []int64{ids[1], ids[2]}},
			{"action", db.AuditFilter{Action: "license.assign"}, false, []int64{ids[1], ids[2]}},
			{"actor", db.AuditFilter{ActorKind: model.ActorSystem}, false, []int64{ids[0], ids[3]}},
			{"since", db.AuditFilter{Since: &since}, false, []int64{ids[1], ids[2]}},
			{"no match", db.AuditFilter{Action: "none"}, false, []int64{}},
		}
		for _, tc := range tests {
			got, more, err := d.ListAuditEvents(bg(), tc.f, db.Page{First: 10, Desc: tc.desc})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, auditID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountAuditEvents(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
	})
}

// TestAuditErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestAuditErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"insert audit", func() error { return d.InsertAudit(bg(), &model.AuditEvent{}) }},
			{"insert audits", func() error { return d.InsertAudits(bg(), []*model.AuditEvent{{}}) }},
			{"list audit events", func() error { _, _, err := d.ListAuditEvents(bg(), db.AuditFilter{}, db.Page{First: 1}); return err }},
			{"count audit events", func() error { _, err := d.CountAuditEvents(bg(), db.AuditFilter{}); return err }},
			{"audit events by id", func() error { _, err := d.AuditEventsByID(bg(), []int64{1}); return err }},
		})
	})
}
