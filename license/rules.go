package license

import (
	"strconv"

	"orchard/model"
)

// The assignment rules (DESIGN R5, R9, R10, R11 and the checks of the target itself) are pure
// functions over assignFacts, one file per family, each with its table test beside it:
//
//	rules_target.go   the target: found, of the right kind, with a user for a USER license, not removed
//	rules_device.go   the device: not retired, and a shared iPad takes DEVICE licenses only (R10)
//	rules_holder.go   what the holder has: no second license of the app, no device license over a user license (R9)
//	rules_pool.go     the pool and its account: usable, device-assignable, and R11's cross-country rule (rules_country.go)
//	rules_licenses.go which pool first, and R5's answer when none has a license left
//	rules_restore.go  R8: what a restored device must get again
//
// planner.go reads the facts, runs the rules and writes what they allowed.

// refusal is a rule's "no" to one target: its code, and its message as each mutation has
// always worded it — assignLicense in full, assignLicenses (one answer per target, up to
// 10,000 of them) sometimes shorter.
type refusal struct {
	Code    model.Code
	Message string
	// Short is assignLicenses' wording where it differs from Message.
	Short string
	// Field is where assignLicense's error points; assignLicenses' points at the target.
	Field []string
}

// targetField is where assignLicense points the refusals about its target.
var targetField = []string{"input", "target"}

// one is the refusal as assignLicense answers it.
func (r *refusal) one() *model.Error {
	return &model.Error{Code: r.Code, Field: r.Field, Message: r.Message}
}

// of is the refusal as assignLicenses answers it for its target i.
func (r *refusal) of(i int) *model.Error {
	msg := r.Message
	if r.Short != "" {
		msg = r.Short
	}
	return &model.Error{Code: r.Code, Field: []string{"input", "targets", strconv.Itoa(i)}, Message: msg}
}

// asRefusal turns a client-safe error into a refusal (false for any other error).
func asRefusal(err error) (*refusal, bool) {
	e, ok := model.AsError(err)
	if !ok {
		return nil, false
	}
	return &refusal{Code: e.Code, Message: e.Message, Field: e.Field}, true
}
