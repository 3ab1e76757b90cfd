package license

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orchard/db"
	"orchard/model"
)

// assignFacts is everything the assignment rules look at for one chunk of targets, read in
// bulk before any rule runs (readAssignFacts): the rules themselves (rules_*.go) are pure
// functions over it, so each can be tested with a struct literal and no database.
type assignFacts struct {
	now  time.Time
	kind model.LicenseKind
	// The targets' devices and users, by each way a target may name them. usersByID also holds
	// the users of the devices named for USER licenses (a user license "to a device" goes to the
	// device's user).
	devicesByID       map[int64]*model.Device
	devicesBySerial   map[string]*model.Device
	usersByID         map[int64]*model.User
	usersByExternalID map[string]*model.User
	// poolsRefused is why the request names no pool at all (no such pool, app or purchase): it
	// refuses the whole request. Otherwise app and cands are the app and the pools that may
	// provide its licenses, with their accounts, in the order asked for (assignRequest.Accounts)
	// or by account id.
	poolsRefused *refusal
	app          *model.App
	cands        []candidate
	// held is, by holder key, the active assignment of the app each holder has already.
	held map[string]db.HeldLicense
	// userLicensed are the device users who hold a user license of the app that Orchard
	// assigned (R9).
	userLicensed map[int64]bool
	// sold says, per device country, whether the app is sold there (R11); a country absent is
	// not known yet.
	sold map[string]bool
}

// candidate is a pool an assignment could come from, with its account.
type candidate struct {
	pool    *model.LicensePool
	account *model.Account
}

// namedTargets are the devices and users some targets name, by each way a target may name
// them: devices by id and serial number, users by id and external id.
type namedTargets struct {
	devicesByID       map[int64]*model.Device
	devicesBySerial   map[string]*model.Device
	usersByID         map[int64]*model.User
	usersByExternalID map[string]*model.User
}

// readTargets reads the devices and users targets name (bulk assignments, group members),
// with one statement per way of naming whatever the number of targets: MaxBulkTargets and
// MaxGroupMembers keep each list within what one statement takes on both engines. Targets that
// name nothing known are simply absent from the maps; the caller says why, per target. With
// deviceUsers, usersByID also holds the users of the devices found (a user license "to a
// device" goes to the device's user).
func readTargets(ctx context.Context, q *db.DB, targets []Target, deviceUsers bool) (*namedTargets, error) {
	n := &namedTargets{devicesByID: map[int64]*model.Device{}, devicesBySerial: map[string]*model.Device{},
		usersByID: map[int64]*model.User{}, usersByExternalID: map[string]*model.User{}}
	var serials, exts []string
	var devIDs, userIDs []int64
	for _, t := range targets {
		switch {
		case t.DeviceID != 0:
			devIDs = append(devIDs, t.DeviceID)
		case t.SerialNumber != "":
			serials = append(serials, model.SerialNumberKey(t.SerialNumber))
		case t.UserID != 0:
			userIDs = append(userIDs, t.UserID)
		case t.ExternalID != "":
			exts = append(exts, t.ExternalID)
		}
	}
	ds, err := q.DevicesBySerials(ctx, serials)
	if err != nil {
		return nil, fmt.Errorf("targets: devices by serial number: %w", err)
	}
	ds2, err := q.DevicesByID(ctx, devIDs)
	if err != nil {
		return nil, fmt.Errorf("targets: devices by id: %w", err)
	}
	for _, d := range append(ds, ds2...) {
		n.devicesBySerial[d.SerialNumber], n.devicesByID[d.ID] = d, d
		if deviceUsers && d.UserID != nil {
			userIDs = append(userIDs, *d.UserID)
		}
	}
	us, err := q.UsersByExternalIDs(ctx, exts)
	if err != nil {
		return nil, fmt.Errorf("targets: users by external id: %w", err)
	}
	us2, err := q.UsersByID(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("targets: users by id: %w", err)
	}
	for _, u := range append(us, us2...) {
		n.usersByExternalID[u.ExternalID], n.usersByID[u.ID] = u, u
	}
	return n, nil
}

// readAssignFacts reads what the rules need for targets, with one statement per kind of fact
// whatever the number of targets: the devices and users named, the pools of the app and their
// accounts, the holders' existing licenses of the app, R9's user licenses and R11's
// availability in the devices' countries. q is the database or a transaction.
func (s *Service) readAssignFacts(ctx context.Context, q *db.DB, req *assignRequest, targets []Target) (*assignFacts, error) {
	var err error
	named := req.known
	if named == nil {
		if named, err = readTargets(ctx, q, targets, req.Kind == model.LicenseKindUser); err != nil {
			return nil, fmt.Errorf("assignment facts: %w", err)
		}
	}
	f := &assignFacts{now: s.now(), kind: req.Kind,
		devicesByID: named.devicesByID, devicesBySerial: named.devicesBySerial,
		usersByID: named.usersByID, usersByExternalID: named.usersByExternalID}
	if f.cands, f.app, err = s.readCandidates(ctx, q, req); err != nil {
		r, ok := asRefusal(err)
		if !ok {
			return nil, err
		}
		f.poolsRefused = r
		return f, nil
	}

	// What the holders have already, and R9's user licenses. Holders that the rules will
	// refuse anyway are read too: it costs nothing (same statement) and keeps this simple.
	var heldSerials, heldUsers []string
	var deviceUsers []int64
	countries := map[string]bool{}
	if req.Kind == model.LicenseKindDevice {
		for _, d := range f.devicesByID {
			heldSerials = append(heldSerials, d.SerialNumber)
			if d.UserID != nil {
				deviceUsers = append(deviceUsers, *d.UserID)
			}
			if d.CountryCode != "" && !f.app.IsB2B {
				for _, c := range f.cands {
					if c.account.CountryCode != "" && !strings.EqualFold(c.account.CountryCode, d.CountryCode) {
						countries[d.CountryCode] = true
					}
				}
			}
		}
	} else {
		for _, u := range f.usersByID {
			heldUsers = append(heldUsers, u.ClientUserID)
		}
		for _, u := range f.usersByExternalID {
			heldUsers = append(heldUsers, u.ClientUserID)
		}
	}
	if f.held, err = q.ActiveAssignmentsOfAppByHolders(ctx, f.app.ID, req.Kind, heldSerials, heldUsers); err != nil {
		return nil, fmt.Errorf("assignment facts: %w", err)
	}
	if f.userLicensed, err = q.UsersWithOrchardUserLicense(ctx, f.app.ID, deviceUsers); err != nil {
		return nil, fmt.Errorf("assignment facts: users with an Orchard user license of app %d: %w", f.app.ID, err)
	}
	cs := make([]string, 0, len(countries))
	for c := range countries {
		cs = append(cs, c)
	}
	if f.sold, err = q.AppAvailabilityIn(ctx, f.app.ID, cs); err != nil {
		return nil, fmt.Errorf("assignment facts: %w", err)
	}
	return f, nil
}

// readCandidates reads the pools a request may use: the given pool, the app's pool in the
// given account or accounts, or (no account given) the app's pools in every account. A request
// that names no pool at all is refused here (NOT_FOUND, INVALID_INPUT), for every target.
func (s *Service) readCandidates(ctx context.Context, q *db.DB, req *assignRequest) ([]candidate, *model.App, error) {
	var pools []*model.LicensePool
	var app *model.App
	switch {
	case req.PoolID != 0:
		p, err := q.PoolByID(ctx, req.PoolID)
		if errors.Is(err, model.ErrNotFound) {
			return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "poolId"}, Message: "no such license pool"}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("pool %d: %w", req.PoolID, err)
		}
		pools = []*model.LicensePool{p}
	case req.AppID != 0 || req.AdamID != "":
		appID := req.AppID
		if appID == 0 {
			var err error
			if app, err = q.AppByAdamID(ctx, req.AdamID); errors.Is(err, model.ErrNotFound) {
				return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "adamId"}, Message: "no account has bought an app with this adamId"}
			} else if err != nil {
				return nil, nil, fmt.Errorf("app %s: %w", req.AdamID, err)
			}
			appID = app.ID
		}
		ps, err := q.PoolsOfApp(ctx, appID)
		if err != nil {
			return nil, nil, fmt.Errorf("pools of app %d: %w", appID, err)
		}
		pools = poolsOfAccounts(ps, req.AccountID, req.Accounts)
		if len(pools) == 0 {
			msg := "no account has bought this app"
			switch {
			case req.AccountID != 0:
				msg = "this account has not bought this app"
			case len(req.Accounts) > 0:
				msg = "none of the accounts asked for has bought this app"
			}
			return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: msg}
		}
	default:
		return nil, nil, model.FieldError([]string{"input"}, "give a poolId, or an appId (with an optional accountId)")
	}
	if app == nil && req.app != nil && req.app.ID == pools[0].AppID {
		app = req.app
	}
	if app == nil {
		var err error
		if app, err = q.AppByID(ctx, pools[0].AppID); err != nil {
			return nil, nil, fmt.Errorf("app %d: %w", pools[0].AppID, err)
		}
	}
	ids := make([]int64, len(pools))
	for i, p := range pools {
		ids[i] = p.AccountID
	}
	accounts, err := q.AccountsByID(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("accounts of the pools of app %d: %w", app.ID, err)
	}
	byID := make(map[int64]*model.Account, len(accounts))
	for _, a := range accounts {
		byID[a.ID] = a
	}
	out := make([]candidate, 0, len(pools))
	for _, p := range pools {
		a, ok := byID[p.AccountID]
		if !ok {
			return nil, nil, fmt.Errorf("pool %d: account %d: %w", p.ID, p.AccountID, model.ErrNotFound)
		}
		out = append(out, candidate{pool: p, account: a})
	}
	return out, app, nil
}

// poolsOfAccounts keeps the pools of one account (accountID), of the accounts listed, in the
// list's order (accounts), or all of them (neither given).
func poolsOfAccounts(ps []*model.LicensePool, accountID int64, accounts []int64) []*model.LicensePool {
	var out []*model.LicensePool
	switch {
	case accountID != 0:
		for _, p := range ps {
			if p.AccountID == accountID {
				out = append(out, p)
			}
		}
	case len(accounts) > 0:
		seen := map[int64]bool{}
		for _, id := range accounts {
			if seen[id] {
				continue
			}
			seen[id] = true
			for _, p := range ps {
				if p.AccountID == id {
					out = append(out, p)
				}
			}
		}
	default:
		out = ps
	}
	return out
}
