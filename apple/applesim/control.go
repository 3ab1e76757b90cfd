package applesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The control API under /_sim/: JSON over HTTP to drive the simulator from outside the
// process (the demo, manual tests with curl). A token is named by "token", which may be its
// uId or its token file. Answers are JSON; errors are {"error": "..."} with 400 or 404.
// Control requests are not in the request log. See README.md for the list.

type controlFunc func(s *Sim, w http.ResponseWriter, r *http.Request) error

// errNotFound marks control errors answered with 404.
var errNotFound = errors.New("not found")

// controlRoutes maps "METHOD /path" to handlers.
var controlRoutes = map[string]controlFunc{
	"GET /_sim/tokens":              (*Sim).ctlListTokens,
	"POST /_sim/tokens":             (*Sim).ctlAddToken,
	"POST /_sim/generate":           (*Sim).ctlGenerate,
	"POST /_sim/assets":             (*Sim).ctlAddAsset,
	"POST /_sim/purchase":           (*Sim).ctlPurchase,
	"POST /_sim/assignments":        (*Sim).ctlAddAssignment,
	"POST /_sim/assignments/remove": (*Sim).ctlRemoveAssignment,
	"POST /_sim/users":              (*Sim).ctlAddUser,
	"POST /_sim/users/associate":    (*Sim).ctlAssociateUser,
	"GET /_sim/invite":              (*Sim).ctlInvite,
	"GET /_sim/faults":              (*Sim).ctlListFaults,
	"POST /_sim/faults":             (*Sim).ctlSetFault,
	"DELETE /_sim/faults":           (*Sim).ctlClearFaults,
	"POST /_sim/mdminfo":            (*Sim).ctlSetMDMInfo,
	"POST /_sim/revoked":            (*Sim).ctlSetRevoked,
	"POST /_sim/expiry":             (*Sim).ctlSetExpiry,
	"POST /_sim/ratelimit":          (*Sim).ctlSetRateLimit,
	"GET /_sim/limits":              (*Sim).ctlGetLimits,
	"POST /_sim/limits":             (*Sim).ctlSetLimits,
	"GET /_sim/requests":            (*Sim).ctlRequests,
	"DELETE /_sim/requests":         (*Sim).ctlResetRequests,
	"GET /_sim/state":               (*Sim).ctlState,
	"GET /_sim/deliveries":          (*Sim).ctlDeliveries,
	"POST /_sim/process":            (*Sim).ctlProcess,
}

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	h := controlRoutes[r.Method+" "+strings.TrimSuffix(r.URL.Path, "/")]
	if h == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no control endpoint " + r.Method + " " + r.URL.Path})
		return
	}
	if err := h(s, w, r); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errNotFound) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
}

func ok(w http.ResponseWriter) error {
	writeJSON(w, 200, map[string]bool{"ok": true})
	return nil
}

// readJSON decodes a control request body.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding request body: %w", err)
	}
	return nil
}

// ref finds the token a control request names.
func (s *Sim) ref(name string) (*token, error) {
	if name == "" {
		return nil, fmt.Errorf("token missing (uId or token file)")
	}
	t := s.tokenByRef(name)
	if t == nil {
		return nil, fmt.Errorf("token %q: %w", name, errNotFound)
	}
	return t, nil
}

type ctlToken struct {
	TokenFile       string       `json:"tokenFile"`
	UID             string       `json:"uId"`
	OrgName         string       `json:"orgName"`
	LocationName    string       `json:"locationName"`
	Country         string       `json:"country"`
	DefaultPlatform string       `json:"defaultPlatform"`
	ExpiresAt       time.Time    `json:"expiresAt"`
	Revoked         bool         `json:"revoked"`
	MDMInfo         *wireMDMInfo `json:"mdmInfo,omitempty"`
}

func (t *token) ctl() ctlToken {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return ctlToken{TokenFile: t.file, UID: t.uid, OrgName: t.org, LocationName: t.location, Country: t.country,
		DefaultPlatform: t.platform, ExpiresAt: t.expiresAt, Revoked: t.revoked, MDMInfo: t.mdm}
}

func (s *Sim) ctlListTokens(w http.ResponseWriter, r *http.Request) error {
	out := []ctlToken{}
	for _, t := range s.tokens() {
		out = append(out, t.ctl())
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *Sim) ctlAddToken(w http.ResponseWriter, r *http.Request) error {
	var spec struct {
		OrgName         string    `json:"orgName"`
		LocationName    string    `json:"locationName"`
		Country         string    `json:"country"`
		UID             string    `json:"uId"`
		ExpiresAt       time.Time `json:"expiresAt"`
		DefaultPlatform string    `json:"defaultPlatform"`
	}
	if err := readJSON(r, &spec); err != nil {
		return err
	}
	file := s.AddToken(TokenSpec{OrgName: spec.OrgName, LocationName: spec.LocationName, Country: spec.Country, UID: spec.UID, ExpiresAt: spec.ExpiresAt, DefaultPlatform: spec.DefaultPlatform})
	writeJSON(w, 200, s.tokenByFile(file).ctl())
	return nil
}

func (s *Sim) ctlGenerate(w http.ResponseWriter, r *http.Request) error {
	var spec GenSpec
	if err := readJSON(r, &spec); err != nil {
		return err
	}
	writeJSON(w, 200, s.Generate(spec))
	return nil
}

func (s *Sim) ctlAddAsset(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token string `json:"token"`
		Asset Asset  `json:"asset"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if req.Asset.AdamID == "" {
		return fmt.Errorf("asset.adamId missing")
	}
	s.AddAsset(t.file, req.Asset)
	return ok(w)
}

func (s *Sim) ctlPurchase(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token        string `json:"token"`
		AdamID       string `json:"adamId"`
		PricingParam string `json:"pricingParam"`
		Delta        int    `json:"delta"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if err := s.PurchasePricing(t.file, req.AdamID, req.PricingParam, req.Delta); err != nil {
		return err
	}
	return ok(w)
}

type ctlAssignment struct {
	Token        string `json:"token"`
	AdamID       string `json:"adamId"`
	SerialNumber string `json:"serialNumber"`
	ClientUserID string `json:"clientUserId"`
}

func (s *Sim) ctlAddAssignment(w http.ResponseWriter, r *http.Request) error {
	return s.ctlChangeAssignment(w, r, true)
}

func (s *Sim) ctlRemoveAssignment(w http.ResponseWriter, r *http.Request) error {
	return s.ctlChangeAssignment(w, r, false)
}

func (s *Sim) ctlChangeAssignment(w http.ResponseWriter, r *http.Request, add bool) error {
	var req ctlAssignment
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if err := s.changeAssignment(t.file, req.AdamID, req.SerialNumber, req.ClientUserID, add); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlAddUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token          string `json:"token"`
		ClientUserID   string `json:"clientUserId"`
		Email          string `json:"email"`
		ManagedAppleID string `json:"managedAppleId"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if req.ClientUserID == "" {
		return fmt.Errorf("clientUserId missing")
	}
	s.AddUser(t.file, req.ClientUserID, req.Email, req.ManagedAppleID)
	return ok(w)
}

func (s *Sim) ctlAssociateUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token        string `json:"token"`
		ClientUserID string `json:"clientUserId"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if err := s.associateUser(t, req.ClientUserID); err != nil {
		return err
	}
	return ok(w)
}

// ctlInvite is the invitation page that service config's invitationEmail URL points at:
// opening it accepts the invitation (the user becomes Associated, USER_ASSOCIATED is sent).
func (s *Sim) ctlInvite(w http.ResponseWriter, r *http.Request) error {
	code := r.URL.Query().Get("inviteCode")
	s.inviteMu.Lock()
	ref, found := s.invites[code]
	s.inviteMu.Unlock()
	if !found {
		return fmt.Errorf("invitation %q: %w", code, errNotFound)
	}
	if err := s.associateUser(ref.t, ref.clientUserID); err != nil {
		return err
	}
	writeJSON(w, 200, map[string]string{"uId": ref.t.uid, "clientUserId": ref.clientUserID, "status": userAssociated})
	return nil
}

// ctlFault is a Fault with Delay as a Go duration string ("250ms").
type ctlFault struct {
	Token string `json:"token"`
	Fault
	Delay string `json:"delay,omitempty"`
}

func (s *Sim) ctlSetFault(w http.ResponseWriter, r *http.Request) error {
	var req ctlFault
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	if _, known := faultNames[req.Kind]; !known {
		return fmt.Errorf("fault kind missing")
	}
	f := req.Fault
	if req.Delay != "" {
		if f.Delay, err = time.ParseDuration(req.Delay); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
	}
	s.SetFault(t.file, f)
	return ok(w)
}

func (s *Sim) ctlListFaults(w http.ResponseWriter, r *http.Request) error {
	t, err := s.ref(r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	out := []ctlFault{}
	for _, f := range s.Faults(t.file) {
		cf := ctlFault{Token: t.uid, Fault: f}
		if f.Delay > 0 {
			cf.Delay = f.Delay.String()
		}
		out = append(out, cf)
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *Sim) ctlClearFaults(w http.ResponseWriter, r *http.Request) error {
	t, err := s.ref(r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	s.ClearFaults(t.file)
	return ok(w)
}

func (s *Sim) ctlSetMDMInfo(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token    string `json:"token"`
		ID       string `json:"id"`
		Name     string `json:"name"`
		Metadata string `json:"metadata"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	s.SetMDMInfo(t.file, req.ID, req.Name, req.Metadata)
	return ok(w)
}

func (s *Sim) ctlSetRevoked(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token   string `json:"token"`
		Revoked bool   `json:"revoked"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	s.SetRevoked(t.file, req.Revoked)
	return ok(w)
}

func (s *Sim) ctlSetExpiry(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	s.SetExpiresAt(t.file, req.ExpiresAt)
	return ok(w)
}

func (s *Sim) ctlSetRateLimit(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token             string `json:"token"`
		RequestsPerSecond int    `json:"requestsPerSecond"`
	}
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := s.ref(req.Token)
	if err != nil {
		return err
	}
	s.SetRequestsPerSecond(t.file, req.RequestsPerSecond)
	return ok(w)
}

func (s *Sim) ctlGetLimits(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, 200, s.Limits().wireMap())
	return nil
}

// ctlSetLimits takes the limits in service config's spelling; absent keys get Apple's default.
func (s *Sim) ctlSetLimits(w http.ResponseWriter, r *http.Request) error {
	var m map[string]int
	if err := readJSON(r, &m); err != nil {
		return err
	}
	var l Limits
	fields := map[string]*int{
		"maxAssets": &l.MaxAssets, "maxClientUserIds": &l.MaxClientUserIDs, "maxSerialNumbers": &l.MaxSerialNumbers,
		"maxRevokeClientUserIds": &l.MaxRevokeClientUserIDs, "maxRevokeSerialNumbers": &l.MaxRevokeSerialNumbers,
		"maxUsers": &l.MaxUsers, "maxNotificationLength": &l.MaxNotificationLength, "maxMdmNameLength": &l.MaxMDMNameLength,
		"maxMdmMetadataLength": &l.MaxMDMMetadataLength, "maxMdmIdLength": &l.MaxMDMIDLength,
		"maxRequestPerSecond": &l.MaxRequestPerSecond, "maxSubscriptions": &l.MaxSubscriptions,
		"maxSubscriptionClientUserIds": &l.MaxSubscriptionClientUserIDs,
	}
	for k, v := range m {
		p := fields[k]
		if p == nil {
			return fmt.Errorf("unknown limit %q", k)
		}
		*p = v
	}
	s.SetLimits(l)
	writeJSON(w, 200, s.Limits().wireMap())
	return nil
}

func (s *Sim) ctlRequests(w http.ResponseWriter, r *http.Request) error {
	uid := ""
	if name := r.URL.Query().Get("token"); name != "" {
		t, err := s.ref(name)
		if err != nil {
			return err
		}
		uid = t.uid
	}
	out := s.reqlog.snapshot(uid)
	if out == nil {
		out = []Request{}
	}
	writeJSON(w, 200, out)
	return nil
}

func (s *Sim) ctlResetRequests(w http.ResponseWriter, r *http.Request) error {
	s.ResetRequests()
	return ok(w)
}

func (s *Sim) ctlState(w http.ResponseWriter, r *http.Request) error {
	t, err := s.ref(r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, struct {
		Token       ctlToken     `json:"token"`
		Assets      []AssetState `json:"assets"`
		Assignments []Assignment `json:"assignments"`
		Users       []UserState  `json:"users"`
		Faults      []Fault      `json:"faults"`
	}{t.ctl(), s.AssetStates(t.file), s.Assignments(t.file), s.Users(t.file), s.Faults(t.file)})
	return nil
}

func (s *Sim) ctlDeliveries(w http.ResponseWriter, r *http.Request) error {
	out := s.Deliveries()
	if out == nil {
		out = []Delivery{}
	}
	writeJSON(w, 200, out)
	return nil
}

// ctlProcess processes due events now (useful with a fake clock).
func (s *Sim) ctlProcess(w http.ResponseWriter, r *http.Request) error {
	s.ProcessDueEvents()
	return ok(w)
}
