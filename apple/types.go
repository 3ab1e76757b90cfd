package apple

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Values of Apple's enumerations (doc/apple-api.md §5, §6, §8). They are plain
// strings on the wire; the constants exist so callers need not spell them.
const (
	PricingSTDQ = "STDQ" // standard quality; the default when a request omits pricingParam (doc/apple-api.md §15)
	PricingPLUS = "PLUS" // "high quality" (historically books)

	ProductApp  = "App"
	ProductBook = "Book"

	EventPending  = "PENDING"
	EventComplete = "COMPLETE"
	EventFailed   = "FAILED"

	EventTypeAssociate    = "ASSOCIATE"
	EventTypeDisassociate = "DISASSOCIATE"
	EventTypeRevoke       = "REVOKE"
	EventTypeCreate       = "CREATE"
	EventTypeUpdate       = "UPDATE"
	EventTypeRetire       = "RETIRE"

	UserRegistered = "Registered"
	UserAssociated = "Associated"
	UserRetired    = "Retired"
	UserDeleted    = "Deleted"

	NotificationAssetCount      = "ASSET_COUNT"
	NotificationAssetManagement = "ASSET_MANAGEMENT"
	NotificationUserManagement  = "USER_MANAGEMENT"
	NotificationUserAssociated  = "USER_ASSOCIATED"
	NotificationTest            = "TEST_NOTIFICATION"

	ResultSuccess = "SUCCESS"
	ResultFailure = "FAILURE"

	// UnlimitedCount is the totalCount Apple reports for an unlimited (free)
	// asset when the request did not ask for unlimited assets separately.
	UnlimitedCount = math.MaxInt32
)

// MDMInfo identifies a device-management service that has claimed a token
// (POST /client/config). Apple echoes it on every answer once it is set.
type MDMInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Metadata string `json:"metadata"`
}

// Envelope holds the fields Apple adds to every authenticated answer (doc/apple-api.md §2).
type Envelope struct {
	// UID is the library (organisational unit) id; two tokens with the same
	// UID point at the same library.
	UID string `json:"uId,omitempty"`
	// TokenExpirationDate is zero when Apple left the field out (it may do so
	// unless the token expires within 15 days, doc/apple-api.md §15).
	TokenExpirationDate time.Time `json:"tokenExpirationDate,omitzero"`
	// MDMInfo is nil when no manager has claimed the token.
	MDMInfo *MDMInfo `json:"mdmInfo,omitempty"`
}

// AssetRef names an asset in requests and error details: the pair
// (adamId, pricingParam). An empty PricingParam means STDQ (doc/apple-api.md §15).
type AssetRef struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam,omitempty"`
}

// normalized returns the reference with the default pricing param spelled out,
// so that "" and "STDQ" compare equal.
func (a AssetRef) normalized() AssetRef {
	if a.PricingParam == "" {
		a.PricingParam = PricingSTDQ
	}
	return a
}

// ErrorInfo lists the entities an error applies to (doc/apple-api.md §9.1).
type ErrorInfo struct {
	Assets        []AssetRef `json:"assets,omitempty"`
	ClientUserIDs []string   `json:"clientUserIds,omitempty"`
	SerialNumbers []string   `json:"serialNumbers,omitempty"`
}

// Asset is one purchased app or book of a library (ResponseAsset, doc/apple-api.md §5.1).
type Asset struct {
	AdamID             string   `json:"adamId"`
	PricingParam       string   `json:"pricingParam"`
	ProductType        string   `json:"productType"`
	AssignedCount      int      `json:"assignedCount"`
	AvailableCount     int      `json:"availableCount"`
	RetiredCount       int      `json:"retiredCount"`
	TotalCount         int      `json:"totalCount"`
	DeviceAssignable   bool     `json:"deviceAssignable"`
	Revocable          bool     `json:"revocable"`
	SupportedPlatforms []string `json:"supportedPlatforms,omitempty"`
	// Unlimited is set for entries of unlimitedAssets (which carry no counts);
	// see also IsUnlimited.
	Unlimited bool `json:"-"`
}

// Ref returns the asset's (adamId, pricingParam) pair.
func (a Asset) Ref() AssetRef { return AssetRef{AdamID: a.AdamID, PricingParam: a.PricingParam} }

// IsUnlimited reports whether the asset is unlimited: listed in
// unlimitedAssets, or reported with totalCount 2147483647 (doc/apple-api.md §5.2).
func (a Asset) IsUnlimited() bool { return a.Unlimited || a.TotalCount == UnlimitedCount }

// Assignment is one license held by a user (ClientUserID) or a device
// (SerialNumber) (doc/apple-api.md §5.1). IDHash and UserStatus are set only when the query
// asked for includeUserState.
type Assignment struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam"`
	ClientUserID string `json:"clientUserId,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
	IDHash       string `json:"idHash,omitempty"`
	UserStatus   string `json:"userStatus,omitempty"`
	// Removed is set when a sinceVersionId delta reports that this assignment
	// no longer exists. Apple documents no such marker; by default (doc/apple-api.md §15) a
	// removed assignment simply stops appearing, so callers must still find
	// removals with periodic full syncs.
	Removed bool `json:"removed,omitempty"`
}

// User is one registered user of a library (ResponseUser, doc/apple-api.md §6.1).
type User struct {
	ClientUserID   string `json:"clientUserId"`
	Email          string `json:"email,omitempty"`
	IDHash         string `json:"idHash,omitempty"`
	InviteCode     string `json:"inviteCode,omitempty"`
	Status         string `json:"status,omitempty"`
	ManagedAppleID string `json:"managedAppleId,omitempty"`
	// Removed: see Assignment.Removed.
	Removed bool `json:"removed,omitempty"`
}

// RequestUser is a user in create/update/retire requests (doc/apple-api.md §6.1).
type RequestUser struct {
	ClientUserID   string `json:"clientUserId"`
	Email          string `json:"email,omitempty"`
	ManagedAppleID string `json:"managedAppleId,omitempty"`
}

// timeLayouts are the forms of ISO-8601 Apple has been seen to use: numeric
// offsets without a colon (`+0000`, the token file and most examples), and
// RFC 3339.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05.999999999Z0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z07",
	"2006-01-02 15:04:05Z0700",
}

// parseAppleTime parses an Apple timestamp in any of timeLayouts and returns it
// in UTC.
func parseAppleTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// flexInt decodes a JSON number or a numeric string; anything else decodes to
// zero without failing the surrounding document. It is used for fields whose
// type a lenient reader should not insist on (error numbers).
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	s = strings.Trim(s, `"`)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= math.MinInt32 && v <= math.MaxInt32 {
		*n = flexInt(v)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= math.MinInt32 && f <= math.MaxInt32 {
		*n = flexInt(int(f))
		return nil
	}
	*n = 0
	return nil
}

// flexString decodes a JSON string or a number (kept in its textual form).
// Notification adamIds are strings for apps but integers for subscriptions.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n.String())
	return nil
}

// wireHeader is the part every answer shares: the ErrorResponse fields (which
// may come with any HTTP status) and the envelope (doc/apple-api.md §2, §9.1).
type wireHeader struct {
	ErrorNumber         flexInt    `json:"errorNumber"`
	ErrorMessage        string     `json:"errorMessage"`
	ErrorInfo           *ErrorInfo `json:"errorInfo"`
	UID                 string     `json:"uId"`
	TokenExpirationDate string     `json:"tokenExpirationDate"`
	MDMInfo             *MDMInfo   `json:"mdmInfo"`
}

// envelope converts the wire fields; an unparseable tokenExpirationDate is
// treated as absent rather than failing a whole page over a display field.
func (h *wireHeader) envelope() Envelope {
	e := Envelope{UID: h.UID, MDMInfo: h.MDMInfo}
	if t, ok := parseAppleTime(h.TokenExpirationDate); ok {
		e.TokenExpirationDate = t
	}
	return e
}
