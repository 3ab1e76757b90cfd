package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

// R11: a license bought in one country goes to a device in another only from iOS 9 on and
// where the app is sold; custom (B2B) apps go everywhere.
func TestR11CrossCountry(t *testing.T) {
	gb := testAccount(2, "London", "GB")
	us := testAccount(1, "Main", "US")
	dev := func(country, platform, os string) holder {
		return holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1", func(d *model.Device) {
			d.CountryCode, d.Platform, d.OSVersion = country, model.Platform(platform), os
		})}
	}
	b2b := testApp(func(a *model.App) { a.IsB2B = true })
	for _, tc := range []struct {
		name    string
		app     *model.App
		account *model.Account
		h       holder
		sold    map[string]bool
		want    *refusal
	}{
		{"same country", testApp(), us, dev("US", "IPADOS", "17.4"), nil, nil},
		{"same country, other case", testApp(), us, dev("us", "IPADOS", "17.4"), nil, nil},
		{"sold in the device's country", testApp(), gb, dev("US", "IPADOS", "17.4"), map[string]bool{"US": true}, nil},
		{"not sold there", testApp(), gb, dev("US", "IPADOS", "17.4"), map[string]bool{"US": false}, &refusal{Code: model.CodeAppNotSoldInCountry, Field: targetField,
			Message: `"Maps Pro" is not sold in US, where device D1 is; licenses bought in GB can go only to countries where the app is sold`}},
		{"not known yet whether it is sold there", testApp(), gb, dev("US", "IPADOS", "17.4"), nil, &refusal{Code: model.CodeAppNotSoldInCountry, Field: targetField,
			Message: `Orchard does not know yet whether "Maps Pro" is sold in US (availability is looked up with each sync); assign from an account in US, or try again after the next sync`}},
		{"iOS 8", testApp(), gb, dev("US", "IOS", "8.4.1"), map[string]bool{"US": true}, &refusal{Code: model.CodeOSTooOldForCrossCountry, Field: targetField,
			Message: "device D1 (US) runs IOS 8.4.1; licenses bought in GB can go to a device in another country only from iOS 9 on"}},
		{"iOS 9", testApp(), gb, dev("US", "IOS", "9.0"), map[string]bool{"US": true}, nil},
		{"macOS 8 is not iOS", testApp(), gb, dev("US", "MACOS", "8.0"), map[string]bool{"US": true}, nil},
		{"custom (B2B) app, not sold anywhere", b2b, gb, dev("US", "IPADOS", "17.4"), map[string]bool{"US": false}, nil},
		{"device without a country", testApp(), gb, dev("", "IPADOS", "17.4"), nil, nil},
		{"user license", testApp(), gb, holder{kind: model.LicenseKindUser, user: testUser(9, "alice")}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := factsOf(tc.h.kind, tc.app, nil, nil)
			for k, v := range tc.sold {
				f.sold[k] = v
			}
			if diff := cmp.Diff(tc.want, checkR11(f, tc.account, tc.h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
