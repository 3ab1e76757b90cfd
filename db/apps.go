package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// AppByID reads one app.
func (d *DB) AppByID(ctx context.Context, id int64) (*model.App, error) {
	a, err := findOne[model.App](d.with(ctx).Where("id = ?", id))
	return a, wrap("app by id", err)
}

// AppByBundleID reads the app with a bundle id.
func (d *DB) AppByBundleID(ctx context.Context, bundleID string) (*model.App, error) {
	var a model.App
	if err := d.with(ctx).Where("bundle_id = ?", bundleID).Order("id").Take(&a).Error; err != nil {
		return nil, wrap("app by bundle id", notFound(err))
	}
	return &a, nil
}

// AppsByBundleIDs reads the apps with the given bundle ids, by bundle id.
func (d *DB) AppsByBundleIDs(ctx context.Context, bundleIDs []string) (map[string]*model.App, error) {
	out := map[string]*model.App{}
	if len(bundleIDs) == 0 {
		return out, nil
	}
	var apps []*model.App
	if err := d.with(ctx).Where("bundle_id IN ?", bundleIDs).Order("id").Find(&apps).Error; err != nil {
		return nil, wrap("apps by bundle ids", err)
	}
	for _, a := range apps {
		if _, ok := out[a.BundleID]; !ok {
			out[a.BundleID] = a
		}
	}
	return out, nil
}

// AppFilter selects apps.
type AppFilter struct {
	Search    string
	Platform  model.Platform
	Kind      model.AppKind
	AccountID int64
}

func (d *DB) appQuery(f AppFilter) *gorm.DB {
	q := d.gorm.Model(&model.App{})
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(apps.name) LIKE ? ESCAPE '!' OR LOWER(apps.bundle_id) LIKE ? ESCAPE '!')", like, like)
	}
	if f.Platform != "" {
		// platforms is a comma-separated list; match a whole element.
		if d.dialect == MySQL {
			q = q.Where("FIND_IN_SET(?, apps.platforms) > 0", string(f.Platform))
		} else {
			q = q.Where("(',' || apps.platforms || ',') LIKE ?", "%,"+string(f.Platform)+",%")
		}
	}
	if f.Kind != "" {
		q = q.Where("apps.kind = ?", f.Kind)
	}
	if f.AccountID != 0 {
		q = q.Where("EXISTS (SELECT 1 FROM license_pools p WHERE p.app_id = apps.id AND p.account_id = ?)", f.AccountID)
	}
	return q
}

// ListApps reads a page of apps.
func (d *DB) ListApps(ctx context.Context, f AppFilter, p Page) ([]*model.App, bool, error) {
	out, more, err := list[model.App](ctx, d.appQuery(f), "apps", p)
	return out, more, wrap("list apps", err)
}

// CountApps counts apps.
func (d *DB) CountApps(ctx context.Context, f AppFilter) (int, error) {
	n, err := count(ctx, d.appQuery(f), "apps")
	return n, wrap("count apps", err)
}

// AppsByID reads apps by id.
func (d *DB) AppsByID(ctx context.Context, ids []int64) ([]*model.App, error) {
	out, err := byIDs[model.App](ctx, d, ids)
	return out, wrap("apps by id", err)
}

// AppByAdamID reads an app by Apple's id.
func (d *DB) AppByAdamID(ctx context.Context, adamID string) (*model.App, error) {
	a, err := findOne[model.App](d.with(ctx).Where("adam_id = ?", adamID))
	return a, wrap("app by adam id", err)
}

// CountriesByApp reads the countries each app is known to be sold in.
func (d *DB) CountriesByApp(ctx context.Context, appIDs []int64) (map[int64][]string, error) {
	var rows []model.AppCountry
	out := map[int64][]string{}
	if len(appIDs) == 0 {
		return out, nil
	}
	if err := d.with(ctx).Where("app_id IN ? AND available = ?", appIDs, true).Order("country_code").Find(&rows).Error; err != nil {
		return nil, wrap("countries by app", err)
	}
	for _, r := range rows {
		out[r.AppID] = append(out[r.AppID], r.CountryCode)
	}
	return out, nil
}
