package license

import (
	"fmt"

	"orchard/model"
)

// The device itself: a retired device takes no license (it gave its device licenses back,
// R4b), and a shared iPad takes DEVICE licenses only — R10's device half: an install on a
// shared iPad serves every user of it, guests included, which a user license cannot.

// checkRetiredDevice refuses a retired device, whatever the kind of license.
func checkRetiredDevice(f *assignFacts, h *holder) *refusal {
	if h.device != nil && h.device.Status == model.DeviceRetired {
		return &refusal{Code: model.CodeDeviceRetired, Field: targetField, Message: fmt.Sprintf("device %s is retired", h.device.SerialNumber)}
	}
	return nil
}

// checkSharedIPad refuses a USER license asked for a shared iPad (R10).
func checkSharedIPad(f *assignFacts, h *holder) *refusal {
	if h.kind == model.LicenseKindUser && h.device != nil && h.device.SharedIPad {
		return &refusal{Code: model.CodeSharedIPadNeedsDeviceLicense, Field: targetField,
			Message: fmt.Sprintf("%s is a shared iPad: it takes device licenses only (an install serves every user of it)", h.device.SerialNumber),
			Short:   h.device.SerialNumber + " is a shared iPad: it takes device licenses only"}
	}
	return nil
}
