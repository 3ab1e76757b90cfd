package apple

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// EventStatus is the state of an asynchronous event (GET /status, doc/apple-api.md §5.6).
type EventStatus struct {
	Envelope
	// EventID is the id asked about (Apple does not echo it).
	EventID string `json:"eventId"`
	// Status is EventPending, EventComplete or EventFailed. FAILED means at
	// least one task failed; the others may have succeeded.
	Status string `json:"eventStatus"`
	// Type is EventTypeAssociate, ..., EventTypeRetire.
	Type     string         `json:"eventType"`
	Failures []EventFailure `json:"failures,omitempty"`
	// NumRequested is the number of tasks (asset × target, or users);
	// NumCompleted counts the successful ones.
	NumCompleted int `json:"numCompleted"`
	NumRequested int `json:"numRequested"`
}

// Pending reports whether Apple is still working on the event. Apple's
// guidance: poll at least 30 s apart; if still pending after 10 minutes, send
// the original request again.
func (s *EventStatus) Pending() bool { return s.Status == EventPending }

// Done reports whether the event finished, successfully or not.
func (s *EventStatus) Done() bool { return s.Status == EventComplete || s.Status == EventFailed }

// EventFailure is one group of failed tasks: an Apple error and the entities
// it applies to.
type EventFailure struct {
	Number  int        `json:"errorNumber"`
	Message string     `json:"errorMessage"`
	Info    *ErrorInfo `json:"errorInfo,omitempty"`
}

// Err returns the failure as an *Error, so that errors.Is(f.Err(),
// ErrNotEnoughLicenses) and the like work.
func (f EventFailure) Err() *Error {
	return &Error{Number: f.Number, Message: f.Message, Info: f.Info}
}

type wireEventStatus struct {
	wireHeader
	EventStatus string `json:"eventStatus"`
	EventType   string `json:"eventType"`
	Failures    []struct {
		ErrorNumber  flexInt    `json:"errorNumber"`
		ErrorMessage string     `json:"errorMessage"`
		ErrorInfo    *ErrorInfo `json:"errorInfo"`
	} `json:"failures"`
	NumCompleted int `json:"numCompleted"`
	NumRequested int `json:"numRequested"`
}

// decodeEventStatus decodes a StatusResponse body.
func decodeEventStatus(b []byte) (*EventStatus, *wireHeader, error) {
	var w wireEventStatus
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	s := &EventStatus{Envelope: w.envelope(), Status: w.EventStatus, Type: w.EventType,
		NumCompleted: w.NumCompleted, NumRequested: w.NumRequested}
	for _, f := range w.Failures {
		s.Failures = append(s.Failures, EventFailure{Number: int(f.ErrorNumber), Message: f.ErrorMessage, Info: f.ErrorInfo})
	}
	return s, &w.wireHeader, nil
}

// EventStatus reads the state of an asynchronous event (GET /status). An
// unknown event fails with ErrEventNotFound (9708).
func (c *Client) EventStatus(ctx context.Context, tok *Token, eventID string) (*EventStatus, error) {
	if eventID == "" {
		return nil, fmt.Errorf("apple: GET /status: %w: empty eventId", ErrInvalidRequest)
	}
	var st *EventStatus
	err := c.getJSON(ctx, tok, "/status", "eventId="+url.QueryEscape(eventID), func(b []byte) (*wireHeader, error) {
		v, hdr, err := decodeEventStatus(b)
		st = v
		return hdr, err
	})
	if st != nil {
		st.EventID = eventID
	}
	return configResult(st, err)
}
