package db

import (
	"context"
	"fmt"

	"orchard/model"
)

// The bulk reads behind the assignment rules (package license, planner.go): every fact the
// rules need about a chunk of targets is read with one statement per kind of fact, so that one
// target and five hundred cost the same number of round trips.

// HeldLicense is a holder's active assignment of an app.
type HeldLicense struct {
	ID     int64
	Status model.AssignmentStatus
}

// ActiveAssignmentsOfAppByHolders returns, by holder key, the active assignment of an app (in
// any pool) held by each of the given serial numbers (DEVICE) or clientUserIds (USER) that has
// one; when a holder has several, the oldest.
func (d *DB) ActiveAssignmentsOfAppByHolders(ctx context.Context, appID int64, kind model.LicenseKind, serials, clientUserIDs []string) (map[string]HeldLicense, error) {
	out := map[string]HeldLicense{}
	// "+app_id": the holders' index finds a handful of rows; SQLite, without statistics, would
	// pick the app's index and read every assignment of the app (see ActiveAssignmentOfApp).
	q := d.with(ctx).Model(&model.LicenseAssignment{}).Select("id", "status", "serial_number", "client_user_id").
		Where("+app_id = ? AND kind = ? AND status IN ?", appID, kind, activeStatuses)
	switch {
	case kind == model.LicenseKindDevice && len(serials) > 0:
		q = q.Where("serial_number IN ?", serials)
	case kind == model.LicenseKindUser && len(clientUserIDs) > 0:
		q = q.Where("client_user_id IN ?", clientUserIDs)
	default:
		return out, nil
	}
	var rows []struct {
		ID           int64
		Status       model.AssignmentStatus
		SerialNumber *string
		ClientUserID *string
	}
	if err := q.Order("id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("active assignments of app %d by holders: %w", appID, err)
	}
	for _, r := range rows {
		var key string
		switch {
		case kind == model.LicenseKindDevice && r.SerialNumber != nil:
			key = model.HolderKeyFor(kind, *r.SerialNumber, "")
		case kind == model.LicenseKindUser && r.ClientUserID != nil:
			key = model.HolderKeyFor(kind, "", *r.ClientUserID)
		default:
			continue
		}
		if _, seen := out[key]; !seen {
			out[key] = HeldLicense{ID: r.ID, Status: r.Status}
		}
	}
	return out, nil
}

// AppAvailabilityIn returns, for each of the countries whose availability of the app is known,
// whether the app is sold there (R11); a country absent from the answer is not known yet.
func (d *DB) AppAvailabilityIn(ctx context.Context, appID int64, countries []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(countries) == 0 {
		return out, nil
	}
	var rows []model.AppCountry
	if err := d.with(ctx).Where("app_id = ? AND country_code IN ?", appID, countries).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("availability of app %d in %d countries: %w", appID, len(countries), err)
	}
	for _, r := range rows {
		out[r.CountryCode] = r.Available
	}
	return out, nil
}
