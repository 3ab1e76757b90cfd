package model

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients branch on codes, never on messages,
// so a code once published is never renamed or reused for another meaning.
type Code string

// Codes carried by mutation payloads' userErrors and by top-level errors' extensions.code.
const (
	CodeNotFound                     Code = "NOT_FOUND"
	CodeInvalidInput                 Code = "INVALID_INPUT"
	CodeNoLicensesAvailable          Code = "NO_LICENSES_AVAILABLE"
	CodeAlreadyAssigned              Code = "ALREADY_ASSIGNED"
	CodeNotDeviceAssignable          Code = "NOT_DEVICE_ASSIGNABLE"
	CodeUserLicenseExists            Code = "USER_LICENSE_EXISTS"
	CodeAccountUnavailable           Code = "ACCOUNT_UNAVAILABLE"
	CodeAccountThrottled             Code = "ACCOUNT_THROTTLED"
	CodeAppNotSoldInCountry          Code = "APP_NOT_SOLD_IN_COUNTRY"
	CodeOSTooOldForCrossCountry      Code = "OS_TOO_OLD_FOR_CROSS_COUNTRY"
	CodeDeviceRetired                Code = "DEVICE_RETIRED"
	CodeSharedIPadNeedsDeviceLicense Code = "SHARED_IPAD_NEEDS_DEVICE_LICENSE"
	CodeInvalidToken                 Code = "INVALID_TOKEN"
	CodeTokenExpired                 Code = "TOKEN_EXPIRED"
	CodeDuplicateAccount             Code = "DUPLICATE_ACCOUNT"
	CodeForbidden                    Code = "FORBIDDEN"
	CodeUnauthenticated              Code = "UNAUTHENTICATED"
	CodeBadUserInput                 Code = "BAD_USER_INPUT"
	CodeComplexityLimitExceeded      Code = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeDepthLimitExceeded           Code = "DEPTH_LIMIT_EXCEEDED"
	CodeRequestTooLarge              Code = "REQUEST_TOO_LARGE"
	CodeInternal                     Code = "INTERNAL_SERVER_ERROR"
	CodeIdempotencyKeyReused         Code = "IDEMPOTENCY_KEY_REUSED"
	CodeAccountClaimedElsewhere      Code = "ACCOUNT_CLAIMED_ELSEWHERE"
	CodeAppleUnavailable             Code = "APPLE_UNAVAILABLE"
	CodeConflict                     Code = "CONFLICT"
)

// Error is an error whose message is safe to show to an API client, with a stable code and,
// for input errors, the path of the offending input field. Anything that is not an *Error
// (or does not wrap one) is treated as internal: logged, and shown to clients only as
// INTERNAL_SERVER_ERROR.
type Error struct {
	Code    Code
	Message string
	// Field is the path of the input field at fault, e.g. ["input", "serialNumbers", "3"].
	Field []string
	// Err is an optional cause kept for logs and errors.Is; it is never shown to clients.
	Err error
}

func (e *Error) Error() string { return e.Message }

// Unwrap exposes the cause for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a client-safe error with the given code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a client-safe INVALID_INPUT error about one input field.
func FieldError(field []string, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// AsError returns the client-safe error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// ErrNotFound is returned by lookups that find nothing; callers turn it into a NOT_FOUND error
// naming what was looked for.
var ErrNotFound = errors.New("not found")
