package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/model"
)

func TestAlreadyAssignedOneLicenseOfAnAppPerHolder(t *testing.T) {
	dev := testDevice(1, "D1")
	user := testUser(9, "alice")
	for _, tc := range []struct {
		name string
		kind model.LicenseKind
		h    holder
		held map[string]db.HeldLicense
		want *refusal
	}{
		{"device without the app", model.LicenseKindDevice, holder{kind: model.LicenseKindDevice, device: dev}, nil, nil},
		{"device with the app on its way", model.LicenseKindDevice, holder{kind: model.LicenseKindDevice, device: dev},
			map[string]db.HeldLicense{"D:D1": {ID: 4, Status: model.AssignmentPending}},
			&refusal{Code: model.CodeAlreadyAssigned, Field: targetField,
				Message: `device D1 already has (or is getting) a device license for "Maps Pro" (assignment in state PENDING)`,
				Short:   `device D1 already has (or is getting) a license for "Maps Pro"`}},
		{"user with the app", model.LicenseKindUser, holder{kind: model.LicenseKindUser, user: user},
			map[string]db.HeldLicense{"U:cu-alice": {ID: 5, Status: model.AssignmentAssigned}},
			&refusal{Code: model.CodeAlreadyAssigned, Field: targetField,
				Message: `user alice already has (or is getting) a user license for "Maps Pro" (assignment in state ASSIGNED)`,
				Short:   `user alice already has (or is getting) a license for "Maps Pro"`}},
		{"another holder has it", model.LicenseKindDevice, holder{kind: model.LicenseKindDevice, device: dev},
			map[string]db.HeldLicense{"D:D2": {ID: 6, Status: model.AssignmentAssigned}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := factsOf(tc.kind, testApp(), nil, nil)
			for k, v := range tc.held {
				f.held[k] = v
			}
			if diff := cmp.Diff(tc.want, checkAlreadyAssigned(f, tc.h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// R9: no device license for an app over a user license of it that Orchard assigned to the
// device's user (the facts hold only those: FOUND_AT_APPLE ones are not read).
func TestR9NoDeviceLicenseOverUserLicense(t *testing.T) {
	withUser := testDevice(1, "D1", func(d *model.Device) { d.UserID = ptr(int64(9)) })
	otherUser := testDevice(2, "D2", func(d *model.Device) { d.UserID = ptr(int64(10)) })
	alone := testDevice(3, "D3")
	for _, tc := range []struct {
		name string
		h    holder
		want *refusal
	}{
		{"device license, its user holds one", holder{kind: model.LicenseKindDevice, device: withUser}, &refusal{Code: model.CodeUserLicenseExists, Field: targetField,
			Message: `the user of device D1 already holds a user license for "Maps Pro"; a device license is not assigned over it`,
			Short:   `the user of device D1 already holds a user license for "Maps Pro"`}},
		{"device license, its user holds none", holder{kind: model.LicenseKindDevice, device: otherUser}, nil},
		{"device license, no user", holder{kind: model.LicenseKindDevice, device: alone}, nil},
		{"user license to the user who holds one (not R9's concern)", holder{kind: model.LicenseKindUser, device: withUser, user: testUser(9, "alice")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := factsOf(tc.h.kind, testApp(), nil, nil)
			f.userLicensed[9] = true
			if diff := cmp.Diff(tc.want, checkR9(f, tc.h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
