package license

import (
	"fmt"
	"sort"

	"orchard/model"
)

// Which pool a license comes from, and R5: free apps consume licenses like paid ones, so when
// every allowed pool is empty the answer is NO_LICENSES_AVAILABLE, and for a free app it says
// that more cost nothing.

// preferredOrder sorts the pools a holder may get a license from. Pools of accounts the caller
// listed (assignRequest.Accounts) keep the caller's order; otherwise: an account in the
// device's country first (no cross-country rule to meet), then the one with most licenses
// left, then the oldest account — so the choice is deterministic.
func preferredOrder(cands []candidate, h holder, callersOrder bool) []candidate {
	if callersOrder {
		return cands
	}
	out := append([]candidate(nil), cands...)
	country := ""
	if h.device != nil {
		country = h.device.CountryCode
	}
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := out[i].account.CountryCode == country, out[j].account.CountryCode == country
		if ci != cj {
			return ci
		}
		ai, aj := out[i].pool.Available(), out[j].pool.Available()
		if ai != aj {
			return ai > aj
		}
		return out[i].account.ID < out[j].account.ID
	})
	return out
}

// noLicenses is R5's refusal when pool c, the first the rules allowed, had no license left.
func noLicenses(c candidate, app *model.App) *refusal {
	msg := fmt.Sprintf("no %s license left in account %q (%d owned, %d assigned, %d on their way)", nameOf(app), c.account.Name,
		c.pool.TotalCount, c.pool.AssignedCount, c.pool.ReservedCount)
	if app.IsFree {
		msg += fmt.Sprintf(". %s is free: more licenses cost nothing — add them in Apple Business Manager (Apps and Books), and Orchard sees them at the next sync", nameOf(app))
	} else {
		msg += "; buy more in Apple Business Manager, or reclaim unused ones"
	}
	return &refusal{Code: model.CodeNoLicensesAvailable, Field: []string{"input"}, Message: msg}
}

// choiceReason explains, in assignLicense's note, why Orchard took the license from c, the
// i-th of n pools in its order of preference.
func choiceReason(c candidate, h holder, i, n int) string {
	switch {
	case n == 1:
		return "the only account that bought the app"
	case h.device != nil && c.account.CountryCode == h.device.CountryCode:
		return "in the device's country, with licenses left"
	case i == 0:
		return "the most licenses left"
	}
	return "the first account, in Orchard's order of preference, whose rules allow it and that had a license left"
}
