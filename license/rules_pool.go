package license

import (
	"fmt"

	"orchard/model"
)

// The pool and its account: the account must be usable (not removed, its token valid), a
// DEVICE license needs a device-assignable pool (Apple allows only user licenses for books and
// for some apps), and a device in another country than the account meets R11
// (rules_country.go).

// checkPool applies the rules that depend on the pool, its account and the holder, in the
// order both mutations have always applied them.
func checkPool(f *assignFacts, c candidate, h holder) *refusal {
	if r := checkAccountUsable(f, c.account); r != nil {
		return r
	}
	if r := checkDeviceAssignable(f, c.pool, h); r != nil {
		return r
	}
	return checkR11(f, c.account, h)
}

// checkAccountUsable refuses an account being removed or whose token cannot be used now.
func checkAccountUsable(f *assignFacts, a *model.Account) *refusal {
	if a.RemovedAt != nil || a.RemovalRequestedAt != nil {
		return &refusal{Code: model.CodeAccountUnavailable, Field: targetField, Message: fmt.Sprintf("account %q is removed", a.Name)}
	}
	if hl := a.EffectiveHealth(f.now); !hl.Usable() {
		return &refusal{Code: model.CodeAccountUnavailable, Field: targetField,
			Message: fmt.Sprintf("account %q cannot be used: its token is %s; renew the token (or take the account over) first", a.Name, hl)}
	}
	return nil
}

// checkDeviceAssignable refuses a DEVICE license of a book or of a pool Apple does not let go
// to devices.
func checkDeviceAssignable(f *assignFacts, p *model.LicensePool, h holder) *refusal {
	app := f.app
	if h.kind != model.LicenseKindDevice || (p.DeviceAssignable && app.Kind != model.AppKindBook) {
		return nil
	}
	what := "this app"
	if app.Kind == model.AppKindBook {
		what = "books"
	}
	return &refusal{Code: model.CodeNotDeviceAssignable, Field: targetField,
		Message: fmt.Sprintf("%s cannot be assigned to devices (Apple allows only user licenses for %s); assign a USER license", nameOf(app), what)}
}
