package apple

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// kind is a sentinel error class. *Error.Is matches a kind when Apple's error
// number belongs to it, so errors.Is(err, ErrTokenExpired) works on every error
// the client returns, however deeply wrapped.
type kind struct{ name string }

func (k *kind) Error() string { return "apple: " + k.name }

// Sentinel kinds of Apple errors (doc/apple-api.md §9). Match with errors.Is.
var (
	// ErrTokenExpired: 9621. The admin must download a new token.
	ErrTokenExpired error = &kind{"content token expired"}
	// ErrTokenRevoked: 9625.
	ErrTokenRevoked error = &kind{"content token revoked"}
	// ErrTokenInvalid: 9622 (unknown token, often with HTTP 200), 9601 (login
	// required), 9722 (malformed Authorization header).
	ErrTokenInvalid error = &kind{"content token invalid"}
	// ErrNotEnoughLicenses: 9709 (asynchronous, in event failures and notifications).
	ErrNotEnoughLicenses error = &kind{"not enough licenses"}
	// ErrUnknownUser: 9609 (registered user not found).
	ErrUnknownUser error = &kind{"registered user not found"}
	// ErrNotDeviceAssignable: 9707 (and legacy 9628).
	ErrNotDeviceAssignable error = &kind{"asset not device-assignable"}
	// ErrNotRevocable: 9706.
	ErrNotRevocable error = &kind{"asset not revocable"}
	// ErrBadVersion: 9721 (unknown sinceVersionId); do a full sync.
	ErrBadVersion error = &kind{"invalid versionId"}
	// ErrLimitExceeded: 9700, 9701, 9702, 9714 (too many assets, user ids,
	// serial numbers, users in one request). The client refreshes its service
	// configuration when it sees one; split with the new limits and resend.
	ErrLimitExceeded error = &kind{"request exceeds a limit"}
	// ErrDuplicate: 9703, 9704, 9705, 9715 (duplicates in a request).
	ErrDuplicate error = &kind{"duplicate entries in request"}
	// ErrEventNotFound: 9708.
	ErrEventNotFound error = &kind{"event not found"}
	// ErrBadPageIndex: 9650.
	ErrBadPageIndex error = &kind{"bad page index"}
	// ErrInvalidRequest: validation errors that retrying cannot fix (9602,
	// 9623, 9710-9713, 9717-9720, 9723-9727).
	ErrInvalidRequest error = &kind{"invalid request"}
	// ErrNotificationUnreachable: 9728 (Apple's TEST_NOTIFICATION failed).
	ErrNotificationUnreachable error = &kind{"notification URL unreachable"}
	// ErrForbidden: 9637 (facilitator accounts), 9647 (legacy tokens).
	ErrForbidden error = &kind{"operation not allowed for this token"}
	// ErrServiceGone: 9634 (service no longer available).
	ErrServiceGone error = &kind{"service no longer available"}
	// ErrInternal: 9603.
	ErrInternal error = &kind{"Apple internal error"}
	// ErrUserExists: 9716 (a registered user already exists for the clientUserId).
	ErrUserExists error = &kind{"registered user already exists"}
	// ErrAppleAccountConflict: 9635, 9641.
	ErrAppleAccountConflict error = &kind{"Apple Account cannot be associated"}
	// ErrMaintenance: 9644 (maintenance mode).
	ErrMaintenance error = &kind{"service in maintenance mode"}
	// ErrAlreadyAssigned: 9616 (legacy; doc/apple-api.md §15 switch "re-associate fails").
	ErrAlreadyAssigned error = &kind{"license already assigned"}
	// ErrNotAssociated: 9619 (legacy; doc/apple-api.md §15 switch "disassociate of nothing fails").
	ErrNotAssociated error = &kind{"license not associated"}
	// ErrRepeatedRequest: 9630-9632 (too many identical recent calls, legacy).
	ErrRepeatedRequest error = &kind{"too many identical requests"}
	// ErrThrottled: matched by *ThrottleError, and by *Error for 9646 and 9729.
	ErrThrottled error = &kind{"throttled"}
	// ErrClaimedElsewhere: matched by *ClaimedError.
	ErrClaimedElsewhere error = &kind{"content token claimed by another manager"}
)

// kindByNumber maps Apple's error numbers to kinds. Numbers not listed are
// kept in *Error with their number and message and match no kind.
var kindByNumber = map[int]error{
	9601: ErrTokenInvalid, 9622: ErrTokenInvalid, 9722: ErrTokenInvalid,
	9621: ErrTokenExpired,
	9625: ErrTokenRevoked,
	9709: ErrNotEnoughLicenses,
	9609: ErrUnknownUser,
	9707: ErrNotDeviceAssignable, 9628: ErrNotDeviceAssignable,
	9706: ErrNotRevocable,
	9721: ErrBadVersion,
	9700: ErrLimitExceeded, 9701: ErrLimitExceeded, 9702: ErrLimitExceeded, 9714: ErrLimitExceeded,
	9703: ErrDuplicate, 9704: ErrDuplicate, 9705: ErrDuplicate, 9715: ErrDuplicate,
	9708: ErrEventNotFound,
	9650: ErrBadPageIndex,
	9602: ErrInvalidRequest, 9623: ErrInvalidRequest, 9710: ErrInvalidRequest, 9711: ErrInvalidRequest,
	9712: ErrInvalidRequest, 9713: ErrInvalidRequest, 9717: ErrInvalidRequest, 9718: ErrInvalidRequest,
	9719: ErrInvalidRequest, 9720: ErrInvalidRequest, 9723: ErrInvalidRequest, 9724: ErrInvalidRequest,
	9725: ErrInvalidRequest, 9726: ErrInvalidRequest, 9727: ErrInvalidRequest,
	9728: ErrNotificationUnreachable,
	9637: ErrForbidden, 9647: ErrForbidden,
	9634: ErrServiceGone,
	9603: ErrInternal,
	9716: ErrUserExists,
	9635: ErrAppleAccountConflict, 9641: ErrAppleAccountConflict,
	9644: ErrMaintenance,
	9616: ErrAlreadyAssigned,
	9619: ErrNotAssociated,
	9630: ErrRepeatedRequest, 9631: ErrRepeatedRequest, 9632: ErrRepeatedRequest,
	9646: ErrThrottled, 9729: ErrThrottled,
}

// throttleNumbers are the error numbers that mean "leave this account alone
// for a while" whatever the HTTP status: too many requests (9646), service
// temporarily unavailable (9729) and maintenance mode (9644).
func isThrottleNumber(n int) bool { return n == 9646 || n == 9729 || n == 9644 }

// isThrottleStatus: 429 and every 5xx hold the account (DESIGN R3).
func isThrottleStatus(s int) bool { return s == 429 || s >= 500 && s <= 599 }

// Error is an error answer of Apple: an ErrorResponse body (whatever the HTTP
// status, including 200) or a non-2xx answer without one (Number 0).
type Error struct {
	// Number is Apple's errorNumber; 0 when the answer carried none.
	Number int
	// Message is Apple's errorMessage (or a short description of a body that
	// was not an ErrorResponse).
	Message string
	// HTTPStatus is the status of the answer; 0 for asynchronous failures
	// (event status, notifications).
	HTTPStatus int
	// Info lists the assets, users or serial numbers the error applies to.
	Info *ErrorInfo
	// Endpoint is "METHOD /path" of the call, empty for asynchronous failures.
	Endpoint string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apple: ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	if e.Number != 0 {
		fmt.Fprintf(&b, "error %d", e.Number)
		if e.HTTPStatus != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
		}
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if k, ok := kindByNumber[e.Number].(*kind); ok && e.Message == "" {
		b.WriteString(": ")
		b.WriteString(k.name)
	}
	return b.String()
}

// Is reports whether target is the kind of e's error number.
func (e *Error) Is(target error) bool {
	k, ok := target.(*kind)
	return ok && k != nil && kindByNumber[e.Number] == target
}

// ErrorNumber returns Apple's error number carried by err (an *Error, or a
// *ThrottleError caused by one), or 0.
func ErrorNumber(err error) int {
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae.Number
	}
	if te, ok := errors.AsType[*ThrottleError](err); ok {
		return te.Number
	}
	return 0
}

// ClaimedError reports that an answer carried another manager's mdmInfo:
// another server has claimed the token (R12). Stop writing to the account and
// show who holds it. errors.Is(err, ErrClaimedElsewhere) matches it.
type ClaimedError struct {
	// Manager is the mdmInfo Apple returned.
	Manager MDMInfo
	// Ours is the id this client claims with (Config.MDM.ID).
	Ours string
	// Endpoint is "METHOD /path" of the call that noticed.
	Endpoint string
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("apple: %s: content token is claimed by another manager %q (id %q, metadata %q); ours is %q",
		e.Endpoint, e.Manager.Name, e.Manager.ID, e.Manager.Metadata, e.Ours)
}

// Is matches ErrClaimedElsewhere.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimedElsewhere }

// Throttle scopes: what a ThrottleError holds.
const (
	// ScopeAccount: the content token's account (every call with that token).
	ScopeAccount = "account"
	// ScopeService: the unauthenticated service-config endpoint.
	ScopeService = "service"
	// ScopeLookup: the app metadata lookup service.
	ScopeLookup = "lookup"
)

// ThrottleError says Apple asked to be left alone until Until (DESIGN R3). For
// ScopeAccount the caller holds every action on that account until then; the
// client itself refuses to send requests for the token before Until.
// errors.Is(err, ErrThrottled) matches it; errors.As to *Error reaches Apple's
// error when the answer carried one.
type ThrottleError struct {
	// Until is when the account may be called again.
	Until time.Time
	// Reason explains the hold ("HTTP 503 with Retry-After 120s", ...).
	Reason string
	// HTTPStatus and Number are from the answer that caused the hold (0 when
	// unknown, e.g. a call refused locally because of an earlier hold).
	HTTPStatus, Number int
	// Scope is ScopeAccount, ScopeService or ScopeLookup.
	Scope string
	// Endpoint is "METHOD /path" of the call.
	Endpoint string
	// Local is true when no request was sent because the token was already held.
	Local bool
	// Err is Apple's error answer, if any.
	Err error
}

func (e *ThrottleError) Error() string {
	where := ""
	if e.Local {
		where = " (not sent: already held)"
	}
	return fmt.Sprintf("apple: %s: throttled%s, %s scope held until %s: %s",
		e.Endpoint, where, e.Scope, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// Is matches ErrThrottled.
func (e *ThrottleError) Is(target error) bool { return target == ErrThrottled }

// Unwrap returns Apple's error answer, if any.
func (e *ThrottleError) Unwrap() error { return e.Err }

// ThrottledUntil reports until when the account must be left alone because of
// err: the Until of a *ThrottleError of ScopeAccount anywhere in err's chain.
// Throttles of the metadata lookup or the service config do not hold an
// account; inspect them with errors.As.
func ThrottledUntil(err error) (time.Time, bool) {
	if te, ok := errors.AsType[*ThrottleError](err); ok && te.Scope == ScopeAccount {
		return te.Until, true
	}
	return time.Time{}, false
}

// TransportError is a failure to get an answer from Apple: network errors,
// timeouts, truncated bodies. Idempotent GETs are retried a bounded number of
// times before it is returned; POSTs are not retried once the request may have
// reached Apple (MayHaveReachedApple) — the caller's outbox retries, and event
// status or a sync tells whether Apple acted.
type TransportError struct {
	Endpoint            string
	Attempts            int
	MayHaveReachedApple bool
	Err                 error
}

func (e *TransportError) Error() string {
	reached := ""
	if e.MayHaveReachedApple {
		reached = " (the request may have reached Apple)"
	}
	return fmt.Sprintf("apple: %s: no answer after %d attempt(s)%s: %v", e.Endpoint, e.Attempts, reached, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// DecodeError is a successful (2xx) answer that could not be understood
// (truncated, not JSON, missing eventId) or one larger than
// Config.MaxResponseBytes. It counts as transient. For a POST, Apple received
// the request and may have acted on it: the caller must reconcile (event
// status cannot be asked without an eventId; a sync shows the outcome).
type DecodeError struct {
	Endpoint   string
	HTTPStatus int
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("apple: %s: cannot decode HTTP %d answer: %v", e.Endpoint, e.HTTPStatus, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth retrying later unchanged: throttling,
// transport failures, undecodable answers, Apple internal errors and
// maintenance. Validation errors, token problems and claims by another manager
// are not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*ThrottleError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*TransportError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*DecodeError](err); ok {
		return true
	}
	if ae, ok := errors.AsType[*Error](err); ok {
		return ae.HTTPStatus >= 500 || isThrottleNumber(ae.Number) || ae.Number == 9603
	}
	return false
}

// IsTokenUnusable reports whether err means the token cannot be used any more
// until an admin acts: expired, revoked, invalid, or claimed by another manager.
func IsTokenUnusable(err error) bool {
	return errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrTokenRevoked) ||
		errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrClaimedElsewhere)
}
