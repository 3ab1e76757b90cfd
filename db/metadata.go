package db

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm/clause"

	"orchard/model"
)

// App metadata and availability (doc/design.md §2.3: the reconcile fetches names, icons, platforms,
// the B2B flag and the countries an app is sold in). The scheduler looks them up after a pass;
// these are its reads and writes.

// AppsNeedingMetadata reads up to limit apps of an account's pools whose metadata was never
// looked up or was looked up before before, oldest first.
func (d *DB) AppsNeedingMetadata(ctx context.Context, accountID int64, before time.Time, limit int) ([]*model.App, error) {
	var out []*model.App
	err := d.with(ctx).
		Where("id IN (SELECT app_id FROM license_pools WHERE account_id = ?) AND (metadata_refreshed_at IS NULL OR metadata_refreshed_at < ?)", accountID, utc(before)).
		Order("id").Limit(limit).Find(&out).Error
	return out, wrap("apps needing metadata", err)
}

// AppsMissingAvailability reads up to limit apps of an account's pools for which Orchard does
// not know yet whether they are sold in one of the given countries.
func (d *DB) AppsMissingAvailability(ctx context.Context, accountID int64, countries []string, limit int) ([]*model.App, error) {
	var out []*model.App
	if len(countries) == 0 {
		return out, nil
	}
	err := d.with(ctx).
		Where("id IN (SELECT app_id FROM license_pools WHERE account_id = ?) AND (SELECT COUNT(*) FROM app_countries c WHERE c.app_id = apps.id AND c.country_code IN ?) < ?",
			accountID, countries, len(countries)).
		Order("id").Limit(limit).Find(&out).Error
	return out, wrap("apps missing availability", err)
}

// CountriesInUse lists the countries availability matters for: those of active devices and of
// live accounts (upper case, sorted).
func (d *DB) CountriesInUse(ctx context.Context) ([]string, error) {
	var dev, acc []string
	if err := d.with(ctx).Model(&model.Device{}).Where("status = ? AND country_code <> ''", model.DeviceActive).
		Distinct("country_code").Pluck("country_code", &dev).Error; err != nil {
		return nil, wrap("countries in use", err)
	}
	if err := d.with(ctx).Model(&model.Account{}).Where("removed_at IS NULL AND country_code <> ''").
		Distinct("country_code").Pluck("country_code", &acc).Error; err != nil {
		return nil, wrap("countries in use", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range append(dev, acc...) {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

// AppMetadata is what the lookup says of an app. Found is false when the lookup did not
// return it (not sold in the account's storefront, or not visible): then only the refresh time
// is recorded, and what Orchard knew is kept.
type AppMetadata struct {
	AppID                                     int64
	Found                                     bool
	Name, BundleID, IconURL, MinimumOSVersion string
	Version                                   string
	Platforms                                 string // comma-separated model.Platform values; "" keeps the asset's
	IsB2B, IsFree                             bool
}

// SetAppMetadata stores looked-up metadata, stamped with at.
func (d *DB) SetAppMetadata(ctx context.Context, rows []AppMetadata, at time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	at = utc(at)
	return wrap("set app metadata", d.Tx(ctx, func(tx *DB) error {
		for _, r := range rows {
			cols := map[string]any{"metadata_refreshed_at": at, "updated_at": Now()}
			if r.Found {
				cols["name"] = truncate(r.Name, 255)
				cols["bundle_id"] = truncate(r.BundleID, 255)
				cols["icon_url"] = truncate(r.IconURL, 1024)
				cols["minimum_os_version"] = truncate(r.MinimumOSVersion, 32)
				cols["version"] = truncate(r.Version, 64)
				cols["is_b2b"] = r.IsB2B
				cols["is_free"] = r.IsFree
				if r.Platforms != "" {
					cols["platforms"] = truncate(r.Platforms, 255)
				}
			}
			if err := tx.with(ctx).Model(&model.App{}).Where("id = ?", r.AppID).UpdateColumns(cols).Error; err != nil {
				return fmt.Errorf("app %d: %w", r.AppID, err)
			}
		}
		return nil
	}))
}

// SetAvailability records whether apps are sold in countries (one row per app and country,
// replaced when looked up again).
func (d *DB) SetAvailability(ctx context.Context, rows []model.AppCountry) error {
	if len(rows) == 0 {
		return nil
	}
	for i := range rows {
		rows[i].CheckedAt = utc(rows[i].CheckedAt)
		rows[i].CountryCode = strings.ToUpper(rows[i].CountryCode)
	}
	return wrap("set availability", d.with(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "app_id"}, {Name: "country_code"}},
		DoUpdates: clause.AssignmentColumns([]string{"available", "checked_at"}),
	}).CreateInBatches(rows, d.batchOf(rows)).Error)
}
