package applesim

// This file holds the JSON shapes that travel over the wire between a client and Apple's
// license API v2, as documented in shared/apple-api.md. They are deliberately private and
// independent of package orchard/apple: the simulator is a second, separate reading of
// Apple's documentation, so a client tested against it is tested against something it did
// not write itself.

import "net/http"

// Error numbers used by the simulator. Apple documents them in its v2 error table
// (synchronous and asynchronous) plus a few legacy numbers that are still seen on v2
// (9616, 9619, 9622, 9644).
const (
	errLoginRequired           = 9601
	errInvalidArgument         = 9602
	errInternal                = 9603
	errUserNotFound            = 9609
	errAlreadyAssigned         = 9616
	errNotAssociated           = 9619
	errTokenExpired            = 9621
	errInvalidToken            = 9622
	errTokenRevoked            = 9625
	errAccountCannotAssociate  = 9635
	errAccountAlreadyLinked    = 9641
	errMaintenanceAsync        = 9644
	errTooManyRequests         = 9646
	errBadPageIndex            = 9650
	errTooManyAssets           = 9700
	errTooManyClientUserIDs    = 9701
	errTooManySerialNumbers    = 9702
	errDuplicateAssets         = 9703
	errDuplicateClientUserIDs  = 9704
	errDuplicateSerialNumbers  = 9705
	errNotRevocable            = 9706
	errNotDeviceAssignable     = 9707
	errEventNotFound           = 9708
	errNotEnoughLicenses       = 9709
	errNotificationPair        = 9710
	errNotificationTooLong     = 9711
	errNotificationNotHTTPS    = 9712
	errMDMMetadataTooLong      = 9713
	errTooManyUsers            = 9714
	errDuplicateUsers          = 9715
	errUserAlreadyExists       = 9716
	errInvalidEmail            = 9717
	errNoAssets                = 9718
	errNoTargets               = 9719
	errNoUsers                 = 9720
	errInvalidVersionID        = 9721
	errBadAuthorizationHeader  = 9722
	errMDMInfoIncomplete       = 9723
	errMDMIDTooLong            = 9724
	errMDMNameTooLong          = 9725
	errUnsupportedMethod       = 9726
	errUnsupportedContentType  = 9727
	errNotificationUnreachable = 9728
	errServiceUnavailable      = 9729
)

// errorDef is one row of the error table: the message Apple sends with a number and the HTTP
// status it documents for the synchronous case.
type errorDef struct {
	message string
	status  int
	// listed says whether the number appears in service config's errorCodes (Apple's current
	// v2 table); legacy numbers are used but not advertised.
	listed bool
}

var errorDefs = map[int]errorDef{
	errLoginRequired:           {"Login required.", http.StatusUnauthorized, true},
	errInvalidArgument:         {"Invalid argument.", http.StatusBadRequest, true},
	errInternal:                {"Internal error.", http.StatusInternalServerError, true},
	errUserNotFound:            {"Unable to find registered user.", http.StatusBadRequest, true},
	errAlreadyAssigned:         {"License already assigned.", http.StatusBadRequest, false},
	errNotAssociated:           {"License not associated.", http.StatusBadRequest, false},
	errTokenExpired:            {"The token has expired. You need to generate a new token online using your organization's account at https://school.apple.com or https://business.apple.com.", http.StatusUnauthorized, true},
	errInvalidToken:            {"Invalid authentication token", http.StatusOK, false},
	9623:                       {"Invalid APNs token.", http.StatusBadRequest, true},
	errTokenRevoked:            {"The server has revoked the sToken.", http.StatusUnauthorized, true},
	9634:                       {"The service is no longer available.", http.StatusGone, true},
	errAccountCannotAssociate:  {"The Apple Account can't be associated with this user.", http.StatusBadRequest, true},
	9637:                       {"This operation isn't allowed for facilitator accounts.", http.StatusForbidden, true},
	errAccountAlreadyLinked:    {"The Apple Account is already associated with another user.", http.StatusBadRequest, true},
	errMaintenanceAsync:        {"The service is in maintenance mode.", http.StatusServiceUnavailable, true},
	errTooManyRequests:         {"There are too many requests for this organization. Back off incrementally or exponentially and retry.", http.StatusTooManyRequests, true},
	9647:                       {"This operation isn't supported for legacy tokens.", http.StatusForbidden, true},
	errBadPageIndex:            {"Invalid page index. The page index must be greater than 0 and less than total pages.", http.StatusBadRequest, true},
	errTooManyAssets:           {"Too many assets in the request.", http.StatusBadRequest, true},
	errTooManyClientUserIDs:    {"Too many clientUserIds in the request.", http.StatusBadRequest, true},
	errTooManySerialNumbers:    {"Too many serialNumbers in the request.", http.StatusBadRequest, true},
	errDuplicateAssets:         {"The request contains duplicate assets.", http.StatusBadRequest, true},
	errDuplicateClientUserIDs:  {"The request contains duplicate clientUserIds.", http.StatusBadRequest, true},
	errDuplicateSerialNumbers:  {"The request contains duplicate serialNumbers.", http.StatusBadRequest, true},
	errNotRevocable:            {"The asset isn't revocable.", http.StatusBadRequest, true},
	errNotDeviceAssignable:     {"The asset isn't device assignable.", http.StatusBadRequest, true},
	errEventNotFound:           {"Event ID not found.", http.StatusBadRequest, true},
	errNotEnoughLicenses:       {"There aren't enough assets available to complete this association.", http.StatusBadRequest, true},
	errNotificationPair:        {"The notification URL and the notification auth token are both required.", http.StatusBadRequest, true},
	errNotificationTooLong:     {"The notification URL or notification auth token is too long.", http.StatusBadRequest, true},
	errNotificationNotHTTPS:    {"The notification URL must be a valid HTTPS URL.", http.StatusBadRequest, true},
	errMDMMetadataTooLong:      {"The mdmInfo metadata is too long.", http.StatusBadRequest, true},
	errTooManyUsers:            {"Too many users in the request.", http.StatusBadRequest, true},
	errDuplicateUsers:          {"The request contains duplicate users.", http.StatusBadRequest, true},
	errUserAlreadyExists:       {"A registered user already exists for this clientUserId.", http.StatusBadRequest, true},
	errInvalidEmail:            {"Invalid email address.", http.StatusBadRequest, true},
	errNoAssets:                {"The request must contain at least one asset.", http.StatusBadRequest, true},
	errNoTargets:               {"The request must contain clientUserIds or serialNumbers.", http.StatusBadRequest, true},
	errNoUsers:                 {"The request must contain users.", http.StatusBadRequest, true},
	errInvalidVersionID:        {"Invalid versionId.", http.StatusBadRequest, true},
	errBadAuthorizationHeader:  {"Invalid authorization header. The header must match the format 'Bearer {sToken}'.", http.StatusUnauthorized, true},
	errMDMInfoIncomplete:       {"The mdmInfo must contain a name, id, and metadata.", http.StatusBadRequest, true},
	errMDMIDTooLong:            {"The mdmInfo id is too long.", http.StatusBadRequest, true},
	errMDMNameTooLong:          {"The mdmInfo name is too long.", http.StatusBadRequest, true},
	errUnsupportedMethod:       {"Unsupported HTTP method.", http.StatusMethodNotAllowed, true},
	errUnsupportedContentType:  {"Unsupported Content-Type. Use application/json.", http.StatusUnsupportedMediaType, true},
	errNotificationUnreachable: {"The notification URL is unreachable.", http.StatusBadRequest, true},
	errServiceUnavailable:      {"The service is temporarily unavailable. Try again later.", http.StatusServiceUnavailable, true},
}

// errorMessage returns Apple's message for an error number.
func errorMessage(number int) string {
	if d, ok := errorDefs[number]; ok {
		return d.message
	}
	return "Unknown error."
}

// errorStatus returns the HTTP status Apple documents for a synchronous error number.
func errorStatus(number int) int {
	if d, ok := errorDefs[number]; ok {
		return d.status
	}
	return http.StatusBadRequest
}

// Notification types (doc/apple-api.md §8). TEST_NOTIFICATION is sent on configuration and is not
// subscribable.
const (
	notifAssetManagement = "ASSET_MANAGEMENT"
	notifUserManagement  = "USER_MANAGEMENT"
	notifUserAssociated  = "USER_ASSOCIATED"
	notifAssetCount      = "ASSET_COUNT"
	notifTest            = "TEST_NOTIFICATION"
)

// subscribableTypes is what service config advertises in notificationTypes, and what a
// client may subscribe to.
var subscribableTypes = []string{notifAssetManagement, notifUserManagement, notifUserAssociated, notifAssetCount}

// Event types (StatusResponse.eventType and the "type" of management notifications).
const (
	eventAssociate    = "ASSOCIATE"
	eventDisassociate = "DISASSOCIATE"
	eventRevoke       = "REVOKE"
	eventCreate       = "CREATE"
	eventUpdate       = "UPDATE"
	eventRetire       = "RETIRE"
)

// Event states.
const (
	statusPending  = "PENDING"
	statusComplete = "COMPLETE"
	statusFailed   = "FAILED"
)

// User states.
const (
	userRegistered = "Registered"
	userAssociated = "Associated"
	userRetired    = "Retired"
)

// unlimitedCount is the totalCount Apple reports for unlimited (free) assets when the
// unlimited query parameter is omitted: int32 max.
const unlimitedCount = 2147483647

// expDateLayout is the layout of expDate in token files and of tokenExpirationDate in
// responses: ISO-8601 with a numeric offset without colon, always UTC here (+0000).
const expDateLayout = "2006-01-02T15:04:05-0700"

type wireAsset struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam,omitempty"`
}

type wireErrorInfo struct {
	Assets        []wireAsset `json:"assets,omitempty"`
	ClientUserIDs []string    `json:"clientUserIds,omitempty"`
	SerialNumbers []string    `json:"serialNumbers,omitempty"`
}

type wireError struct {
	ErrorNumber  int            `json:"errorNumber"`
	ErrorMessage string         `json:"errorMessage"`
	ErrorInfo    *wireErrorInfo `json:"errorInfo,omitempty"`
}

type wireMDMInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Metadata string `json:"metadata"`
}

// envelope is the part common to every authenticated success response (doc/apple-api.md §2).
type envelope struct {
	UID                 string       `json:"uId,omitempty"`
	TokenExpirationDate string       `json:"tokenExpirationDate,omitempty"`
	MDMInfo             *wireMDMInfo `json:"mdmInfo,omitempty"`
}

type wireServiceConfig struct {
	ErrorCodes        []wireError       `json:"errorCodes"`
	Limits            map[string]int    `json:"limits"`
	NotificationTypes []string          `json:"notificationTypes"`
	URLs              map[string]string `json:"urls"`
}

type wireClientConfig struct {
	CountryISO2ACode            string       `json:"countryISO2ACode,omitempty"`
	DefaultPlatform             string       `json:"defaultPlatform,omitempty"`
	LocationName                string       `json:"locationName,omitempty"`
	NotificationAuthToken       string       `json:"notificationAuthToken,omitempty"`
	NotificationURL             string       `json:"notificationUrl,omitempty"`
	SubscribedNotificationTypes []string     `json:"subscribedNotificationTypes,omitempty"`
	WebsiteURL                  string       `json:"websiteURL,omitempty"`
	MDMInfo                     *wireMDMInfo `json:"mdmInfo,omitempty"`
	UID                         string       `json:"uId,omitempty"`
	TokenExpirationDate         string       `json:"tokenExpirationDate,omitempty"`
}

// wireClientConfigRequest uses pointers so that "absent" and "empty" can be told apart:
// POST client/config sets the fields present and leaves the others (doc/apple-api.md §4.2).
type wireClientConfigRequest struct {
	MDMInfo               *wireMDMInfoRequest `json:"mdmInfo"`
	NotificationURL       *string             `json:"notificationUrl"`
	NotificationAuthToken *string             `json:"notificationAuthToken"`
	NotificationTypes     *[]string           `json:"notificationTypes"`
}

type wireMDMInfoRequest struct {
	ID       *string `json:"id"`
	Name     *string `json:"name"`
	Metadata *string `json:"metadata"`
}

type wireResponseAsset struct {
	AdamID             string   `json:"adamId"`
	PricingParam       string   `json:"pricingParam"`
	ProductType        string   `json:"productType"`
	AssignedCount      int      `json:"assignedCount"`
	AvailableCount     *int     `json:"availableCount,omitempty"`
	RetiredCount       *int     `json:"retiredCount,omitempty"`
	TotalCount         *int     `json:"totalCount,omitempty"`
	DeviceAssignable   bool     `json:"deviceAssignable"`
	Revocable          bool     `json:"revocable"`
	SupportedPlatforms []string `json:"supportedPlatforms"`
}

type wireAssetsPage struct {
	Assets          []wireResponseAsset `json:"assets"`
	UnlimitedAssets []wireResponseAsset `json:"unlimitedAssets,omitempty"`
	wirePage
	envelope
}

// wirePage holds the pagination fields shared by the three paginated listings.
type wirePage struct {
	CurrentPageIndex int    `json:"currentPageIndex"`
	NextPageIndex    *int   `json:"nextPageIndex,omitempty"`
	Size             int    `json:"size"`
	TotalPages       int    `json:"totalPages"`
	VersionID        string `json:"versionId"`
}

type wireUser struct {
	ClientUserID string `json:"clientUserId"`
	Email        string `json:"email,omitempty"`
	IDHash       string `json:"idHash,omitempty"`
	InviteCode   string `json:"inviteCode,omitempty"`
	Status       string `json:"status,omitempty"` // absent only for the users of a failure notification
}

type wireUsersPage struct {
	Users []wireUser `json:"users"`
	wirePage
	envelope
}

type wireManageAssetsRequest struct {
	Assets        []wireAsset `json:"assets"`
	ClientUserIDs []string    `json:"clientUserIds"`
	SerialNumbers []string    `json:"serialNumbers"`
}

type wireRevokeRequest struct {
	ClientUserIDs []string `json:"clientUserIds"`
	SerialNumbers []string `json:"serialNumbers"`
}

type wireRequestUser struct {
	ClientUserID   string `json:"clientUserId"`
	Email          string `json:"email,omitempty"`
	ManagedAppleID string `json:"managedAppleId,omitempty"`
}

type wireManageUsersRequest struct {
	Users []wireRequestUser `json:"users"`
}

type wireEventResponse struct {
	EventID string `json:"eventId"`
	envelope
}

type wireStatusResponse struct {
	EventStatus  string      `json:"eventStatus"`
	EventType    string      `json:"eventType"`
	Failures     []wireError `json:"failures,omitempty"`
	NumCompleted int         `json:"numCompleted"`
	NumRequested int         `json:"numRequested"`
	envelope
}

// wireNotificationAssignment is one element of an ASSET_MANAGEMENT notification.
type wireNotificationAssignment struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam"`
	SerialNumber string `json:"serialNumber,omitempty"`
	ClientUserID string `json:"clientUserId,omitempty"`
}

type wireNotification struct {
	NotificationID   string `json:"notificationId"`
	NotificationType string `json:"notificationType"`
	UID              string `json:"uId"`
	Notification     any    `json:"notification"`
}

type wireAssetManagementNotification struct {
	Type        string                       `json:"type"`
	Result      string                       `json:"result"`
	EventID     string                       `json:"eventId"`
	Assignments []wireNotificationAssignment `json:"assignments"`
	Error       *wireError                   `json:"error,omitempty"`
}

type wireUserManagementNotification struct {
	Type    string     `json:"type"`
	Result  string     `json:"result"`
	EventID string     `json:"eventId"`
	Users   []wireUser `json:"users"`
	Error   *wireError `json:"error,omitempty"`
}

type wireUserAssociatedNotification struct {
	AssociatedUsers []wireUser `json:"associatedUsers"`
}

type wireAssetCountNotification struct {
	AdamID       string `json:"adamId"`
	PricingParam string `json:"pricingParam"`
	CountDelta   int    `json:"countDelta"`
}

// wireTokenFile is the decoded content of a .vpptoken file (doc/apple-api.md §1.1).
type wireTokenFile struct {
	Token   string `json:"token"`
	ExpDate string `json:"expDate"`
	OrgName string `json:"orgName"`
}
