package license

import (
	"fmt"
	"strings"

	"orchard/model"
)

// What the holder has already: one active license of an app per holder (a second request is
// ALREADY_ASSIGNED, whatever pool it names), and R9: no device license for an app over a user
// license of that app that Orchard assigned to the device's user (one found at Apple does not
// count: Orchard did not decide it).

// checkAlreadyAssigned refuses a holder that has (or is getting) a license of the app.
func checkAlreadyAssigned(f *assignFacts, h holder) *refusal {
	held, ok := f.held[h.key()]
	if !ok {
		return nil
	}
	return &refusal{Code: model.CodeAlreadyAssigned, Field: targetField,
		Message: fmt.Sprintf("%s already has (or is getting) a %s license for %s (assignment in state %s)", holderName(h), strings.ToLower(string(h.kind)), nameOf(f.app), held.Status),
		Short:   fmt.Sprintf("%s already has (or is getting) a license for %s", holderName(h), nameOf(f.app))}
}

// alreadyAssignedInRequest refuses a target named twice in one request, once the first has
// its license.
func alreadyAssignedInRequest(f *assignFacts, h holder) *refusal {
	return &refusal{Code: model.CodeAlreadyAssigned, Field: targetField,
		Message: fmt.Sprintf("%s already has (or is getting) a license for %s", holderName(h), nameOf(f.app))}
}

// checkR9 refuses a device license when the device's user holds a user license of the app
// that Orchard assigned.
func checkR9(f *assignFacts, h holder) *refusal {
	if h.kind != model.LicenseKindDevice || h.device.UserID == nil || !f.userLicensed[*h.device.UserID] {
		return nil
	}
	return &refusal{Code: model.CodeUserLicenseExists, Field: targetField,
		Message: fmt.Sprintf("the user of device %s already holds a user license for %s; a device license is not assigned over it", h.device.SerialNumber, nameOf(f.app)),
		Short:   fmt.Sprintf("the user of device %s already holds a user license for %s", h.device.SerialNumber, nameOf(f.app))}
}

func nameOf(app *model.App) string {
	if app.Name != "" {
		return fmt.Sprintf("%q", app.Name)
	}
	return "app " + app.AdamID
}
