package apple

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestErrorKinds checks the number → kind table for every number of
// doc/apple-api.md §9.2-9.4 that has a kind.
func TestErrorKinds(t *testing.T) {
	tests := []struct {
		numbers []int
		kind    error
	}{
		{[]int{9621}, ErrTokenExpired},
		{[]int{9625}, ErrTokenRevoked},
		{[]int{9622, 9601, 9722}, ErrTokenInvalid},
		{[]int{9709}, ErrNotEnoughLicenses},
		{[]int{9609}, ErrUnknownUser},
		{[]int{9707, 9628}, ErrNotDeviceAssignable},
		{[]int{9706}, ErrNotRevocable},
		{[]int{9721}, ErrBadVersion},
		{[]int{9700, 9701, 9702, 9714}, ErrLimitExceeded},
		{[]int{9703, 9704, 9705, 9715}, ErrDuplicate},
		{[]int{9708}, ErrEventNotFound},
		{[]int{9650}, ErrBadPageIndex},
		{[]int{9602, 9623, 9710, 9711, 9712, 9713, 9717, 9718, 9719, 9720, 9723, 9724, 9725, 9726, 9727}, ErrInvalidRequest},
		{[]int{9728}, ErrNotificationUnreachable},
		{[]int{9637, 9647}, ErrForbidden},
		{[]int{9634}, ErrServiceGone},
		{[]int{9603}, ErrInternal},
		{[]int{9716}, ErrUserExists},
		{[]int{9635, 9641}, ErrAppleAccountConflict},
		{[]int{9644}, ErrMaintenance},
		{[]int{9616}, ErrAlreadyAssigned},
		{[]int{9619}, ErrNotAssociated},
		{[]int{9630, 9631, 9632}, ErrRepeatedRequest},
		{[]int{9646, 9729}, ErrThrottled},
	}
	all := map[error]bool{}
	for _, tt := range tests {
		all[tt.kind] = true
	}
	for _, tt := range tests {
		for _, n := range tt.numbers {
			err := fmt.Errorf("context: %w", &Error{Number: n, Message: "m", HTTPStatus: 400, Endpoint: "GET /x"})
			for k := range all {
				if got, want := errors.Is(err, k), k == tt.kind; got != want {
					t.Errorf("errors.Is(error %d, %v) = %v, want %v", n, k, got, want)
				}
			}
		}
	}
	unknown := &Error{Number: 9999, Message: "Something new", HTTPStatus: 400, Endpoint: "GET /assets"}
	for k := range all {
		if errors.Is(unknown, k) {
			t.Errorf("unknown number matches %v", k)
		}
	}
	if got, want := unknown.Error(), "apple: GET /assets: error 9999 (HTTP 400): Something new"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ErrorNumber(fmt.Errorf("x: %w", unknown)) != 9999 {
		t.Error("ErrorNumber lost the number")
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&Error{HTTPStatus: 502, Message: "Bad Gateway", Endpoint: "GET /assets"}, "apple: GET /assets: HTTP 502: Bad Gateway"},
		{&Error{Number: 9709}, "apple: error 9709: not enough licenses"},
		{&ClaimedError{Manager: MDMInfo{ID: "other", Name: "Other MDM", Metadata: "1.0"}, Ours: "ours", Endpoint: "GET /assets"},
			`apple: GET /assets: content token is claimed by another manager "Other MDM" (id "other", metadata "1.0"); ours is "ours"`},
		{&TransportError{Endpoint: "POST /assets/associate", Attempts: 1, MayHaveReachedApple: true, Err: errors.New("EOF")},
			"apple: POST /assets/associate: no answer after 1 attempt(s) (the request may have reached Apple): EOF"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestClaimedAndThrottleErrors(t *testing.T) {
	ce := fmt.Errorf("wrapped: %w", &ClaimedError{Manager: MDMInfo{ID: "x"}})
	if !errors.Is(ce, ErrClaimedElsewhere) || !IsTokenUnusable(ce) || IsTransient(ce) {
		t.Error("ClaimedError classification wrong")
	}
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	apiErr := &Error{Number: 9646, HTTPStatus: 429}
	te := fmt.Errorf("wrapped: %w", &ThrottleError{Until: until, Scope: ScopeAccount, Number: 9646, HTTPStatus: 429, Err: apiErr, Endpoint: "GET /assets"})
	if !errors.Is(te, ErrThrottled) || !IsTransient(te) {
		t.Error("ThrottleError classification wrong")
	}
	if got, ok := ThrottledUntil(te); !ok || !got.Equal(until) {
		t.Errorf("ThrottledUntil = %v, %v", got, ok)
	}
	if ae, ok := errors.AsType[*Error](te); !ok || ae.Number != 9646 {
		t.Error("ThrottleError does not unwrap to Apple's error")
	}
	if ErrorNumber(te) != 9646 {
		t.Error("ErrorNumber(throttle) wrong")
	}
	lookupTE := &ThrottleError{Until: until, Scope: ScopeLookup}
	if _, ok := ThrottledUntil(lookupTE); ok {
		t.Error("a lookup throttle must not hold the account")
	}
	if _, ok := ThrottledUntil(errors.New("x")); ok {
		t.Error("ThrottledUntil on a plain error")
	}
	if !strings.Contains((&ThrottleError{Until: until, Scope: ScopeAccount, Local: true, Endpoint: "GET /x", Reason: "r"}).Error(), "not sent") {
		t.Error("local throttle error should say the request was not sent")
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&TransportError{Err: errors.New("x")}, true},
		{&Error{Number: 9603, HTTPStatus: 500}, true},
		{&Error{HTTPStatus: 502}, true},
		{&Error{Number: 9644}, true},
		{&Error{Number: 9709}, false},
		{&Error{Number: 9621, HTTPStatus: 401}, false},
		{nil, false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	for _, n := range []int{9621, 9625, 9622, 9601, 9722} {
		if !IsTokenUnusable(&Error{Number: n}) {
			t.Errorf("IsTokenUnusable(%d) = false", n)
		}
	}
}
