package license

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"orchard/db"
	"orchard/model"
)

// Devices and users, as the MDM and directory integrations push them, and the rules their
// changes trigger: a retired device gives its device licenses back (R4b), a restored device
// must get its device-licensed apps again (R8), a removed user gives their user licenses back.

// DeviceInput is a device as the MDM reports it. Nil fields are left as they are.
type DeviceInput struct {
	SerialNumber   string
	UDID           *string
	Name           *string
	Platform       model.Platform
	OSVersion      *string
	Model          *string
	CountryCode    *string
	SharedIPad     *bool
	Supervised     *bool
	UserExternalID *string
	Restored       bool
}

// UpsertDevicesResult is what became of each input, in order.
type UpsertDevicesResult struct {
	Devices           []*model.Device // nil where refused
	Errors            []*model.Error
	ReinstallCommands int
}

// UpsertDevices creates or updates devices by serial number.
func (s *Service) UpsertDevices(ctx context.Context, actor Actor, in []DeviceInput) (*UpsertDevicesResult, error) {
	if len(in) == 0 { // the most: @constraint on UpsertDevicesInput.devices
		return nil, model.FieldError([]string{"input", "devices"}, "give at least one device")
	}
	res := &UpsertDevicesResult{Devices: make([]*model.Device, len(in))}
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		res.Errors, res.ReinstallCommands = nil, 0
		seen := map[string]int{}
		dyn, err := s.loadDynamicGroups(ctx, tx)
		if err != nil {
			return err
		}
		for i, d := range in {
			field := []string{"input", "devices", strconv.Itoa(i)}
			dev, cmds, err := s.upsertDevice(ctx, tx, actor, d, field, seen, i, dyn)
			if e, ok := model.AsError(err); ok {
				res.Errors = append(res.Errors, e)
				res.Devices[i] = nil
				continue
			}
			if err != nil {
				return err
			}
			res.Devices[i] = dev
			res.ReinstallCommands += cmds
		}
		return nil
	})
	return res, err
}

func (s *Service) upsertDevice(ctx context.Context, tx *db.DB, actor Actor, in DeviceInput, field []string, seen map[string]int, i int, dyn *dynamicGroups) (*model.Device, int, error) {
	// Identifiers in their canonical form (model/ident.go): `abc1` and `ABC1` are one device.
	serial, err := model.CanonicalSerialNumber(in.SerialNumber, append(field, "serialNumber")...)
	if err != nil {
		return nil, 0, err
	}
	if j, dup := seen[serial]; dup {
		return nil, 0, model.FieldError(append(field, "serialNumber"), "serial number %s is also at index %d", serial, j)
	}
	seen[serial] = i
	if !validPlatform(in.Platform) {
		return nil, 0, model.FieldError(append(field, "platform"), "unknown platform %q", in.Platform)
	}
	var country, osVersion *string
	if in.CountryCode != nil {
		c := ""
		if strings.TrimSpace(*in.CountryCode) != "" { // "" clears it
			if c, err = model.CanonicalCountry(*in.CountryCode, append(field, "countryCode")...); err != nil {
				return nil, 0, err
			}
		}
		country = &c
	}
	if in.OSVersion != nil {
		v := ""
		if strings.TrimSpace(*in.OSVersion) != "" { // "" clears it
			if v, err = model.CanonicalOSVersion(*in.OSVersion, append(field, "osVersion")...); err != nil {
				return nil, 0, err
			}
		}
		osVersion = &v
	}
	dev, err := tx.DeviceBySerial(ctx, serial)
	created := false
	switch {
	case errors.Is(err, model.ErrNotFound):
		dev = &model.Device{SerialNumber: serial, Status: model.DeviceActive, CreatedAt: s.now()}
		created = true
	case err != nil:
		return nil, 0, err
	}
	before := *dev
	dev.Platform = in.Platform
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	setStr(&dev.Name, in.Name)
	setStr(&dev.OSVersion, osVersion)
	setStr(&dev.Model, in.Model)
	if country != nil {
		dev.CountryCode = *country
	}
	if in.UDID != nil {
		u := strings.TrimSpace(*in.UDID)
		dev.UDID = &u
		if u == "" {
			dev.UDID = nil
		}
	}
	if in.SharedIPad != nil {
		dev.SharedIPad = *in.SharedIPad
	}
	if in.Supervised != nil {
		dev.Supervised = *in.Supervised
	}
	if in.UserExternalID != nil {
		if ext := strings.TrimSpace(*in.UserExternalID); ext == "" {
			dev.UserID = nil
		} else {
			u, err := tx.UserByExternalID(ctx, ext)
			if errors.Is(err, model.ErrNotFound) {
				return nil, 0, &model.Error{Code: model.CodeNotFound, Field: append(field, "userExternalId"), Message: fmt.Sprintf("no user with external id %q; upsert the user first", ext)}
			}
			if err != nil {
				return nil, 0, err
			}
			dev.UserID = &u.ID
		}
	}
	now := s.now()
	dev.LastSeenAt = &now
	dev.UpdatedAt = now
	if in.Restored {
		dev.RestoredAt = &now
	}
	if err := tx.SaveDevice(ctx, dev); err != nil {
		return nil, 0, err
	}
	// Policy: dynamic groups follow the device, and labels follow what coverage depends on.
	relevant := !created && (!sameID(before.UserID, dev.UserID) || before.SharedIPad != dev.SharedIPad || before.Status != dev.Status)
	if err := s.syncDeviceGroups(ctx, tx, dyn, dev, relevant); err != nil {
		return nil, 0, err
	}
	cmds := 0
	if in.Restored && !created {
		// R8: device-licensed apps are not in backups; the restored device gets them again.
		as, err := tx.ActiveAssignmentsOf(ctx, db.AssignmentFilter{DeviceID: dev.ID, Kind: model.LicenseKindDevice})
		if err != nil {
			return nil, 0, err
		}
		for _, a := range reinstallsAfterRestore(dev.ID, as) {
			c, err := s.queueCommand(ctx, tx, dev.ID, a.AppID, a, model.CommandReinstall, "the device was restored: device-licensed apps are not in backups")
			if err != nil {
				return nil, 0, err
			}
			if c {
				cmds++
			}
		}
	}
	if created {
		if err := s.auditTx(ctx, tx, actor, "device.create", "Device", dev.ID, nil, "device "+dev.SerialNumber+" added", nil); err != nil {
			return nil, 0, err
		}
	}
	return dev, cmds, nil
}

func validPlatform(p model.Platform) bool {
	switch p {
	case model.PlatformIOS, model.PlatformIPadOS, model.PlatformMacOS, model.PlatformTvOS, model.PlatformWatchOS, model.PlatformVisionOS:
		return true
	}
	return false
}

// queueCommand records a command for the MDM unless the same one is already pending; it waits
// for its license when that is not confirmed yet. It reports whether it queued one.
func (s *Service) queueCommand(ctx context.Context, tx *db.DB, deviceID, appID int64, a *model.LicenseAssignment, kind model.CommandKind, reason string) (bool, error) {
	if _, err := tx.PendingCommand(ctx, deviceID, appID, kind); err == nil {
		return false, nil
	} else if !errors.Is(err, model.ErrNotFound) {
		return false, err
	}
	c := &model.DeviceCommand{DeviceID: deviceID, AppID: appID, Kind: kind, Status: model.CommandPending, Reason: truncate(reason, 1000), CreatedAt: s.now()}
	if a != nil {
		id := a.ID
		c.AssignmentID = &id
		c.WaitsForAssignment = a.Status == model.AssignmentPending
	}
	return true, tx.InsertCommands(ctx, c)
}

// UserInput is a user as the directory reports them. Nil fields are left as they are.
type UserInput struct {
	ExternalID     string
	Email          *string
	Name           *string
	ManagedAppleID *string
}

var emailRe = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// UpsertUsers creates or updates users by external id. A new user gets a stable clientUserId,
// with which Orchard registers them at Apple when they first need a user license.
func (s *Service) UpsertUsers(ctx context.Context, actor Actor, in []UserInput) ([]*model.User, []*model.Error, error) {
	if len(in) == 0 { // the most: @constraint on UpsertUsersInput.users
		return nil, nil, model.FieldError([]string{"input", "users"}, "give at least one user")
	}
	out := make([]*model.User, len(in))
	var errs []*model.Error
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		errs = nil
		seen := map[string]int{}
		for i, u := range in {
			field := []string{"input", "users", strconv.Itoa(i)}
			ext := strings.TrimSpace(u.ExternalID)
			if ext == "" || len(ext) > 255 {
				errs = append(errs, model.FieldError(append(field, "externalId"), "externalId must be 1 to 255 characters"))
				continue
			}
			if j, dup := seen[ext]; dup {
				errs = append(errs, model.FieldError(append(field, "externalId"), "external id %s is also at index %d", ext, j))
				continue
			}
			seen[ext] = i
			if u.Email != nil && *u.Email != "" && !emailRe.MatchString(strings.TrimSpace(*u.Email)) {
				errs = append(errs, model.FieldError(append(field, "email"), "%q is not an email address", *u.Email))
				continue
			}
			if u.ManagedAppleID != nil && *u.ManagedAppleID != "" && !emailRe.MatchString(strings.TrimSpace(*u.ManagedAppleID)) {
				errs = append(errs, model.FieldError(append(field, "managedAppleId"), "a Managed Apple Account looks like an email address"))
				continue
			}
			user, err := tx.UserByExternalID(ctx, ext)
			created := false
			switch {
			case errors.Is(err, model.ErrNotFound):
				user = &model.User{ExternalID: ext, ClientUserID: "orchard-" + randomHex(12), Status: model.UserActive, CreatedAt: s.now()}
				created = true
			case err != nil:
				return err
			}
			if u.Email != nil {
				user.Email = strings.TrimSpace(*u.Email)
			}
			if u.Name != nil {
				user.Name = strings.TrimSpace(*u.Name)
			}
			if u.ManagedAppleID != nil {
				m := strings.TrimSpace(*u.ManagedAppleID)
				user.ManagedAppleID = &m
				if m == "" {
					user.ManagedAppleID = nil
				}
			}
			if user.Status == model.UserRemoved {
				// The directory has them again.
				user.Status, user.RemovedAt = model.UserActive, nil
			}
			user.UpdatedAt = s.now()
			if err := tx.SaveUser(ctx, user); err != nil {
				return err
			}
			if created {
				if err := s.auditTx(ctx, tx, actor, "user.create", "User", user.ID, nil, "user "+user.ExternalID+" added", nil); err != nil {
					return err
				}
			}
			out[i] = user
		}
		return nil
	})
	return out, errs, err
}

// RemoveUser marks a user removed, takes back their user licenses and retires their
// registrations at Apple.
func (s *Service) RemoveUser(ctx context.Context, actor Actor, userID int64, externalID string, reclaim bool) (*model.User, int, error) {
	var user *model.User
	n, retired := 0, 0
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		n, retired = 0, 0
		var err error
		if userID != 0 {
			user, err = tx.UserByID(ctx, userID)
		} else {
			user, err = tx.UserByExternalID(ctx, externalID)
		}
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"input"}, Message: "no such user"}
		}
		if err != nil {
			return err
		}
		now := s.now()
		user.Status, user.RemovedAt, user.UpdatedAt = model.UserRemoved, &now, now
		if err := tx.SaveUser(ctx, user); err != nil {
			return err
		}
		// Out of every group: the labels that covered the user give their licenses back.
		if err := s.leaveAllGroups(ctx, tx, user.ID, 0, model.DepartureUserRemoved, "user "+user.ExternalID+" removed"); err != nil {
			return err
		}
		if reclaim {
			if n, err = s.reclaimWhere(ctx, tx, RuleActor("user removed"), db.AssignmentFilter{UserID: user.ID, Kind: model.LicenseKindUser},
				"the user was removed from the directory"); err != nil {
				return err
			}
			if retired, err = s.retireRegistrations(ctx, tx, user); err != nil {
				return err
			}
		}
		return s.auditTx(ctx, tx, actor, "user.remove", "User", user.ID,
			nil, fmt.Sprintf("user %s removed; %d licenses taken back, %d registrations at Apple retired", user.ExternalID, n, retired), nil)
	})
	if err == nil && n+retired > 0 {
		s.kick(0)
	}
	return user, n, err
}

// retireRegistrations queues the retirement at Apple (users/retire) of a removed user's
// registrations, so that they no longer count as the organisation's users there. A
// registration still on its way (REGISTERING) is left to complete: retiring it meanwhile
// could be overtaken by its own creation.
func (s *Service) retireRegistrations(ctx context.Context, tx *db.DB, u *model.User) (int, error) {
	regs, err := tx.AppleUsersOfUser(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	now := s.now()
	for _, au := range regs {
		if au.Status != model.AppleUserRegistered && au.Status != model.AppleUserAssociated {
			continue
		}
		if err := tx.UpdateAppleUser(ctx, au.ID, map[string]any{"status": model.AppleUserRetiring}); err != nil {
			return n, err
		}
		id, cuid := au.ID, au.ClientUserID
		if err := tx.InsertOutbox(ctx, &model.OutboxItem{AccountID: au.AccountID, Action: model.OutboxRetireUser, AppleUserID: &id,
			ClientUserID: &cuid, Status: model.OutboxQueued, NotBefore: now, CreatedAt: now}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// reclaimWhere reclaims the active revocable assignments matching f.
func (s *Service) reclaimWhere(ctx context.Context, tx *db.DB, actor Actor, f db.AssignmentFilter, reason string) (int, error) {
	as, err := tx.ActiveAssignmentsOf(ctx, f)
	if err != nil {
		return 0, err
	}
	pools := map[int64]*model.LicensePool{}
	for _, a := range as {
		if pools[a.PoolID] == nil {
			p, err := tx.PoolByID(ctx, a.PoolID)
			if err != nil {
				return 0, fmt.Errorf("reclaim: %w", err)
			}
			pools[a.PoolID] = p
		}
	}
	return s.reclaimBatchTx(ctx, tx, actor, as, pools, reason)
}

// RetireDevice retires a device; its device licenses come back (R4b) and its pending commands
// are cancelled.
func (s *Service) RetireDevice(ctx context.Context, actor Actor, ref Target, reason, idempotencyKey string) (*RetireResult, error) {
	res, _, err := idempotent(ctx, s, actor, idempotencyKey, "retireDevice", map[string]any{"device": ref, "reason": reason}, func(tx *db.DB) (*RetireResult, error) {
		dev, err := s.deviceRef(ctx, tx, ref)
		if err != nil {
			return nil, err
		}
		if dev.Status == model.DeviceRetired {
			return &RetireResult{DeviceID: dev.ID}, nil
		}
		now := s.now()
		dev.Status, dev.RetiredAt, dev.UpdatedAt = model.DeviceRetired, &now, now
		if err := tx.SaveDevice(ctx, dev); err != nil {
			return nil, err
		}
		why := "the device was retired"
		if strings.TrimSpace(reason) != "" {
			why += ": " + strings.TrimSpace(reason)
		}
		n, err := s.reclaimWhere(ctx, tx, RuleActor("R4b device retired"), db.AssignmentFilter{DeviceID: dev.ID, Kind: model.LicenseKindDevice}, why)
		if err != nil {
			return nil, err
		}
		if err := tx.CancelCommands(ctx, dev.ID, "the device was retired"); err != nil {
			return nil, err
		}
		if err := s.leaveAllGroups(ctx, tx, 0, dev.ID, model.DepartureRetired, "device "+dev.SerialNumber+" retired"); err != nil {
			return nil, err
		}
		if err := s.auditTx(ctx, tx, actor, "device.retire", "Device", dev.ID, nil, fmt.Sprintf("device %s retired; %d licenses taken back", dev.SerialNumber, n), nil); err != nil {
			return nil, err
		}
		return &RetireResult{DeviceID: dev.ID, Reclaims: n}, nil
	})
	if err == nil && res.Reclaims > 0 {
		s.kick(0)
	}
	return res, err
}

// RetireResult is a retired device and how many licenses it gives back.
type RetireResult struct {
	DeviceID int64 `json:"deviceId"`
	Reclaims int   `json:"reclaims"`
}

// deviceRef resolves a device reference (id or serial number).
func (s *Service) deviceRef(ctx context.Context, tx *db.DB, ref Target) (*model.Device, error) {
	var dev *model.Device
	var err error
	switch {
	case ref.DeviceID != 0:
		dev, err = tx.DeviceByID(ctx, ref.DeviceID)
	case ref.SerialNumber != "":
		dev, err = tx.DeviceBySerial(ctx, model.SerialNumberKey(ref.SerialNumber))
	default:
		return nil, model.FieldError([]string{"input", "device"}, "give deviceId or serialNumber")
	}
	if errors.Is(err, model.ErrNotFound) {
		return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "device"}, Message: "no such device"}
	}
	return dev, err
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
