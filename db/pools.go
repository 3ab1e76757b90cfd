package db

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"orchard/model"
)

// SetPoolCounts sets Orchard's own counts of a pool (for fixtures and the recount of a sync).
func (d *DB) SetPoolCounts(ctx context.Context, poolID, assigned, reserved int64) error {
	return wrap("set pool counts", d.with(ctx).Model(&model.LicensePool{}).Where("id = ?", poolID).
		Updates(map[string]any{"assigned_count": assigned, "reserved_count": reserved, "updated_at": Now()}).Error)
}

// PoolParent names the column that ties pools to a parent.
type PoolParent string

func (p PoolParent) relation() (Relation, error) {
	switch p {
	case PoolsOfAccount, PoolsOfApp:
		return Relation{Table: "license_pools", From: "license_pools", ParentExpr: "license_pools." + string(p)}, nil
	}
	return Relation{}, fmt.Errorf("unknown pool parent %q", p)
}

// PoolsByParent reads one page of pools per parent.
func (d *DB) PoolsByParent(ctx context.Context, parent PoolParent, first int, pages []ChildPage) (map[int64][]*model.LicensePool, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, wrap("pools by parent", err)
	}
	out, err := childrenOf[model.LicensePool](ctx, d, r, "", nil, first, pages)
	return out, wrap("pools by parent", err)
}

// CountPoolsByParent counts pools per parent.
func (d *DB) CountPoolsByParent(ctx context.Context, parent PoolParent, parents []int64) (map[int64]int, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, wrap("count pools by parent", err)
	}
	out, err := countChildren(ctx, d, r, "", nil, parents)
	return out, wrap("count pools by parent", err)
}

// PoolByID reads one pool.
func (d *DB) PoolByID(ctx context.Context, id int64) (*model.LicensePool, error) {
	var p model.LicensePool
	if err := d.with(ctx).Where("id = ?", id).Take(&p).Error; err != nil {
		return nil, wrap("pool by id", notFound(err))
	}
	return &p, nil
}

// PoolsOfApp reads every pool of an app in live accounts, by account id.
func (d *DB) PoolsOfApp(ctx context.Context, appID int64) ([]*model.LicensePool, error) {
	out, err := findAll[model.LicensePool](d.with(ctx).Where("app_id = ? AND account_id IN (SELECT id FROM accounts WHERE removed_at IS NULL)", appID).Order("account_id"))
	return out, wrap("pools of app", err)
}

// ReserveLicense takes one license of a pool for an assignment on its way to Apple, if one is
// left: one conditional update, which the database serialises per pool, so concurrent callers
// (and replicas) can never reserve more than the pool has (R13).
func (d *DB) ReserveLicense(ctx context.Context, poolID int64) (bool, error) {
	res := d.with(ctx).Exec(`UPDATE license_pools SET reserved_count = reserved_count + 1, updated_at = ?
  WHERE id = ? AND (unlimited = ? OR assigned_count + reserved_count < total_count)`, Now(), poolID, true)
	return res.RowsAffected == 1, wrap("reserve license", res.Error)
}

// AdjustPoolCounts moves counts of a pool: assigned += da, reserved += dr. A status change
// moves them through ApplyTransitions, by the transition table; this is for reservations
// taken and released before an assignment exists.
func (d *DB) AdjustPoolCounts(ctx context.Context, poolID int64, da, dr int64) error {
	return wrap("adjust pool counts", d.with(ctx).Exec(`UPDATE license_pools SET assigned_count = CASE WHEN assigned_count + ? < 0 THEN 0 ELSE assigned_count + ? END,
  reserved_count = CASE WHEN reserved_count + ? < 0 THEN 0 ELSE reserved_count + ? END, updated_at = ? WHERE id = ?`,
		da, da, dr, dr, Now(), poolID).Error)
}

// ReserveLicenses takes up to n licenses of a pool at once and returns how many it took.
func (d *DB) ReserveLicenses(ctx context.Context, poolID int64, n int64) (int64, error) {
	p, err := d.lockPool(ctx, poolID)
	if err != nil {
		return 0, wrap("reserve licenses", err)
	}
	take := n
	if !p.Unlimited {
		take = min(n, max(p.TotalCount-p.AssignedCount-p.ReservedCount, 0))
	}
	if take == 0 {
		return 0, nil
	}
	if err := d.AdjustPoolCounts(ctx, poolID, 0, take); err != nil {
		return 0, wrap("reserve licenses", err)
	}
	return take, nil
}

func (d *DB) lockPool(ctx context.Context, id int64) (*model.LicensePool, error) {
	var p model.LicensePool
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&p).Error; err != nil {
		return nil, wrap("lock pool", notFound(err))
	}
	return &p, nil
}

// PoolRefs reads the account's pools of the given assets, by AssetKey.
func (d *DB) PoolRefs(ctx context.Context, accountID int64, adamIDs []string) (map[string]PoolRef, error) {
	var pools []model.LicensePool
	out := map[string]PoolRef{}
	if len(adamIDs) == 0 {
		return out, nil
	}
	if err := d.with(ctx).Select("id", "app_id", "adam_id", "pricing_param").Where("account_id = ? AND adam_id IN ?", accountID, adamIDs).Find(&pools).Error; err != nil {
		return nil, wrap("pool refs", err)
	}
	for _, p := range pools {
		out[AssetKey(p.AdamID, p.PricingParam)] = PoolRef{PoolID: p.ID, AppID: p.AppID}
	}
	return out, nil
}

// PoolFilter selects license pools.
type PoolFilter struct {
	AccountID int64
	AppID     int64
	// NoLicensesLeft: true for exhausted pools, false for pools with licenses left.
	NoLicensesLeft *bool
}

func (d *DB) poolQuery(f PoolFilter) *gorm.DB {
	q := d.gorm.Model(&model.LicensePool{})
	if f.AccountID != 0 {
		q = q.Where("license_pools.account_id = ?", f.AccountID)
	}
	if f.AppID != 0 {
		q = q.Where("license_pools.app_id = ?", f.AppID)
	}
	if f.NoLicensesLeft != nil {
		exhausted := "(license_pools.unlimited = ? AND license_pools.assigned_count + license_pools.reserved_count >= license_pools.total_count)"
		if *f.NoLicensesLeft {
			q = q.Where(exhausted, false)
		} else {
			q = q.Where("NOT "+exhausted, false)
		}
	}
	return q
}

// ListPools reads a page of pools.
func (d *DB) ListPools(ctx context.Context, f PoolFilter, p Page) ([]*model.LicensePool, bool, error) {
	out, more, err := list[model.LicensePool](ctx, d.poolQuery(f), "license_pools", p)
	return out, more, wrap("list pools", err)
}

// CountPools counts pools.
func (d *DB) CountPools(ctx context.Context, f PoolFilter) (int, error) {
	n, err := count(ctx, d.poolQuery(f), "license_pools")
	return n, wrap("count pools", err)
}

// PoolsByID reads pools by id.
func (d *DB) PoolsByID(ctx context.Context, ids []int64) ([]*model.LicensePool, error) {
	out, err := byIDs[model.LicensePool](ctx, d, ids)
	return out, wrap("pools by id", err)
}

// RecountPools recomputes Orchard's counts of an account's pools from the assignment rows
// (doc/design.md §2.1: the counters can always be recomputed, and a sync does so). The pool rows are
// locked first, so a reservation cannot slip between the count and the update. It reads
// every active assignment of the account (through an index): a full pass's cost; a pass that
// knows which pools it touched recounts those (RecountPoolsOf).
func (d *DB) RecountPools(ctx context.Context, accountID int64) (int, error) {
	n, err := d.recountPools(ctx, accountID, nil)
	if err != nil {
		return 0, fmt.Errorf("recount pools of account %d: %w", accountID, err)
	}
	return n, nil
}

// RecountPoolsOf is RecountPools for some of the account's pools (none: nothing to do), so
// that an incremental pass of a large account costs what it changed, not what the account
// holds.
func (d *DB) RecountPoolsOf(ctx context.Context, accountID int64, poolIDs []int64) (int, error) {
	if len(poolIDs) == 0 {
		return 0, nil
	}
	n, err := d.recountPools(ctx, accountID, poolIDs)
	if err != nil {
		return 0, fmt.Errorf("recount pools of account %d: %w", accountID, err)
	}
	return n, nil
}

// recountPools recounts the account's pools poolIDs, or all of them (nil).
func (d *DB) recountPools(ctx context.Context, accountID int64, poolIDs []int64) (int, error) {
	changed := 0
	err := d.Tx(ctx, func(tx *DB) error {
		changed = 0
		var pools []*model.LicensePool
		q := tx.forUpdate(tx.with(ctx)).Select("id", "assigned_count", "reserved_count").Where("account_id = ?", accountID)
		if poolIDs != nil {
			q = q.Where("id IN ?", poolIDs)
		}
		if err := q.Find(&pools).Error; err != nil {
			return fmt.Errorf("lock pools: %w", err)
		}
		var rows []struct {
			PoolID int64
			Status model.AssignmentStatus
			N      int64
		}
		// By the account's pools rather than by account_id: the (pool_id, status) index covers
		// the count, where the (account_id, status) one sends every row to the table for its
		// pool_id (hundreds of milliseconds for 100,000 assignments on MySQL, at every pass).
		cq := tx.with(ctx).Model(&model.LicenseAssignment{}).Select("pool_id, status, COUNT(*) AS n")
		if poolIDs != nil {
			ids := make([]int64, len(pools)) // the account's, of those asked for
			for i, p := range pools {
				ids[i] = p.ID
			}
			if len(ids) == 0 {
				return nil
			}
			cq = cq.Where("pool_id IN ? AND status IN ?", ids, activeStatuses)
		} else {
			cq = cq.Where("pool_id IN (SELECT id FROM license_pools WHERE account_id = ?) AND status IN ?", accountID, activeStatuses)
		}
		if err := cq.Group("pool_id, status").Scan(&rows).Error; err != nil {
			return fmt.Errorf("count assignments: %w", err)
		}
		type c struct{ assigned, reserved int64 }
		counts := map[int64]*c{}
		for _, r := range rows {
			x := counts[r.PoolID]
			if x == nil {
				x = &c{}
				counts[r.PoolID] = x
			}
			// What the counters count (model.LicensePool): held at Apple, or on its way there.
			if r.Status.HeldAtApple() {
				x.assigned += r.N
			} else {
				x.reserved += r.N
			}
		}
		for _, p := range pools {
			x := counts[p.ID]
			if x == nil {
				x = &c{}
			}
			if x.assigned == p.AssignedCount && x.reserved == p.ReservedCount {
				continue
			}
			if err := tx.SetPoolCounts(ctx, p.ID, x.assigned, x.reserved); err != nil {
				return fmt.Errorf("set counters of pool %d: %w", p.ID, err)
			}
			changed++
		}
		return nil
	})
	return changed, err
}

const (
	PoolsOfAccount PoolParent = "account_id"
	PoolsOfApp     PoolParent = "app_id"
)
