package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

func TestRetiredDeviceTakesNoLicense(t *testing.T) {
	retired := func(d *model.Device) { d.Status = model.DeviceRetired }
	for _, tc := range []struct {
		name string
		kind model.LicenseKind
		dev  *model.Device
		want *refusal
	}{
		{"active device, DEVICE license", model.LicenseKindDevice, testDevice(1, "D1"), nil},
		{"retired device, DEVICE license", model.LicenseKindDevice, testDevice(1, "D1", retired),
			&refusal{Code: model.CodeDeviceRetired, Field: targetField, Message: "device D1 is retired"}},
		{"retired device, USER license to its user", model.LicenseKindUser, testDevice(1, "D1", retired, func(d *model.Device) { d.UserID = ptr(int64(9)) }),
			&refusal{Code: model.CodeDeviceRetired, Field: targetField, Message: "device D1 is retired"}},
		{"no device (a user named)", model.LicenseKindUser, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &holder{kind: tc.kind, device: tc.dev}
			if diff := cmp.Diff(tc.want, checkRetiredDevice(factsOf(tc.kind, testApp(), nil, nil), h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// R10, its device half: a shared iPad takes DEVICE licenses only.
func TestR10SharedIPadTakesDeviceLicensesOnly(t *testing.T) {
	shared := func(d *model.Device) { d.SharedIPad, d.UserID = true, ptr(int64(9)) }
	for _, tc := range []struct {
		name string
		kind model.LicenseKind
		dev  *model.Device
		want *refusal
	}{
		{"shared iPad, DEVICE license", model.LicenseKindDevice, testDevice(1, "S1", shared), nil},
		{"shared iPad, USER license", model.LicenseKindUser, testDevice(1, "S1", shared), &refusal{Code: model.CodeSharedIPadNeedsDeviceLicense, Field: targetField,
			Message: "S1 is a shared iPad: it takes device licenses only (an install serves every user of it)",
			Short:   "S1 is a shared iPad: it takes device licenses only"}},
		{"personal iPad, USER license", model.LicenseKindUser, testDevice(1, "P1", func(d *model.Device) { d.UserID = ptr(int64(9)) }), nil},
		{"a user named, USER license", model.LicenseKindUser, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &holder{kind: tc.kind, device: tc.dev}
			if diff := cmp.Diff(tc.want, checkSharedIPad(factsOf(tc.kind, testApp(), nil, nil), h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The shared-iPad check within the target's checks: which refusal a shared iPad gets when it
// breaks more than one rule, in assignLicense's order and in assignLicenses'.
func TestSharedIPadAmongTheTargetChecks(t *testing.T) {
	user := testUser(9, "u9")
	sharedWithUser := testDevice(1, "S1", func(d *model.Device) { d.SharedIPad, d.UserID = true, ptr(int64(9)) })
	sharedNoUser := testDevice(2, "S2", func(d *model.Device) { d.SharedIPad = true })
	sharedRetired := testDevice(3, "S3", func(d *model.Device) { d.SharedIPad, d.Status = true, model.DeviceRetired })
	f := factsOf(model.LicenseKindUser, testApp(), []*model.Device{sharedWithUser, sharedNoUser, sharedRetired}, []*model.User{user})
	fd := factsOf(model.LicenseKindDevice, testApp(), []*model.Device{sharedWithUser, sharedNoUser, sharedRetired}, []*model.User{user})
	for _, tc := range []struct {
		name    string
		f       *assignFacts
		target  Target
		oneCode model.Code // assignLicense
		bulk    model.Code // assignLicenses
	}{
		{"USER license, shared iPad with a user", f, Target{SerialNumber: "S1"}, model.CodeSharedIPadNeedsDeviceLicense, model.CodeSharedIPadNeedsDeviceLicense},
		{"USER license, shared iPad without a user", f, Target{SerialNumber: "S2"}, model.CodeSharedIPadNeedsDeviceLicense, model.CodeSharedIPadNeedsDeviceLicense},
		{"USER license, retired shared iPad", f, Target{SerialNumber: "S3"}, model.CodeSharedIPadNeedsDeviceLicense, model.CodeDeviceRetired},
		{"DEVICE license, shared iPad", fd, Target{SerialNumber: "S1"}, "", ""},
		{"DEVICE license, retired shared iPad", fd, Target{DeviceID: 3}, model.CodeDeviceRetired, model.CodeDeviceRetired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := func(one bool) model.Code {
				_, r := resolveHolder(tc.f, tc.target, one)
				if r == nil {
					return ""
				}
				return r.Code
			}
			if diff := cmp.Diff([2]model.Code{tc.oneCode, tc.bulk}, [2]model.Code{code(true), code(false)}); diff != "" {
				t.Errorf("codes [assignLicense, assignLicenses] mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
