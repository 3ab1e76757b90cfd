package license

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"orchard/db"
	"orchard/model"
)

// Inventory and the MDM's commands. A device's reported apps drive R4c (a licensed app that
// leaves a device gives its license back: a device license when the app leaves that device, a
// user license when the app is on none of the user's devices) and R6 (an unmanaged app that
// Orchard has licenses for can be converted to managed, which takes a license first). Orchard
// never talks to devices: what a device must do is a command the MDM reads and acknowledges.

// InventoryApp is one app a device reports.
type InventoryApp struct {
	BundleID, Name, Version string
	Managed                 bool
}

// InventoryResult is what a report changed.
type InventoryResult struct {
	Device     *model.Device
	Reclaims   int
	Candidates []Candidate
}

// Candidate is an unmanaged app on the device that Orchard has licenses for.
type Candidate struct {
	App   *model.App
	Pools []*model.LicensePool
}

// ReportDeviceApps replaces a device's inventory and applies R4c to the apps that left it.
// Only an app that was there before and is gone now counts as removed: a license whose app
// has not been installed yet is not taken back.
func (s *Service) ReportDeviceApps(ctx context.Context, actor Actor, ref Target, apps []InventoryApp) (*InventoryResult, error) {
	res := &InventoryResult{}
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		res.Reclaims, res.Candidates = 0, nil
		dev, err := s.deviceRef(ctx, tx, ref)
		if err != nil {
			return err
		}
		if dev.Status == model.DeviceRetired {
			return &model.Error{Code: model.CodeDeviceRetired, Field: []string{"input", "device"}, Message: "device " + dev.SerialNumber + " is retired"}
		}
		res.Device = dev
		now := s.now()
		seen := map[string]bool{}
		var bundles []string
		rows := make([]*model.DeviceApp, 0, len(apps))
		for i, a := range apps {
			b := strings.TrimSpace(a.BundleID)
			if b == "" || len(b) > 255 {
				return model.FieldError([]string{"input", "apps", strconv.Itoa(i), "bundleId"}, "bundleId must be 1 to 255 characters")
			}
			if seen[b] {
				continue
			}
			seen[b] = true
			bundles = append(bundles, b)
			rows = append(rows, &model.DeviceApp{BundleID: b, Name: strings.TrimSpace(a.Name), Version: strings.TrimSpace(a.Version), Managed: a.Managed, ReportedAt: now})
		}
		old, err := tx.DeviceInventory(ctx, dev.ID)
		if err != nil {
			return err
		}
		var gone []string
		for _, o := range old {
			if !seen[o.BundleID] {
				gone = append(gone, o.BundleID)
			}
		}
		known, err := tx.AppsByBundleIDs(ctx, append(append([]string{}, bundles...), gone...))
		if err != nil {
			return err
		}
		for _, r := range rows {
			if app := known[r.BundleID]; app != nil {
				id := app.ID
				r.AppID = &id
			}
		}
		if err := tx.ReplaceInventory(ctx, dev.ID, rows); err != nil {
			return err
		}
		dev.LastSeenAt = &now
		if err := tx.SaveDevice(ctx, dev); err != nil {
			return err
		}
		rule := RuleActor("R4c app removed from device")
		for _, b := range gone {
			app := known[b]
			if app == nil {
				continue
			}
			why := fmt.Sprintf("%s was removed from device %s", nameOf(app), dev.SerialNumber)
			n, err := s.reclaimWhere(ctx, tx, rule, db.AssignmentFilter{DeviceID: dev.ID, AppID: app.ID, Kind: model.LicenseKindDevice}, why)
			if err != nil {
				return err
			}
			res.Reclaims += n
			if dev.UserID == nil {
				continue
			}
			// A user license comes back when the app is on none of the user's devices.
			still, err := tx.UserHasAppOnDevices(ctx, *dev.UserID, b)
			if err != nil {
				return err
			}
			if !still {
				n, err := s.reclaimWhere(ctx, tx, rule, db.AssignmentFilter{UserID: *dev.UserID, AppID: app.ID, Kind: model.LicenseKindUser},
					why+", the last of its user's devices that had it")
				if err != nil {
					return err
				}
				res.Reclaims += n
			}
		}
		for _, r := range rows {
			app := known[r.BundleID]
			if r.Managed || app == nil {
				continue
			}
			pools, err := tx.PoolsOfApp(ctx, app.ID)
			if err != nil {
				return err
			}
			if len(pools) > 0 {
				res.Candidates = append(res.Candidates, Candidate{App: app, Pools: pools})
			}
		}
		return nil
	})
	if err == nil && res.Reclaims > 0 {
		s.kick(0)
	}
	return res, err
}

// ConvertResult is the license and command of a conversion.
type ConvertResult struct {
	AssignmentID int64 `json:"assignmentId"`
	CommandID    int64 `json:"commandId"`
}

// ConvertAppToManaged takes an unmanaged app on a device under management (R6): a license is
// taken first (a new one, or the one the holder already has), then a TAKE_MANAGEMENT command is
// queued, which waits until Apple confirms the license.
func (s *Service) ConvertAppToManaged(ctx context.Context, actor Actor, ref Target, appID, accountID int64, kind model.LicenseKind, idempotencyKey string) (*ConvertResult, error) {
	in := map[string]any{"device": ref, "appId": appID, "accountId": accountID, "kind": kind}
	res, _, err := idempotent(ctx, s, actor, idempotencyKey, "convertAppToManaged", in, func(tx *db.DB) (*ConvertResult, error) {
		dev, err := s.deviceRef(ctx, tx, ref)
		if err != nil {
			return nil, err
		}
		app, err := tx.AppByID(ctx, appID)
		if errors.Is(err, model.ErrNotFound) {
			return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: "no such app"}
		}
		if err != nil {
			return nil, err
		}
		inv, err := tx.DeviceInventory(ctx, dev.ID)
		if err != nil {
			return nil, err
		}
		var entry *model.DeviceApp
		for _, e := range inv {
			if e.BundleID == app.BundleID && app.BundleID != "" {
				entry = e
			}
		}
		switch {
		case entry == nil:
			return nil, model.FieldError([]string{"input", "appId"}, "%s is not in the inventory of device %s; report the device's apps first, or assign and install it instead", nameOf(app), dev.SerialNumber)
		case entry.Managed:
			return nil, &model.Error{Code: model.CodeConflict, Field: []string{"input", "appId"}, Message: fmt.Sprintf("%s is already managed on device %s", nameOf(app), dev.SerialNumber)}
		}
		target := Target{DeviceID: dev.ID}
		var a *model.LicenseAssignment
		r, h, err := s.assignTx(ctx, tx, actor, AssignInput{AppID: app.ID, AccountID: accountID, Kind: kind, Target: target,
			Reason: "converting the unmanaged app on device " + dev.SerialNumber + " to managed", Origin: model.OriginConversion})
		if e, ok := model.AsError(err); ok && e.Code == model.CodeAlreadyAssigned {
			// The holder has the license already: only the command is missing.
			if a, err = tx.ActiveAssignmentOfApp(ctx, app.ID, h.kind, serialOf(h), clientIDOf(h)); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		} else if a, err = tx.AssignmentByID(ctx, r.AssignmentID); err != nil {
			return nil, err
		}
		if _, err := s.queueCommand(ctx, tx, dev.ID, app.ID, a, model.CommandTakeManagement, "convert the unmanaged app to managed (R6)"); err != nil {
			return nil, err
		}
		c, err := tx.PendingCommand(ctx, dev.ID, app.ID, model.CommandTakeManagement)
		if err != nil {
			return nil, err
		}
		return &ConvertResult{AssignmentID: a.ID, CommandID: c.ID}, nil
	})
	if err == nil {
		s.kick(0)
	}
	return res, err
}

// InstallResult lists the commands queued and the devices refused.
type InstallResult struct {
	CommandIDs []int64        `json:"commandIds"`
	Errors     []*model.Error `json:"errors,omitempty"`
}

// SendInstallRequest queues install or update commands for a device-licensed app (R7: the App
// Store does not update apps with device licenses). Without devices it covers every device
// holding a device license for the app.
func (s *Service) SendInstallRequest(ctx context.Context, actor Actor, appID int64, devices []Target, kind model.CommandKind, idempotencyKey string) (*InstallResult, error) {
	switch kind {
	case model.CommandInstall, model.CommandUpdate, model.CommandReinstall:
	default:
		return nil, model.FieldError([]string{"input", "kind"}, "kind must be INSTALL, UPDATE or REINSTALL")
	}
	in := map[string]any{"appId": appID, "devices": devices, "kind": kind}
	res, _, err := idempotent(ctx, s, actor, idempotencyKey, "sendInstallRequest", in, func(tx *db.DB) (*InstallResult, error) {
		app, err := tx.AppByID(ctx, appID)
		if errors.Is(err, model.ErrNotFound) {
			return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: "no such app"}
		}
		if err != nil {
			return nil, err
		}
		out := &InstallResult{CommandIDs: []int64{}}
		var targets []*model.LicenseAssignment
		if len(devices) == 0 {
			if targets, err = tx.ActiveAssignmentsOf(ctx, db.AssignmentFilter{AppID: app.ID, Kind: model.LicenseKindDevice}); err != nil {
				return nil, err
			}
		} else {
			for i, ref := range devices {
				field := []string{"input", "devices", strconv.Itoa(i)}
				dev, err := s.deviceRef(ctx, tx, ref)
				if e, ok := model.AsError(err); ok {
					e.Field = field
					out.Errors = append(out.Errors, e)
					continue
				}
				if err != nil {
					return nil, err
				}
				if dev.Status == model.DeviceRetired {
					out.Errors = append(out.Errors, &model.Error{Code: model.CodeDeviceRetired, Field: field, Message: "device " + dev.SerialNumber + " is retired"})
					continue
				}
				a, err := tx.ActiveAssignmentOfApp(ctx, app.ID, model.LicenseKindDevice, dev.SerialNumber, "")
				if errors.Is(err, model.ErrNotFound) {
					out.Errors = append(out.Errors, &model.Error{Code: model.CodeNotFound, Field: field,
						Message: fmt.Sprintf("device %s holds no device license for %s; assign one first", dev.SerialNumber, nameOf(app))})
					continue
				}
				if err != nil {
					return nil, err
				}
				targets = append(targets, a)
			}
		}
		for _, a := range targets {
			if a.Status == model.AssignmentReclaiming || a.DeviceID == nil {
				continue
			}
			if _, err := s.queueCommand(ctx, tx, *a.DeviceID, app.ID, a, kind, strings.ToLower(string(kind))+" requested by "+actor.String()); err != nil {
				return nil, err
			}
			c, err := tx.PendingCommand(ctx, *a.DeviceID, app.ID, kind)
			if err != nil {
				return nil, err
			}
			out.CommandIDs = append(out.CommandIDs, c.ID)
		}
		return out, s.auditTx(ctx, tx, actor, "app.install_request", "App", app.ID, nil,
			fmt.Sprintf("%s of %s sent to %d devices", kind, nameOf(app), len(out.CommandIDs)), nil)
	})
	return res, err
}

// AcknowledgeCommands records the MDM's answers; commands that are not pending are reported.
func (s *Service) AcknowledgeCommands(ctx context.Context, actor Actor, ids []int64, status model.CommandStatus, result string) ([]int64, []*model.Error, error) {
	if status != model.CommandAcknowledged && status != model.CommandFailed {
		return nil, nil, model.FieldError([]string{"input", "status"}, "status must be ACKNOWLEDGED or FAILED")
	}
	if len(ids) == 0 { // the most: @constraint on AcknowledgeDeviceCommandsInput.ids
		return nil, nil, model.FieldError([]string{"input", "ids"}, "give at least one command id")
	}
	var done []int64
	var errs []*model.Error
	var res *string
	if r := strings.TrimSpace(result); r != "" {
		r = truncate(r, 2000)
		res = &r
	}
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		done, errs = nil, nil
		for i, id := range ids {
			ok, err := tx.AcknowledgeCommand(ctx, id, status, res, s.now())
			if err != nil {
				return err
			}
			if !ok {
				errs = append(errs, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "ids", strconv.Itoa(i)}, Message: "no pending command with this id"})
				continue
			}
			done = append(done, id)
		}
		return nil
	})
	return done, errs, err
}
