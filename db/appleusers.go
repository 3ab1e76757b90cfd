package db

import (
	"context"
	"fmt"
	"strings"

	"orchard/model"
)

// AppleUserRow is one of Apple's users of an account as a pass saw it.
type AppleUserRow struct {
	ClientUserID, Email, InviteCode, IDHash string
	// Status is Apple's: Registered, Associated, Retired or Deleted.
	Status string
}

// AppleUserStatusOf maps Apple's user status onto Orchard's.
func AppleUserStatusOf(s string) model.AppleUserStatus {
	switch strings.ToLower(s) {
	case "associated":
		return model.AppleUserAssociated
	case "retired", "deleted":
		return model.AppleUserRetired
	}
	return model.AppleUserRegistered
}

// UpsertAppleUsers applies one page of Apple's users of an account, linking them to the users
// Orchard knows by clientUserId. A registration or retirement Orchard has in flight keeps its
// state until its event completes; on a full pass (runID ≠ 0) every row seen is marked.
func (d *DB) UpsertAppleUsers(ctx context.Context, accountID, runID int64, rows []AppleUserRow) (SyncCounts, error) {
	var counts SyncCounts
	if len(rows) == 0 {
		return counts, nil
	}
	now := Now()
	byID := map[string]AppleUserRow{}
	var ids []string
	for _, r := range rows {
		if r.ClientUserID == "" {
			continue
		}
		if _, dup := byID[r.ClientUserID]; !dup {
			ids = append(ids, r.ClientUserID)
		}
		byID[r.ClientUserID] = r
	}
	err := d.Tx(ctx, func(tx *DB) error {
		var existing []*model.AppleUser
		if err := tx.with(ctx).Where("account_id = ? AND client_user_id IN ?", accountID, ids).Find(&existing).Error; err != nil {
			return wrap("upsert apple users", err)
		}
		var seen []int64
		for _, u := range existing {
			r := byID[u.ClientUserID]
			delete(byID, u.ClientUserID)
			seen = append(seen, u.ID)
			st := AppleUserStatusOf(r.Status)
			if u.Status == model.AppleUserRetiring && st != model.AppleUserRetired {
				st = u.Status
			}
			if u.Status == st && ptrEq(u.InviteCode, r.InviteCode) && ptrEq(u.IDHash, r.IDHash) && (r.Email == "" || u.Email == r.Email) {
				continue
			}
			cols := map[string]any{"status": st, "invite_code": nilIfEmpty(r.InviteCode), "id_hash": nilIfEmpty(r.IDHash), "updated_at": now}
			if r.Email != "" {
				cols["email"] = r.Email
			}
			if err := tx.with(ctx).Model(&model.AppleUser{}).Where("id = ?", u.ID).UpdateColumns(cols).Error; err != nil {
				return wrap("upsert apple users", err)
			}
			counts.Changed++
		}
		if len(byID) > 0 {
			var newIDs []string
			for id := range byID {
				newIDs = append(newIDs, id)
			}
			var us []struct {
				ID           int64
				ClientUserID string
			}
			if err := tx.with(ctx).Model(&model.User{}).Select("id", "client_user_id").Where("client_user_id IN ?", newIDs).Find(&us).Error; err != nil {
				return wrap("upsert apple users", err)
			}
			known := map[string]int64{}
			for _, u := range us {
				known[u.ClientUserID] = u.ID
			}
			var ins []*model.AppleUser
			for id, r := range byID {
				au := &model.AppleUser{AccountID: accountID, ClientUserID: id, Email: r.Email, Status: AppleUserStatusOf(r.Status),
					InviteCode: strPtr(r.InviteCode), IDHash: strPtr(r.IDHash), CreatedAt: now, UpdatedAt: now}
				if uid, ok := known[id]; ok {
					au.UserID = &uid
				}
				if runID != 0 {
					au.SeenRunID = &runID
				}
				ins = append(ins, au)
			}
			if err := tx.with(ctx).CreateInBatches(ins, tx.batchOf(ins)).Error; err != nil {
				return fmt.Errorf("insert apple users: %w", err)
			}
			counts.Added += len(ins)
		}
		if runID != 0 && len(seen) > 0 {
			return wrap("upsert apple users", tx.with(ctx).Model(&model.AppleUser{}).Where("id IN ?", seen).UpdateColumn("seen_run_id", runID).Error)
		}
		return nil
	})
	return counts, wrap("upsert apple users", err)
}

// SweepAppleUsers ends a full pass over an account's active users: registered users Apple no
// longer lists as active were retired there.
func (d *DB) SweepAppleUsers(ctx context.Context, accountID, runID int64) (int, error) {
	res := d.with(ctx).Model(&model.AppleUser{}).
		Where("account_id = ? AND status IN ? AND (seen_run_id IS NULL OR seen_run_id <> ?)", accountID,
			[]model.AppleUserStatus{model.AppleUserRegistered, model.AppleUserAssociated}, runID).
		Where(runningFence, runID, model.SyncRunRunning).
		UpdateColumns(map[string]any{"status": model.AppleUserRetired, "updated_at": Now()})
	return int(res.RowsAffected), wrap("sweep apple users", res.Error)
}

func ptrEq(p *string, s string) bool {
	if p == nil {
		return s == ""
	}
	return *p == s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AppleUsersByUserIDs returns the Apple registrations of users by user id, each user's in
// account order; users without any are absent from the map. It is the batch read behind the
// User.appleRegistrations loader.
func (d *DB) AppleUsersByUserIDs(ctx context.Context, userIDs []int64) (map[int64][]*model.AppleUser, error) {
	out := make(map[int64][]*model.AppleUser, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []*model.AppleUser
	if err := d.with(ctx).Where("user_id IN ?", userIDs).Order("user_id, account_id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("apple users by user ids: %w", err)
	}
	for _, r := range rows {
		out[*r.UserID] = append(out[*r.UserID], r)
	}
	return out, nil
}

// AppleUserOf reads a user's registration in an account.
func (d *DB) AppleUserOf(ctx context.Context, accountID int64, clientUserID string) (*model.AppleUser, error) {
	var u model.AppleUser
	if err := d.with(ctx).Where("account_id = ? AND client_user_id = ?", accountID, clientUserID).Take(&u).Error; err != nil {
		return nil, wrap("apple user of", notFound(err))
	}
	return &u, nil
}

// InsertAppleUser stores a registration; when a concurrent call stored it first, it reads
// that one back (created reports which happened).
func (d *DB) InsertAppleUser(ctx context.Context, u *model.AppleUser) (au *model.AppleUser, created bool, err error) {
	err = d.with(ctx).Create(u).Error
	if isDuplicate(err) {
		au, err = d.AppleUserOf(ctx, u.AccountID, u.ClientUserID)
		return au, false, wrap("insert apple user", err)
	}
	return u, err == nil, wrap("insert apple user", err)
}

// UpdateAppleUser sets columns of a registration.
func (d *DB) UpdateAppleUser(ctx context.Context, id int64, cols map[string]any) error {
	cols["updated_at"] = Now()
	return wrap("update apple user", d.with(ctx).Model(&model.AppleUser{}).Where("id = ?", id).UpdateColumns(cols).Error)
}

// AppleUsersOfUser reads a user's registrations at Apple.
func (d *DB) AppleUsersOfUser(ctx context.Context, userID int64) ([]*model.AppleUser, error) {
	out := []*model.AppleUser{}
	err := d.with(ctx).Where("user_id = ?", userID).Order("account_id").Find(&out).Error
	return out, wrap("apple users of user", err)
}

// AppleUserStatuses reads the registration states of users in an account.
func (d *DB) AppleUserStatuses(ctx context.Context, accountID int64, clientUserIDs []string) (map[string]*model.AppleUser, error) {
	out := map[string]*model.AppleUser{}
	if len(clientUserIDs) == 0 {
		return out, nil
	}
	var rows []*model.AppleUser
	if err := d.with(ctx).Where("account_id = ? AND client_user_id IN ?", accountID, clientUserIDs).Find(&rows).Error; err != nil {
		return nil, wrap("apple user statuses", err)
	}
	for _, r := range rows {
		out[r.ClientUserID] = r
	}
	return out, nil
}
