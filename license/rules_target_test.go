package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

// TestTargetResolution: a target names a device or a user that exists; a DEVICE license needs
// a device; a USER license "to a device" goes to the device's user; a removed user takes none.
func TestTargetResolution(t *testing.T) {
	alice, bob := testUser(9, "alice"), testUser(10, "bob")
	bob.Status = model.UserRemoved
	withAlice := testDevice(1, "D1", func(d *model.Device) { d.UserID = ptr(int64(9)) })
	withBob := testDevice(2, "D2", func(d *model.Device) { d.UserID = ptr(int64(10)) })
	alone := testDevice(3, "D3")
	devs, users := []*model.Device{withAlice, withBob, alone}, []*model.User{alice, bob}
	type got struct {
		Device, User string // serial number and external id of the holder
		Refusal      *refusal
	}
	for _, tc := range []struct {
		name   string
		kind   model.LicenseKind
		target Target
		one    bool
		want   got
	}{
		{"device by serial", model.LicenseKindDevice, Target{SerialNumber: "D1"}, true, got{Device: "D1"}},
		{"device by id", model.LicenseKindDevice, Target{DeviceID: 3}, true, got{Device: "D3"}},
		{"user by external id", model.LicenseKindUser, Target{ExternalID: "alice"}, true, got{User: "alice"}},
		{"user by id", model.LicenseKindUser, Target{UserID: 9}, true, got{User: "alice"}},
		{"USER license to a device goes to its user", model.LicenseKindUser, Target{SerialNumber: "D1"}, true, got{Device: "D1", User: "alice"}},
		{"nothing named", model.LicenseKindDevice, Target{}, true, got{Refusal: &refusal{Code: model.CodeInvalidInput, Field: targetField, Message: "give a device or a user"}}},
		{"no such device", model.LicenseKindDevice, Target{SerialNumber: "NOPE"}, true, got{Refusal: &refusal{Code: model.CodeNotFound, Field: targetField,
			Message: "no such device", Short: "no such device or user"}}},
		{"no such user", model.LicenseKindUser, Target{ExternalID: "nope"}, true, got{Refusal: &refusal{Code: model.CodeNotFound, Field: targetField,
			Message: "no such user", Short: "no such device or user"}}},
		{"DEVICE license to a user", model.LicenseKindDevice, Target{ExternalID: "alice"}, true, got{User: "alice", Refusal: &refusal{Code: model.CodeInvalidInput, Field: targetField,
			Message: "a DEVICE license needs a device, not a user"}}},
		{"USER license to a device without a user", model.LicenseKindUser, Target{SerialNumber: "D3"}, true, got{Device: "D3", Refusal: &refusal{Code: model.CodeInvalidInput, Field: targetField,
			Message: "device D3 has no user to hold a USER license; assign a DEVICE license or give the user",
			Short:   "device D3 has no user to hold a USER license"}}},
		{"removed user", model.LicenseKindUser, Target{ExternalID: "bob"}, false, got{User: "bob", Refusal: &refusal{Code: model.CodeNotFound, Field: targetField,
			Message: "user bob was removed"}}},
		{"USER license to the device of a removed user", model.LicenseKindUser, Target{DeviceID: 2}, false, got{Device: "D2", User: "bob", Refusal: &refusal{Code: model.CodeNotFound, Field: targetField,
			Message: "user bob was removed"}}},
		{"unknown kind", "", Target{SerialNumber: "D1"}, true, got{Device: "D1", Refusal: &refusal{Code: model.CodeInvalidInput, Field: []string{"input", "target", "kind"},
			Message: "kind must be USER or DEVICE"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, r := resolveHolder(factsOf(tc.kind, testApp(), devs, users), tc.target, tc.one)
			g := got{Refusal: r}
			if h.device != nil {
				g.Device = h.device.SerialNumber
			}
			if h.user != nil {
				g.User = h.user.ExternalID
			}
			if diff := cmp.Diff(tc.want, g, refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefusalWording: assignLicense answers a refusal in full at its own field, assignLicenses
// in its shorter wording at the target's index.
func TestRefusalWording(t *testing.T) {
	r := &refusal{Code: model.CodeNotFound, Field: targetField, Message: "no such device", Short: "no such device or user"}
	if diff := cmp.Diff(&model.Error{Code: model.CodeNotFound, Field: []string{"input", "target"}, Message: "no such device"}, r.one()); diff != "" {
		t.Errorf("assignLicense's error mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&model.Error{Code: model.CodeNotFound, Field: []string{"input", "targets", "12"}, Message: "no such device or user"}, r.of(12)); diff != "" {
		t.Errorf("assignLicenses' error mismatch (-want +got):\n%s", diff)
	}
	r.Short = ""
	if got := r.of(0).Message; got != "no such device" {
		t.Errorf("without a short wording, assignLicenses says %q, want the message", got)
	}
}
