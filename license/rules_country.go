package license

import (
	"fmt"
	"strconv"
	"strings"

	"orchard/model"
)

// R11, cross-country: a license bought in one country can go to a device in another only when
// the device runs iOS 9 or later and the app is sold in the device's country. Custom (B2B)
// apps are assignable everywhere; a device or an account with no country is not held to it;
// USER licenses are not (the user's Apple Account, not the device, decides the store).

// checkR11 applies R11 to a DEVICE license from account a.
func checkR11(f *assignFacts, a *model.Account, h holder) *refusal {
	app := f.app
	if h.kind != model.LicenseKindDevice || h.device.CountryCode == "" || a.CountryCode == "" || strings.EqualFold(h.device.CountryCode, a.CountryCode) || app.IsB2B {
		return nil
	}
	d := h.device
	if osBefore(d, 9) {
		return &refusal{Code: model.CodeOSTooOldForCrossCountry, Field: targetField,
			Message: fmt.Sprintf("device %s (%s) runs %s %s; licenses bought in %s can go to a device in another country only from iOS 9 on", d.SerialNumber, d.CountryCode, d.Platform, d.OSVersion, a.CountryCode)}
	}
	sold, known := f.sold[d.CountryCode]
	switch {
	case !known:
		return &refusal{Code: model.CodeAppNotSoldInCountry, Field: targetField,
			Message: fmt.Sprintf("Orchard does not know yet whether %s is sold in %s (availability is looked up with each sync); assign from an account in %s, or try again after the next sync", nameOf(app), d.CountryCode, d.CountryCode)}
	case !sold:
		return &refusal{Code: model.CodeAppNotSoldInCountry, Field: targetField,
			Message: fmt.Sprintf("%s is not sold in %s, where device %s is; licenses bought in %s can go only to countries where the app is sold", nameOf(app), d.CountryCode, d.SerialNumber, a.CountryCode)}
	}
	return nil
}

// osBefore reports whether an iOS or iPadOS device runs a major version before major (a
// device of another platform, or of an unknown version, does not).
func osBefore(d *model.Device, major int) bool {
	switch d.Platform {
	case model.PlatformIOS, model.PlatformIPadOS, "":
	default:
		return false // the rule is about iOS devices
	}
	v := strings.TrimSpace(d.OSVersion)
	if v == "" {
		return false
	}
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	return err == nil && n < major
}
