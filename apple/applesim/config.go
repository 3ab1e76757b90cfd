package applesim

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
)

// Service config and client config (doc/apple-api.md §3, §4).

// baseURL is the scheme and host the request came to, so that service config's URLs point
// back at this simulator whatever address it listens on.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// serviceConfig serves GET /service/config: error codes, limits, notification types and the
// endpoint URLs, built from the request's host. contentMetadataLookup points at this
// simulator's /lookup and invitationEmail at the control API's invitation page, which
// associates the invited user.
func (c *call) serviceConfig() {
	base := baseURL(c.r)
	v2 := base + "/mdm/v2"
	var codes []wireError
	for n, d := range errorDefs {
		if d.listed {
			codes = append(codes, wireError{ErrorNumber: n, ErrorMessage: d.message})
		}
	}
	sort.Slice(codes, func(i, j int) bool { return codes[i].ErrorNumber < codes[j].ErrorNumber })
	writeJSON(c.w, 200, wireServiceConfig{
		ErrorCodes:        codes,
		Limits:            c.s.Limits().wireMap(),
		NotificationTypes: subscribableTypes,
		URLs: map[string]string{
			"getAssets":             v2 + "/assets",
			"getAssignments":        v2 + "/assignments",
			"associateAssets":       v2 + "/assets/associate",
			"disassociateAssets":    v2 + "/assets/disassociate",
			"revokeAssets":          v2 + "/assets/revoke",
			"eventStatus":           v2 + "/status",
			"getUsers":              v2 + "/users",
			"createUsers":           v2 + "/users/create",
			"updateUsers":           v2 + "/users/update",
			"retireUsers":           v2 + "/users/retire",
			"clientConfig":          v2 + "/client/config",
			"contentMetadataLookup": base + "/lookup",
			"invitationEmail":       base + "/_sim/invite?inviteCode=%25inviteCode%25",
		},
	})
}

// clientConfig renders the token's client config. Callers hold t.mu.
func (c *call) clientConfig() wireClientConfig {
	t := c.t
	e := t.envelope(c.s, c.now)
	return wireClientConfig{
		CountryISO2ACode: t.country, DefaultPlatform: t.platform, LocationName: t.location,
		NotificationAuthToken: t.notifyAuth, NotificationURL: t.notifyURL,
		SubscribedNotificationTypes: slices.Clone(t.notifyTypes), WebsiteURL: t.website,
		MDMInfo: e.MDMInfo, UID: e.UID, TokenExpirationDate: e.TokenExpirationDate,
	}
}

func (c *call) getClientConfig() {
	c.t.mu.RLock()
	resp := c.clientConfig()
	c.t.mu.RUnlock()
	writeJSON(c.w, 200, resp)
}

// validNotificationURL requires an absolute https URL with a host. Deviation from Apple, for
// tests and the demo: http is also accepted for loopback hosts (127.0.0.1, ::1, localhost).
func validNotificationURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// postClientConfig serves POST /client/config. Fields present are set, absent ones kept;
// notificationTypes replaces the subscription. mdmInfo needs id, name and metadata (9723)
// within their lengths (9724, 9725, 9713); notificationUrl and notificationAuthToken come
// together (9710), within maxNotificationLength (9711), the URL valid https (9712). Both
// empty clears the notification configuration. A new URL receives a TEST_NOTIFICATION first;
// if that fails, nothing is stored and the answer is 9728.
func (c *call) postClientConfig() {
	var req wireClientConfigRequest
	if _, ok := c.decodeBody(&req); !ok {
		return
	}
	lim := c.s.Limits()
	if m := req.MDMInfo; m != nil {
		switch {
		case m.ID == nil || m.Name == nil || m.Metadata == nil || *m.ID == "" || *m.Name == "":
			writeError(c.w, errMDMInfoIncomplete, nil)
			return
		case len(*m.ID) > lim.MaxMDMIDLength:
			writeError(c.w, errMDMIDTooLong, nil)
			return
		case len(*m.Name) > lim.MaxMDMNameLength:
			writeError(c.w, errMDMNameTooLong, nil)
			return
		case len(*m.Metadata) > lim.MaxMDMMetadataLength:
			writeError(c.w, errMDMMetadataTooLong, nil)
			return
		}
	}
	hasURL, hasAuth := req.NotificationURL != nil && *req.NotificationURL != "", req.NotificationAuthToken != nil && *req.NotificationAuthToken != ""
	clearing := req.NotificationURL != nil && req.NotificationAuthToken != nil && !hasURL && !hasAuth
	if !clearing && (req.NotificationURL != nil || req.NotificationAuthToken != nil) {
		switch {
		case !hasURL || !hasAuth:
			writeError(c.w, errNotificationPair, nil)
			return
		case len(*req.NotificationURL) > lim.MaxNotificationLength || len(*req.NotificationAuthToken) > lim.MaxNotificationLength:
			writeError(c.w, errNotificationTooLong, nil)
			return
		case !validNotificationURL(*req.NotificationURL):
			writeError(c.w, errNotificationNotHTTPS, nil)
			return
		}
	}
	if req.NotificationTypes != nil {
		for _, typ := range *req.NotificationTypes {
			if !slices.Contains(subscribableTypes, typ) {
				writeError(c.w, errInvalidArgument, nil)
				return
			}
		}
	}
	t := c.t
	if hasURL {
		id := newUUID()
		body, _ := json.Marshal(wireNotification{NotificationID: id, NotificationType: notifTest, UID: t.uid, Notification: struct{}{}})
		o := &outgoing{uid: t.uid, url: *req.NotificationURL, auth: *req.NotificationAuthToken, id: id, typ: notifTest, body: body}
		if err := c.s.notifier.deliver(o, 1); err != nil {
			writeError(c.w, errNotificationUnreachable, nil)
			return
		}
	}
	t.mu.Lock()
	if m := req.MDMInfo; m != nil {
		t.mdm = &wireMDMInfo{ID: *m.ID, Name: *m.Name, Metadata: *m.Metadata}
	}
	switch {
	case clearing:
		t.notifyURL, t.notifyAuth = "", ""
	case hasURL:
		t.notifyURL, t.notifyAuth = *req.NotificationURL, *req.NotificationAuthToken
	}
	if req.NotificationTypes != nil {
		t.notifyTypes = slices.Clone(*req.NotificationTypes)
	}
	resp := c.clientConfig()
	t.mu.Unlock()
	writeJSON(c.w, 200, resp)
}

// NotificationConfig returns a token's notification URL and subscribed types.
func (s *Sim) NotificationConfig(tokenFile string) (url string, types []string) {
	t := s.mustToken(tokenFile)
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.notifyURL, slices.Clone(t.notifyTypes)
}

// SetNotificationConfig configures notifications directly (no TEST_NOTIFICATION, no
// validation), as a client's earlier POST client/config would have.
func (s *Sim) SetNotificationConfig(tokenFile, url, authToken string, types []string) {
	t := s.mustToken(tokenFile)
	t.mu.Lock()
	t.notifyURL, t.notifyAuth, t.notifyTypes = url, authToken, slices.Clone(types)
	t.mu.Unlock()
}
