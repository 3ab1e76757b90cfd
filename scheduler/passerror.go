package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"orchard/apple"
	"orchard/model"
)

// maxPassMessage bounds a stored pass error (Account.lastError, SyncRun.error).
const maxPassMessage = 500

// passErrorMessage is what Account.lastError, SyncRun.error and the hold's reason show of a
// pass's failure: "CODE: message", a stable code and a short, human message of Orchard's own.
// Any VIEWER reads these, so they never carry a driver's text (a SQL error, a column type Go
// could not scan), a Go type name or a file path: an error Orchard does not know is
// INTERNAL_SERVER_ERROR with a pointer to the log, which has the whole error (the caller logs
// it with the account and the run).
//
// Apple's own errorMessage is quoted (bounded, control characters dropped): it is Apple's
// explanation for the admin and holds nothing of Orchard's.
func passErrorMessage(err error) string {
	msg := passErrorText(err)
	return model.Truncate(msg, maxPassMessage)
}

func passErrorText(err error) string {
	var (
		me      *model.Error
		claimed *apple.ClaimedError
		te      *apple.ThrottleError
		ae      *apple.Error
		de      *apple.DecodeError
		tr      *apple.TransportError
	)
	switch {
	case errors.As(err, &me):
		return fmt.Sprintf("%s: %s", me.Code, me.Message)
	case errors.As(err, &te):
		what := "Apple asked Orchard to wait"
		switch {
		case te.HTTPStatus != 0 && te.Number != 0:
			what = fmt.Sprintf("Apple answered HTTP %d (error %d)", te.HTTPStatus, te.Number)
		case te.HTTPStatus != 0:
			what = fmt.Sprintf("Apple answered HTTP %d", te.HTTPStatus)
		case te.Number != 0:
			what = fmt.Sprintf("Apple answered error %d", te.Number)
		}
		return fmt.Sprintf("%s: %s; actions on this account wait until %s", model.CodeAccountThrottled, what, te.Until.UTC().Format(time.RFC3339))
	case errors.As(err, &claimed):
		return fmt.Sprintf("%s: the token is claimed by another manager (%s)", model.CodeAccountClaimedElsewhere, clean(claimed.Manager.Name))
	case errors.Is(err, apple.ErrTokenExpired):
		return fmt.Sprintf("%s: Apple says the token expired", model.CodeTokenExpired)
	case errors.Is(err, apple.ErrTokenRevoked), errors.Is(err, apple.ErrTokenInvalid):
		return fmt.Sprintf("%s: Apple does not accept the token", model.CodeInvalidToken)
	case errors.As(err, &ae):
		m := fmt.Sprintf("%s: Apple refused a request", model.CodeAppleUnavailable)
		if ae.Number != 0 {
			m += fmt.Sprintf(" with error %d", ae.Number)
		} else if ae.HTTPStatus != 0 {
			m += fmt.Sprintf(" with HTTP %d", ae.HTTPStatus)
		}
		if t := clean(ae.Message); t != "" {
			m += ": " + t
		}
		return m + "; the pass runs again later"
	case errors.As(err, &de):
		if errors.Is(err, apple.ErrImplausible) {
			return fmt.Sprintf("%s: Apple's answer held numbers out of bounds and was not stored; the pass runs again later", model.CodeAppleUnavailable)
		}
		return fmt.Sprintf("%s: Apple's answer could not be read; the pass runs again later", model.CodeAppleUnavailable)
	case errors.As(err, &tr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s: Apple could not be reached; the pass runs again later", model.CodeAppleUnavailable)
	}
	return fmt.Sprintf("%s: the pass failed inside Orchard and runs again later; the server log has the detail", model.CodeInternal)
}

// clean bounds a text from Apple for a stored message and drops its control and format
// characters (newlines, bidi overrides).
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	return model.Truncate(strings.TrimSpace(s), 200)
}
