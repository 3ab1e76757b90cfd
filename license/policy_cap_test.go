package license

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestCapCountedUnderTheLabelLock: an evaluation whose facts are stale — another evaluation
// gave the capped label's last licenses after the facts were read — still never overshoots the
// cap: each chunk counts the label's licenses under its row lock (capRoom) before it assigns,
// and the holders it cannot serve wait with LABEL_CAP_REACHED.
func TestCapCountedUnderTheLabelLock(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		key := "uid-cap"
		acct := &model.Account{Name: "Cap", OrgName: "Org", LocationName: key, CountryCode: "US", AppleUID: key, LocationKey: &key,
			TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(365 * 24 * time.Hour), Health: model.TokenHealthActive,
			HealthChangedAt: now, SyncStatus: model.SyncStatusNever}
		mustDo(t, d.InsertRows(ctx, acct))
		app := &model.App{AdamID: "5101", Kind: model.AppKindApp, Name: "Capped", BundleID: "com.example.capped", Platforms: "IOS,IPADOS"}
		mustDo(t, d.InsertRows(ctx, app))
		pool := &model.LicensePool{AccountID: acct.ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ", TotalCount: 10, DeviceAssignable: true, Revocable: true}
		mustDo(t, d.InsertRows(ctx, pool))
		var devices []*model.Device
		for i := range 5 {
			devices = append(devices, &model.Device{SerialNumber: fmt.Sprintf("CAP%d", i), Platform: model.PlatformIPadOS, OSVersion: "17.4", CountryCode: "US", Status: model.DeviceActive})
		}
		mustDo(t, d.InsertRows(ctx, devices))
		g := &model.Group{ExternalID: "cap", Name: "Cap"}
		mustDo(t, d.InsertRows(ctx, g))
		var members []*model.GroupDevice
		for _, dv := range devices[:3] {
			members = append(members, &model.GroupDevice{GroupID: g.ID, DeviceID: dv.ID, CreatedAt: now})
		}
		mustDo(t, d.InsertRows(ctx, members))
		kind, capCount := model.LicenseKindDevice, int64(3)
		l := &model.Label{Kind: model.LabelLicense, Name: "three", AppID: app.ID, LicenseKind: &kind, CapCount: &capCount}
		mustDo(t, d.SaveLabel(ctx, l))
		mustDo(t, d.SetLabelGroups(ctx, l.ID, []int64{g.ID}))
		s := New(d, Options{Logger: dbtest.Quiet()})

		// The facts are read: three covered devices, nothing held, room for three.
		st, err := s.loadPolicy(ctx, d, app.ID)
		mustDo(t, err)
		// Meanwhile another evaluation gives two of the label's licenses to devices outside
		// the facts.
		for _, dv := range devices[3:] {
			sn, hk, lid, did := dv.SerialNumber, model.HolderKeyFor(model.LicenseKindDevice, dv.SerialNumber, ""), l.ID, dv.ID
			mustDo(t, d.InsertRows(ctx, &model.LicenseAssignment{PoolID: pool.ID, AccountID: acct.ID, AppID: app.ID, Kind: kind, SerialNumber: &sn, DeviceID: &did,
				HolderKey: &hk, Status: model.AssignmentAssigned, Origin: model.OriginLabel, Reason: "other", CausedBy: "label", LabelID: &lid, CreatedAt: now, UpdatedAt: now}))
		}
		res, err := s.carryOut(ctx, d, st)
		mustDo(t, err)
		if len(res.Assigned) != 1 {
			t.Errorf("assigned %d under a cap of 3 with 2 held, want 1", len(res.Assigned))
		}
		capped := 0
		for _, w := range res.Waiting {
			if w.Code == model.CodeLabelCapReached {
				capped++
			}
		}
		if capped != 2 {
			t.Errorf("%d holders wait for the cap, want 2: %+v", capped, res.Waiting)
		}
		held, err := d.CountLabelAssignments(ctx, []int64{l.ID})
		mustDo(t, err)
		if held[l.ID] != 3 {
			t.Errorf("the label holds %d licenses, want its cap of 3", held[l.ID])
		}
	})
}
