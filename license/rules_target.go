package license

import (
	"fmt"

	"orchard/model"
)

// The target of an assignment: the device or user it names must exist; a DEVICE license needs
// a device; a USER license "to a device" goes to the device's user, so the device must have
// one; a removed user takes no license.

// holder is a resolved target: the device (DEVICE licenses, or the device a USER license was
// asked "to") and the user (USER licenses).
type holder struct {
	kind   model.LicenseKind
	device *model.Device
	user   *model.User
}

func (h holder) key() string {
	if h.kind == model.LicenseKindDevice {
		return model.HolderKeyFor(h.kind, h.device.SerialNumber, "")
	}
	return model.HolderKeyFor(h.kind, "", h.user.ClientUserID)
}

// holderCheck is one rule about the holder alone (nil: the rule allows it). takeDeviceUser is
// not a rule but the step that completes a USER license's holder with the device's user.
type holderCheck func(f *assignFacts, h *holder) *refusal

// The order in which each mutation has always checked a target. Both run every check; they
// differ only in which refusal a target that breaks two rules gets (a retired shared iPad asked
// for a USER license: SHARED_IPAD_NEEDS_DEVICE_LICENSE from assignLicense, DEVICE_RETIRED from
// assignLicenses), and each keeps its answer.
var (
	oneTargetChecks = []holderCheck{checkDeviceLicenseNeedsDevice, checkKnownKind, checkSharedIPad, checkDeviceHasUser, takeDeviceUser, checkRetiredDevice, checkRemovedUser}
	bulkChecks      = []holderCheck{checkDeviceLicenseNeedsDevice, checkKnownKind, checkRetiredDevice, checkSharedIPad, checkDeviceHasUser, takeDeviceUser, checkRemovedUser}
)

// resolveHolder finds a target in the facts and applies the rules about the holder alone, in
// assignLicense's order (one) or assignLicenses'.
func resolveHolder(f *assignFacts, t Target, one bool) (holder, *refusal) {
	h := holder{kind: f.kind}
	var r *refusal
	if h.device, h.user, r = findTarget(f, t); r != nil {
		return h, r
	}
	checks := bulkChecks
	if one {
		checks = oneTargetChecks
	}
	for _, check := range checks {
		if r := check(f, &h); r != nil {
			return h, r
		}
	}
	return h, nil
}

// findTarget is the device or the user a target names.
func findTarget(f *assignFacts, t Target) (*model.Device, *model.User, *refusal) {
	var d *model.Device
	var u *model.User
	what := "device"
	switch {
	case t.DeviceID != 0:
		d = f.devicesByID[t.DeviceID]
	case t.SerialNumber != "":
		d = f.devicesBySerial[model.SerialNumberKey(t.SerialNumber)]
	case t.UserID != 0:
		u, what = f.usersByID[t.UserID], "user"
	case t.ExternalID != "":
		u, what = f.usersByExternalID[t.ExternalID], "user"
	default:
		return nil, nil, &refusal{Code: model.CodeInvalidInput, Field: targetField, Message: "give a device or a user"}
	}
	if d == nil && u == nil {
		return nil, nil, &refusal{Code: model.CodeNotFound, Field: targetField, Message: "no such " + what, Short: "no such device or user"}
	}
	return d, u, nil
}

func checkDeviceLicenseNeedsDevice(f *assignFacts, h *holder) *refusal {
	if h.kind == model.LicenseKindDevice && h.device == nil {
		return &refusal{Code: model.CodeInvalidInput, Field: targetField, Message: "a DEVICE license needs a device, not a user"}
	}
	return nil
}

func checkKnownKind(f *assignFacts, h *holder) *refusal {
	if h.kind != model.LicenseKindDevice && h.kind != model.LicenseKindUser {
		return &refusal{Code: model.CodeInvalidInput, Field: []string{"input", "target", "kind"}, Message: "kind must be USER or DEVICE"}
	}
	return nil
}

// checkDeviceHasUser: a USER license asked for a device goes to the device's user.
func checkDeviceHasUser(f *assignFacts, h *holder) *refusal {
	if h.kind == model.LicenseKindUser && h.device != nil && h.device.UserID == nil {
		return &refusal{Code: model.CodeInvalidInput, Field: targetField,
			Message: fmt.Sprintf("device %s has no user to hold a USER license; assign a DEVICE license or give the user", h.device.SerialNumber),
			Short:   fmt.Sprintf("device %s has no user to hold a USER license", h.device.SerialNumber)}
	}
	return nil
}

// takeDeviceUser makes the device's user the holder of a USER license asked for a device.
func takeDeviceUser(f *assignFacts, h *holder) *refusal {
	if h.kind != model.LicenseKindUser || h.device == nil || h.device.UserID == nil {
		return nil
	}
	if h.user = f.usersByID[*h.device.UserID]; h.user == nil {
		return &refusal{Code: model.CodeNotFound, Field: targetField, Message: fmt.Sprintf("the user of device %s is not known", h.device.SerialNumber)}
	}
	return nil
}

// checkRemovedUser: a user removed from the directory takes no license.
func checkRemovedUser(f *assignFacts, h *holder) *refusal {
	if h.user != nil && h.user.Status == model.UserRemoved {
		return &refusal{Code: model.CodeNotFound, Field: targetField, Message: fmt.Sprintf("user %s was removed", h.user.ExternalID)}
	}
	return nil
}

func holderName(h holder) string {
	if h.kind == model.LicenseKindDevice {
		return "device " + h.device.SerialNumber
	}
	return "user " + h.user.ExternalID
}

func serialOf(h holder) string {
	if h.device != nil && h.kind == model.LicenseKindDevice {
		return h.device.SerialNumber
	}
	return ""
}

func clientIDOf(h holder) string {
	if h.user != nil && h.kind == model.LicenseKindUser {
		return h.user.ClientUserID
	}
	return ""
}
