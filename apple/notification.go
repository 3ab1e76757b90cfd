package apple

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Notification is a push from Apple to our notificationUrl (doc/apple-api.md §8).
// Exactly one of the typed payloads is set for the known types; for other
// types (SUBSCRIPTION_*, UNLIMITED_ASSET, future ones) only Payload is.
type Notification struct {
	NotificationID   string `json:"notificationId"`
	NotificationType string `json:"notificationType"`
	UID              string `json:"uId,omitempty"`
	// Payload is the raw "notification" object, kept for every type.
	Payload json.RawMessage `json:"notification,omitempty"`

	AssetCount      *AssetCountNotification      `json:"-"`
	AssetManagement *AssetManagementNotification `json:"-"`
	UserManagement  *UserManagementNotification  `json:"-"`
	UserAssociated  *UserAssociatedNotification  `json:"-"`
	// Test is set for TEST_NOTIFICATION (sent when the URL is configured).
	Test bool `json:"-"`
}

// AssetCountNotification: licenses were bought, transferred or refunded;
// CountDelta changes the asset's total count.
type AssetCountNotification struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam"`
	CountDelta   int    `json:"countDelta"`
	// Invalid is set when countDelta was no JSON integer that fits CountDelta (see
	// Plausible); CountDelta is 0 then.
	Invalid bool `json:"-"`
}

// AssetManagementNotification: an associate, disassociate or revoke completed
// (or a user changed something). Result is ResultSuccess or ResultFailure; on
// failure Error says why for all the listed assignments.
type AssetManagementNotification struct {
	Type        string       `json:"type"`
	Result      string       `json:"result"`
	EventID     string       `json:"eventId"`
	Assignments []Assignment `json:"assignments"`
	Error       *Error       `json:"-"`
}

// UserManagementNotification: a create, update or retire completed.
type UserManagementNotification struct {
	Type    string `json:"type"`
	Result  string `json:"result"`
	EventID string `json:"eventId"`
	Users   []User `json:"users"`
	Error   *Error `json:"-"`
}

// UserAssociatedNotification: users accepted their invitation.
type UserAssociatedNotification struct {
	AssociatedUsers []User `json:"associatedUsers"`
}

// maxNotificationBytes bounds what ParseNotification accepts (a notification
// carries at most 100 elements).
const maxNotificationBytes = 4 << 20

// Errors of ParseNotification.
var (
	ErrNotificationMalformed = errors.New("apple: malformed notification")
)

type wireNotificationError struct {
	ErrorNumber  flexInt    `json:"errorNumber"`
	ErrorMessage string     `json:"errorMessage"`
	ErrorInfo    *ErrorInfo `json:"errorInfo"`
}

func (w *wireNotificationError) err() *Error {
	if w == nil || (w.ErrorNumber == 0 && w.ErrorMessage == "") {
		return nil
	}
	return &Error{Number: int(w.ErrorNumber), Message: w.ErrorMessage, Info: w.ErrorInfo}
}

// ParseNotification decodes a notification body. It requires notificationId
// (needed to deduplicate) and notificationType; payloads of unknown types are
// kept raw in Payload. Errors wrap ErrNotificationMalformed.
func ParseNotification(body []byte) (*Notification, error) {
	if len(body) > maxNotificationBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotificationMalformed, len(body))
	}
	var env struct {
		NotificationID   flexString      `json:"notificationId"`
		NotificationType string          `json:"notificationType"`
		UID              flexString      `json:"uId"`
		Notification     json.RawMessage `json:"notification"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotificationMalformed, describeJSONError(err))
	}
	n := &Notification{
		NotificationID:   strings.TrimSpace(string(env.NotificationID)),
		NotificationType: strings.TrimSpace(env.NotificationType),
		UID:              string(env.UID),
		Payload:          env.Notification,
	}
	if n.NotificationID == "" {
		return nil, fmt.Errorf("%w: no notificationId", ErrNotificationMalformed)
	}
	if len(n.NotificationID) > MaxNotificationIDLength || !printableASCII(n.NotificationID) {
		return nil, fmt.Errorf("%w: notificationId is not 1 to %d printable ASCII characters", ErrNotificationMalformed, MaxNotificationIDLength)
	}
	if len(n.NotificationType) > 64 || !printableASCII(n.NotificationType) {
		return nil, fmt.Errorf("%w: notificationType is not a type name", ErrNotificationMalformed)
	}
	if n.NotificationType == "" {
		return nil, fmt.Errorf("%w: no notificationType", ErrNotificationMalformed)
	}
	payload := env.Notification
	if len(payload) == 0 || string(payload) == "null" {
		payload = []byte("{}")
	}
	bad := func(err error) (*Notification, error) {
		return nil, fmt.Errorf("%w: %s payload: %s", ErrNotificationMalformed, n.NotificationType, describeJSONError(err))
	}
	switch n.NotificationType {
	case NotificationTest:
		n.Test = true
	case NotificationAssetCount:
		var w struct {
			AdamID       flexString      `json:"adamId"`
			PricingParam string          `json:"pricingParam"`
			CountDelta   json.RawMessage `json:"countDelta"`
		}
		if err := json.Unmarshal(payload, &w); err != nil {
			return bad(err)
		}
		// countDelta must be a number; one that is no integer (a fraction, null, none at
		// all) or none that fits is kept as implausible (a full pass reads the counts) rather
		// than refused: Apple would only deliver it again.
		if d := strings.TrimSpace(string(w.CountDelta)); d != "" && strings.ContainsAny(d[:1], `"{[tf`) {
			return bad(errors.New("countDelta is not a number"))
		}
		c := &AssetCountNotification{AdamID: string(w.AdamID), PricingParam: w.PricingParam}
		if d, err := strconv.ParseInt(string(w.CountDelta), 10, 64); err == nil && d >= math.MinInt32 && d <= math.MaxInt32 {
			c.CountDelta = int(d)
		} else {
			c.Invalid = true
		}
		n.AssetCount = c
	case NotificationAssetManagement:
		var w struct {
			AssetManagementNotification
			Error *wireNotificationError `json:"error"`
		}
		if err := json.Unmarshal(payload, &w); err != nil {
			return bad(err)
		}
		am := w.AssetManagementNotification
		am.Error = w.Error.err()
		canonicalSerials(am.Assignments)
		n.AssetManagement = &am
	case NotificationUserManagement:
		var w struct {
			UserManagementNotification
			Error *wireNotificationError `json:"error"`
		}
		if err := json.Unmarshal(payload, &w); err != nil {
			return bad(err)
		}
		um := w.UserManagementNotification
		um.Error = w.Error.err()
		n.UserManagement = &um
	case NotificationUserAssociated:
		var w UserAssociatedNotification
		if err := json.Unmarshal(payload, &w); err != nil {
			return bad(err)
		}
		n.UserAssociated = &w
	}
	return n, nil
}

// VerifyNotificationAuth checks the Authorization header of a notification
// against the shared secret configured with SetClientConfig: it must be
// "Bearer <secret>" (scheme case-insensitive). The comparison takes the same
// time whatever the header, and an empty secret never verifies.
func VerifyNotificationAuth(authorizationHeader, secret string) bool {
	if secret == "" {
		return false
	}
	const prefix = "bearer "
	h := strings.TrimSpace(authorizationHeader)
	got := ""
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		got = strings.TrimSpace(h[len(prefix):])
	}
	// Compare fixed-size digests so that neither the content nor the length
	// of the secret leaks through timing.
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(secret))
	eq := subtle.ConstantTimeCompare(a[:], b[:]) == 1
	return eq && got != ""
}

// Deduper remembers the notificationIds seen recently, because Apple delivers
// notifications up to 3 times (and a large job produces duplicates). It is
// bounded in size and age and safe for concurrent use. The zero value is
// ready to use with the defaults of NewDeduper.
type Deduper struct {
	once     sync.Once
	capacity int
	ttl      time.Duration
	seen     *ttlLRU[string, struct{}]
	now      func() time.Time
}

// NewDeduper returns a Deduper that keeps at most capacity ids (default
// 100000), each for ttl (default 24h; Apple retries within minutes).
func NewDeduper(capacity int, ttl time.Duration) *Deduper {
	return &Deduper{capacity: capacity, ttl: ttl}
}

func (d *Deduper) init() {
	d.once.Do(func() {
		if d.capacity <= 0 {
			d.capacity = 100_000
		}
		if d.ttl <= 0 {
			d.ttl = 24 * time.Hour
		}
		if d.now == nil {
			d.now = time.Now
		}
		d.seen = newTTLLRU[string, struct{}](d.capacity, d.ttl)
	})
}

// Seen records id and reports whether it had been seen already (then the
// notification is a duplicate and must be skipped). Checking and recording
// are one atomic step, so two concurrent deliveries cannot both pass.
func (d *Deduper) Seen(id string) bool {
	d.init()
	return d.seen.addIfAbsent(id, struct{}{}, d.now())
}

// Forget removes id, so that a redelivery is processed: call it when handling
// a notification failed after Seen returned false.
func (d *Deduper) Forget(id string) {
	d.init()
	d.seen.remove(id)
}

// Len returns the number of remembered ids.
func (d *Deduper) Len() int {
	d.init()
	return d.seen.len()
}
