package db_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func userIDs(us []*model.User) []int64 {
	return idsOf(us, func(u *model.User) int64 { return u.ID })
}

// TestSaveUserAndReadBack: SaveUser inserts a new user and updates a known one; a second user
// with the same external id is a duplicate (ErrDuplicate, named); the readers by id and by
// external id find them, and say not found (named) for anyone else.
func TestSaveUserAndReadBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		u := seedUser(t, d)
		u.Name = "Renamed"
		mustDo(t, d.SaveUser(ctx, u))
		for _, tt := range []struct {
			name string
			read func() (*model.User, error)
		}{
			{"by id", func() (*model.User, error) { return d.UserByID(ctx, u.ID) }},
			{"by external id", func() (*model.User, error) { return d.UserByExternalID(ctx, u.ExternalID) }},
		} {
			got, err := tt.read()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got.ID != u.ID || got.Name != "Renamed" || got.Email != u.Email {
				t.Errorf("%s: read back %+v", tt.name, got)
			}
		}
		dup := &model.User{ExternalID: u.ExternalID, ClientUserID: "cu-other", Email: "x@example.com", Name: "X", Status: model.UserActive}
		err := d.SaveUser(ctx, dup)
		if !errors.Is(err, db.ErrDuplicate) || !strings.HasPrefix(err.Error(), "save user: ") {
			t.Errorf("duplicate external id: %v", err)
		}
		_, err = d.UserByID(ctx, u.ID+1000)
		checkNotFoundNamed(t, "user by id", err)
		_, err = d.UserByExternalID(ctx, "nobody")
		checkNotFoundNamed(t, "user by external id", err)
	})
}

// TestUsersByIDs: by the directory's ids and by Orchard's ids, unknown ones left out, none
// asked none returned.
func TestUsersByIDs(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		a, b, _ := seedUser(t, d), seedUser(t, d), seedUser(t, d)
		for _, tt := range []struct {
			name string
			read func() ([]*model.User, error)
			want []int64
		}{
			{"external ids", func() ([]*model.User, error) {
				return d.UsersByExternalIDs(ctx, []string{b.ExternalID, a.ExternalID, "nobody"})
			}, []int64{a.ID, b.ID}},
			{"no external ids", func() ([]*model.User, error) { return d.UsersByExternalIDs(ctx, nil) }, []int64{}},
			{"ids", func() ([]*model.User, error) { return d.UsersByID(ctx, []int64{b.ID, a.ID, b.ID + 1000}) }, []int64{a.ID, b.ID}},
			{"no ids", func() ([]*model.User, error) { return d.UsersByID(ctx, nil) }, []int64{}},
		} {
			got, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			ids := userIDs(got)
			slices.Sort(ids)
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// TestListAndCountUsers: the search (case-insensitive, in email, name and external id, with
// LIKE's wildcards taken literally), the group and the status select the same users for the
// page and the count.
func TestListAndCountUsers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ada := seedUser(t, d, func(u *model.User) { u.Name, u.Email = "Ada Lovelace", "ada@example.com" })
		pct := seedUser(t, d, func(u *model.User) { u.Name = "100% Percent_Sign" })
		gone := seedUser(t, d, func(u *model.User) { u.Name, u.Status = "Grace Gone", model.UserRemoved })
		ext := seedUser(t, d, func(u *model.User) { u.ExternalID = "HR-ADA-7" })
		g := &model.Group{ExternalID: "g1", Name: "Group"}
		mustDo(t, d.InsertRows(ctx, g))
		mustDo(t, d.InsertRows(ctx, []*model.GroupMember{{GroupID: g.ID, UserID: ada.ID}, {GroupID: g.ID, UserID: gone.ID}}))
		for _, tt := range []struct {
			name string
			f    db.UserFilter
			want []int64
		}{
			{"all", db.UserFilter{}, []int64{ada.ID, pct.ID, gone.ID, ext.ID}},
			{"search, any case, any column", db.UserFilter{Search: "ADA"}, []int64{ada.ID, ext.ID}},
			{"search for a literal %", db.UserFilter{Search: "0%"}, []int64{pct.ID}},
			{"search for a literal _", db.UserFilter{Search: "t_s"}, []int64{pct.ID}},
			{"_ is not a wildcard", db.UserFilter{Search: "a_a"}, []int64{}},
			{"group", db.UserFilter{GroupID: g.ID}, []int64{ada.ID, gone.ID}},
			{"group and status", db.UserFilter{GroupID: g.ID, Status: model.UserActive}, []int64{ada.ID}},
			{"status", db.UserFilter{Status: model.UserRemoved}, []int64{gone.ID}},
		} {
			got, more, err := d.ListUsers(ctx, tt.f, db.Page{First: 10})
			if err != nil {
				t.Fatal(err)
			}
			n, err := d.CountUsers(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, userIDs(got)); diff != "" || more || n != len(tt.want) {
				t.Errorf("%s: more %v, count %d; mismatch (-want +got):\n%s", tt.name, more, n, diff)
			}
		}
		page, more, err := d.ListUsers(ctx, db.UserFilter{}, db.Page{First: 2, After: ada.ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{pct.ID, gone.ID}, userIDs(page)); diff != "" || !more {
			t.Errorf("a page: more %v; mismatch (-want +got):\n%s", more, diff)
		}
	})
}

// TestUserErrorsNameTheOperation: each function's error says which store operation failed.
func TestUserErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u := seedUser(t, d)
		checkErrorsNameOps(t, []namedOp{
			{"user by id", func(ctx context.Context) error { _, err := d.UserByID(ctx, u.ID); return err }},
			{"save user", func(ctx context.Context) error { return d.SaveUser(ctx, u) }},
			{"save user", func(ctx context.Context) error {
				return d.SaveUser(ctx, &model.User{ExternalID: "new", ClientUserID: "new", Status: model.UserActive})
			}},
			{"users by external ids", func(ctx context.Context) error { _, err := d.UsersByExternalIDs(ctx, []string{"x"}); return err }},
			{"list users", func(ctx context.Context) error {
				_, _, err := d.ListUsers(ctx, db.UserFilter{}, db.Page{First: 1})
				return err
			}},
			{"count users", func(ctx context.Context) error { _, err := d.CountUsers(ctx, db.UserFilter{}); return err }},
			{"users by id", func(ctx context.Context) error { _, err := d.UsersByID(ctx, []int64{u.ID}); return err }},
			{"user by external id", func(ctx context.Context) error { _, err := d.UserByExternalID(ctx, "x"); return err }},
		})
	})
}

// TestUsersAfter pages through users in id order: a batch after a cursor, the limit, the
// last batch short, and nothing after the last user.
func TestUsersAfter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var all []int64
		for range 5 {
			all = append(all, seedUser(t, d).ID)
		}
		for _, tt := range []struct {
			name  string
			after int64
			limit int
			want  []int64
		}{
			{"from the start, two", 0, 2, all[:2]},
			{"after the second, two", all[1], 2, all[2:4]},
			{"the last batch is short", all[3], 10, all[4:]},
			{"nothing after the last", all[4], 10, []int64{}},
		} {
			got, err := d.UsersAfter(bg(), tt.after, tt.limit)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, userIDs(got)); diff != "" {
				t.Errorf("%s: users after mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		closed := closedStore(t, d)
		_, err := closed.UsersAfter(bg(), 0, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "users after: ") {
			t.Errorf("closed store: %v, want an error named users after", err)
		}
	})
}
