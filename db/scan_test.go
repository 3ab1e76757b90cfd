package db_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestFindAllScansEveryColumn checks the store's own row scanner (scan.go) through the reads
// that use it (one row by id, a batch by ids, a page): every column comes back into its field
// as written — set and NULL pointers, times in UTC to the microsecond, booleans, byte
// strings — on both engines.
func TestFindAllScansEveryColumn(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		at := time.Date(2031, 2, 3, 4, 5, 6, 789000, time.UTC)
		s, msg, claimed := "s", "boom", "other-mdm"
		full := seedAccount(t, d, func(a *model.Account) {
			a.DefaultPlatform, a.WebsiteURL, a.TokenFingerprint = "IOS", "https://example.com", "fp"
			a.NotificationSecretCiphertext, a.NotificationsEnabled = []byte{0, 1, 2, 255}, true
			a.ClaimedByID, a.ClaimedByName, a.LastError, a.ThrottleReason = &s, &claimed, &msg, &msg
			a.ThrottledUntil, a.LastSyncedAt, a.LastFullSyncAt, a.NextSyncAt, a.NextFullSyncAt = &at, &at, &at, &at, &at
			a.AssetsVersionID, a.AssignmentsVersionID, a.UsersVersionID = "v1", "v2", "v3"
			a.RemovalRequestedAt = &at
		})
		bare := seedAccount(t, d)
		one, err := d.AccountByID(bg(), full.ID)
		mustDo(t, err)
		if diff := cmp.Diff(full, one); diff != "" {
			t.Errorf("account by id mismatch (-want +got):\n%s", diff)
		}
		batch, err := d.AccountsByID(bg(), []int64{full.ID, bare.ID})
		mustDo(t, err)
		byID := map[int64]*model.Account{}
		for _, a := range batch {
			byID[a.ID] = a
		}
		if diff := cmp.Diff(map[int64]*model.Account{full.ID: full, bare.ID: bare}, byID); diff != "" {
			t.Errorf("accounts by id mismatch (-want +got):\n%s", diff)
		}

		user := seedUser(t, d)
		dev := seedDevice(t, d, func(x *model.Device) {
			udid := "UDID-1"
			x.UDID, x.Model, x.SharedIPad, x.Supervised, x.UserID = &udid, "iPad13,1", true, true, &user.ID
			x.RetiredAt, x.RestoredAt, x.LastSeenAt = &at, &at, &at
		})
		page, _, err := d.ListDevices(bg(), db.DeviceFilter{UserID: user.ID}, db.Page{First: 5})
		mustDo(t, err)
		if diff := cmp.Diff([]*model.Device{dev}, page); diff != "" {
			t.Errorf("device page mismatch (-want +got):\n%s", diff)
		}
		for _, got := range []time.Time{one.CreatedAt, page[0].UpdatedAt, *page[0].LastSeenAt} {
			if got.Location() != time.UTC {
				t.Errorf("time %v read back in %v, want UTC", got, got.Location())
			}
		}
	})
}

// TestFindOneNotFound: a read of one row that finds none is the not-found error, named after
// the read, on every reader built on findOne.
func TestFindOneNotFound(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		_, err := d.AccountByID(bg(), 1)
		isNotFound(t, "account by id", err)
		_, err = d.AppByAdamID(bg(), "1")
		isNotFound(t, "app by adam id", err)
		_, err = d.DeviceByID(bg(), 1)
		isNotFound(t, "device by id", err)
		_, err = d.ActiveAssignmentOfApp(bg(), 1, model.LicenseKindUser, "", "cu")
		isNotFound(t, "active assignment of app", err)
	})
}
