package db_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func newCommand(dev *model.Device, app *model.App, kind model.CommandKind) *model.DeviceCommand {
	return &model.DeviceCommand{DeviceID: dev.ID, AppID: app.ID, Kind: kind, Status: model.CommandPending, Reason: "test"}
}

// TestPendingCommand finds the pending command of a kind for a device and app, not one
// acknowledged nor one of another kind; none is the not-found error.
func TestPendingCommand(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dev, app := seedDevice(t, d), seedApp(t, d)
		done := newCommand(dev, app, model.CommandInstall)
		done.Status = model.CommandAcknowledged
		pending := newCommand(dev, app, model.CommandInstall)
		remove := newCommand(dev, app, model.CommandRemove)
		mustDo(t, d.InsertCommands(bg(), done, pending, remove))
		got, err := d.PendingCommand(bg(), dev.ID, app.ID, model.CommandInstall)
		mustDo(t, err)
		if got.ID != pending.ID {
			t.Errorf("pending install %d, want %d", got.ID, pending.ID)
		}
		_, err = d.PendingCommand(bg(), dev.ID, app.ID, model.CommandReinstall)
		isNotFound(t, "pending command", err)
	})
}

// TestAcknowledgeCommand records the MDM's answer once: a second answer, or an answer to a
// cancelled command, reports false and changes nothing. CancelCommands cancels only the
// device's pending commands.
func TestAcknowledgeCommand(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dev, other, app := seedDevice(t, d), seedDevice(t, d), seedApp(t, d)
		acked, cancelled, others := newCommand(dev, app, model.CommandInstall), newCommand(dev, app, model.CommandRemove), newCommand(other, app, model.CommandInstall)
		mustDo(t, d.InsertCommands(bg(), acked, cancelled, others))
		ok := "ok"
		tests := []struct {
			name   string
			id     int64
			status model.CommandStatus
			want   bool
		}{
			{"first answer", acked.ID, model.CommandAcknowledged, true},
			{"second answer", acked.ID, model.CommandFailed, false},
			{"unknown command", acked.ID + 1000, model.CommandAcknowledged, false},
		}
		for _, tc := range tests {
			got, err := d.AcknowledgeCommand(bg(), tc.id, tc.status, &ok, db.Now())
			mustDo(t, err)
			if got != tc.want {
				t.Errorf("%s: acknowledged %v, want %v", tc.name, got, tc.want)
			}
		}
		mustDo(t, d.CancelCommands(bg(), dev.ID, "device retired"))
		if got, err := d.AcknowledgeCommand(bg(), cancelled.ID, model.CommandAcknowledged, &ok, db.Now()); err != nil || got {
			t.Errorf("answer to a cancelled command: %v, %v; want false", got, err)
		}
		rows, err := d.CommandsByID(bg(), []int64{acked.ID, cancelled.ID, others.ID})
		mustDo(t, err)
		got := map[int64]model.CommandStatus{}
		for _, r := range rows {
			got[r.ID] = r.Status
		}
		want := map[int64]model.CommandStatus{acked.ID: model.CommandAcknowledged, cancelled.ID: model.CommandCancelled, others.ID: model.CommandPending}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestListCommands filters by device, status and kind in id order, and counts the same set;
// an empty InsertCommands writes nothing.
func TestListCommands(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dev, other, app := seedDevice(t, d), seedDevice(t, d), seedApp(t, d)
		c1, c2, c3 := newCommand(dev, app, model.CommandInstall), newCommand(dev, app, model.CommandRemove), newCommand(other, app, model.CommandInstall)
		c2.Status = model.CommandFailed
		mustDo(t, d.InsertCommands(bg(), c1, c2, c3))
		var sc db.StatementCounter
		mustDo(t, d.InsertCommands(db.WithStatementCounter(bg(), &sc)))
		if sc.Count() != 0 {
			t.Errorf("no commands ran %d statements", sc.Count())
		}
		tests := []struct {
			name string
			f    db.CommandFilter
			want []int64
		}{
			{"all", db.CommandFilter{}, []int64{c1.ID, c2.ID, c3.ID}},
			{"device", db.CommandFilter{DeviceID: dev.ID}, []int64{c1.ID, c2.ID}},
			{"status", db.CommandFilter{Status: model.CommandPending}, []int64{c1.ID, c3.ID}},
			{"kind", db.CommandFilter{Kind: model.CommandRemove}, []int64{c2.ID}},
		}
		for _, tc := range tests {
			got, more, err := d.ListCommands(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, commandID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountCommands(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
	})
}

// TestCommandErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestCommandErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"insert commands", func() error { return d.InsertCommands(bg(), &model.DeviceCommand{}) }},
			{"pending command", func() error { _, err := d.PendingCommand(bg(), 1, 1, model.CommandInstall); return err }},
			{"cancel commands", func() error { return d.CancelCommands(bg(), 1, "x") }},
			{"acknowledge command", func() error {
				_, err := d.AcknowledgeCommand(bg(), 1, model.CommandAcknowledged, nil, db.Now())
				return err
			}},
			{"list commands", func() error { _, _, err := d.ListCommands(bg(), db.CommandFilter{}, db.Page{First: 1}); return err }},
			{"count commands", func() error { _, err := d.CountCommands(bg(), db.CommandFilter{}); return err }},
			{"commands by id", func() error { _, err := d.CommandsByID(bg(), []int64{1}); return err }},
		})
	})
}
