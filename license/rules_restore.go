package license

import "orchard/model"

// R8: device-licensed apps are not in device backups. A device restored (or re-enrolled) comes
// back without them, while its licenses stand at Apple; so Orchard queues a REINSTALL command
// for each (the MDM carries it out) and shows them as the device's pending commands. User
// licenses are not concerned: the user's Apple Account brings their apps back.

// reinstallsAfterRestore picks, of a restored device's assignments, those whose app it must
// get again: its DEVICE licenses that stand (ASSIGNED, or PENDING: the command then waits for
// Apple's confirmation). A license being reclaimed (RECLAIMING) or gone is not reinstalled.
func reinstallsAfterRestore(deviceID int64, as []*model.LicenseAssignment) []*model.LicenseAssignment {
	var out []*model.LicenseAssignment
	for _, a := range as {
		if a.Kind != model.LicenseKindDevice || a.DeviceID == nil || *a.DeviceID != deviceID {
			continue
		}
		if a.Status == model.AssignmentAssigned || a.Status == model.AssignmentPending {
			out = append(out, a)
		}
	}
	return out
}
