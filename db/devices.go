package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// DeviceAppsByDevice reads one page of inventory per device.
func (d *DB) DeviceAppsByDevice(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.DeviceApp, error) {
	out, err := childrenOf[model.DeviceApp](ctx, d, relDeviceApps, "", nil, first, pages)
	return out, wrap("device apps by device", err)
}

// CountDeviceAppsByDevice counts inventory entries per device.
func (d *DB) CountDeviceAppsByDevice(ctx context.Context, parents []int64) (map[int64]int, error) {
	out, err := countChildren(ctx, d, relDeviceApps, "", nil, parents)
	return out, wrap("count device apps by device", err)
}

// DevicesByUser reads one page of devices per user.
func (d *DB) DevicesByUser(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.Device, error) {
	out, err := childrenOf[model.Device](ctx, d, relDevicesOfUser, "", nil, first, pages)
	return out, wrap("devices by user", err)
}

// CountDevicesByUser counts devices per user.
func (d *DB) CountDevicesByUser(ctx context.Context, parents []int64) (map[int64]int, error) {
	out, err := countChildren(ctx, d, relDevicesOfUser, "", nil, parents)
	return out, wrap("count devices by user", err)
}

// DeviceByID reads one device.
func (d *DB) DeviceByID(ctx context.Context, id int64) (*model.Device, error) {
	dev, err := findOne[model.Device](d.with(ctx).Where("id = ?", id))
	return dev, wrap("device by id", err)
}

// SaveDevice inserts or updates a device.
func (d *DB) SaveDevice(ctx context.Context, dev *model.Device) error {
	if dev.ID == 0 {
		err := d.with(ctx).Create(dev).Error
		if isDuplicate(err) {
			return ErrDuplicate
		}
		return wrap("save device", err)
	}
	return wrap("save device", d.with(ctx).Save(dev).Error)
}

// DevicesBySerials reads devices by serial number.
func (d *DB) DevicesBySerials(ctx context.Context, serials []string) ([]*model.Device, error) {
	var out []*model.Device
	if len(serials) == 0 {
		return out, nil
	}
	err := d.with(ctx).Where("serial_number IN ?", serials).Find(&out).Error
	return out, wrap("devices by serials", err)
}

// DeviceInventory reads a device's inventory.
func (d *DB) DeviceInventory(ctx context.Context, deviceID int64) ([]*model.DeviceApp, error) {
	var out []*model.DeviceApp
	err := d.with(ctx).Where("device_id = ?", deviceID).Order("id").Find(&out).Error
	return out, wrap("device inventory", err)
}

// ReplaceInventory replaces a device's inventory with apps (matched by bundle id: entries kept
// keep their id).
func (d *DB) ReplaceInventory(ctx context.Context, deviceID int64, apps []*model.DeviceApp) error {
	old, err := d.DeviceInventory(ctx, deviceID)
	if err != nil {
		return wrap("replace inventory", err)
	}
	byBundle := map[string]*model.DeviceApp{}
	for _, o := range old {
		byBundle[o.BundleID] = o
	}
	var gone []int64
	keep := map[string]bool{}
	for _, a := range apps {
		keep[a.BundleID] = true
	}
	for _, o := range old {
		if !keep[o.BundleID] {
			gone = append(gone, o.ID)
		}
	}
	if len(gone) > 0 {
		if err := d.with(ctx).Where("id IN ?", gone).Delete(&model.DeviceApp{}).Error; err != nil {
			return wrap("replace inventory", err)
		}
	}
	var ins []*model.DeviceApp
	for _, a := range apps {
		a.DeviceID = deviceID
		if o, ok := byBundle[a.BundleID]; ok {
			a.ID = o.ID
			if err := d.with(ctx).Save(a).Error; err != nil {
				return wrap("replace inventory", err)
			}
			continue
		}
		ins = append(ins, a)
	}
	if len(ins) > 0 {
		return wrap("replace inventory", d.with(ctx).CreateInBatches(ins, d.batchOf(ins)).Error)
	}
	return nil
}

// UserHasAppOnDevices reports whether any device of a user has an app (by bundle id) in its
// inventory.
func (d *DB) UserHasAppOnDevices(ctx context.Context, userID int64, bundleID string) (bool, error) {
	var n int64
	err := d.with(ctx).Model(&model.DeviceApp{}).
		Where("bundle_id = ? AND device_id IN (SELECT id FROM devices WHERE user_id = ? AND status = ?)", bundleID, userID, model.DeviceActive).
		Count(&n).Error
	return n > 0, wrap("user has app on devices", err)
}

// DeviceFilter selects devices.
type DeviceFilter struct {
	Status      model.DeviceStatus
	Platform    model.Platform
	SharedIPad  *bool
	UserID      int64
	CountryCode string
	Search      string
}

func (d *DB) deviceQuery(f DeviceFilter) *gorm.DB {
	q := d.gorm.Model(&model.Device{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Platform != "" {
		q = q.Where("platform = ?", f.Platform)
	}
	if f.SharedIPad != nil {
		q = q.Where("shared_ipad = ?", *f.SharedIPad)
	}
	if f.UserID != 0 {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.CountryCode != "" {
		q = q.Where("country_code = ?", strings.ToUpper(f.CountryCode))
	}
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(serial_number) LIKE ? ESCAPE '!' OR LOWER(name) LIKE ? ESCAPE '!')", like, like)
	}
	return q
}

// ListDevices reads a page of devices.
func (d *DB) ListDevices(ctx context.Context, f DeviceFilter, p Page) ([]*model.Device, bool, error) {
	out, more, err := list[model.Device](ctx, d.deviceQuery(f), "devices", p)
	return out, more, wrap("list devices", err)
}

// CountDevices counts devices.
func (d *DB) CountDevices(ctx context.Context, f DeviceFilter) (int, error) {
	n, err := count(ctx, d.deviceQuery(f), "devices")
	return n, wrap("count devices", err)
}

// DevicesByID reads devices by id.
func (d *DB) DevicesByID(ctx context.Context, ids []int64) ([]*model.Device, error) {
	out, err := byIDs[model.Device](ctx, d, ids)
	return out, wrap("devices by id", err)
}

// DevicesAfter reads a batch of devices by id order (for a dynamic group's first fill).
func (d *DB) DevicesAfter(ctx context.Context, after int64, limit int) ([]*model.Device, error) {
	ds, err := findAll[model.Device](d.with(ctx).Where("id > ?", after).Order("id").Limit(limit))
	return ds, wrap("devices after", err)
}

// DevicesOfUsers reads every device of the given users, one statement per bounded chunk of
// users (in id order within a chunk); no users, no statement. Unlike DevicesByUser (one page per user for a nested connection) it
// has no page size: policy evaluation needs all of a holder's devices.
func (d *DB) DevicesOfUsers(ctx context.Context, userIDs []int64) ([]*model.Device, error) {
	out := []*model.Device{}
	for _, chunk := range chunks(userIDs, d.inChunk()) {
		rs, err := findAll[model.Device](d.with(ctx).Where("user_id IN ?", chunk).Order("id"))
		if err != nil {
			return nil, wrap("devices of users", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// DeviceBySerial reads a device by serial number.
func (d *DB) DeviceBySerial(ctx context.Context, serial string) (*model.Device, error) {
	dev, err := findOne[model.Device](d.with(ctx).Where("serial_number = ?", serial))
	return dev, wrap("device by serial", err)
}

var relDeviceApps = Relation{Table: "device_apps", From: "device_apps", ParentExpr: "device_apps.device_id"}

var relDevicesOfUser = Relation{Table: "devices", From: "devices", ParentExpr: "devices.user_id"}
