package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

// R8: device-licensed apps are not in device backups; a restored device must get again the
// apps of its standing device licenses.
func TestR8RestoredDeviceGetsItsDeviceLicensedAppsAgain(t *testing.T) {
	const dev = 1
	a := func(id int64, kind model.LicenseKind, status model.AssignmentStatus, deviceID int64) *model.LicenseAssignment {
		return &model.LicenseAssignment{ID: id, Kind: kind, Status: status, DeviceID: ptr(deviceID), AppID: id * 10}
	}
	for _, tc := range []struct {
		name string
		as   []*model.LicenseAssignment
		want []int64
	}{
		{"an assigned device license", []*model.LicenseAssignment{a(1, model.LicenseKindDevice, model.AssignmentAssigned, dev)}, []int64{1}},
		{"a pending one (its command waits for Apple)", []*model.LicenseAssignment{a(2, model.LicenseKindDevice, model.AssignmentPending, dev)}, []int64{2}},
		{"one being reclaimed", []*model.LicenseAssignment{a(3, model.LicenseKindDevice, model.AssignmentReclaiming, dev)}, nil},
		{"gone ones", []*model.LicenseAssignment{a(4, model.LicenseKindDevice, model.AssignmentReclaimed, dev), a(5, model.LicenseKindDevice, model.AssignmentFailed, dev)}, nil},
		{"a user license to the device's user (the Apple Account restores it)", []*model.LicenseAssignment{a(6, model.LicenseKindUser, model.AssignmentAssigned, dev)}, nil},
		{"another device's license", []*model.LicenseAssignment{a(7, model.LicenseKindDevice, model.AssignmentAssigned, 2)}, nil},
		{"a mix, in order", []*model.LicenseAssignment{
			a(8, model.LicenseKindDevice, model.AssignmentAssigned, dev), a(9, model.LicenseKindDevice, model.AssignmentReclaiming, dev),
			a(10, model.LicenseKindUser, model.AssignmentPending, dev), a(11, model.LicenseKindDevice, model.AssignmentPending, dev),
		}, []int64{8, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, x := range reinstallsAfterRestore(dev, tc.as) {
				got = append(got, x.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
