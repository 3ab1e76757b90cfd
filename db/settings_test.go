package db_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
)

// TestSettings: a setting never set is not found (the caller's default applies); SetSetting
// stores and overrides; ClaimSetting stores only when unset and otherwise answers the stored
// value, so that replicas claiming one name together agree on one value.
func TestSettings(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_, err := d.Setting(ctx, "mdm_id")
		checkNotFoundNamed(t, "setting", err)
		type claim struct {
			Value  string
			Stored bool
		}
		for _, tt := range []struct {
			name  string
			do    func() (claim, error)
			want  claim
			after string
		}{
			{"first claim stores", func() (claim, error) { v, ok, err := d.ClaimSetting(ctx, "mdm_id", "a"); return claim{v, ok}, err }, claim{"a", true}, "a"},
			{"second claim answers the first", func() (claim, error) { v, ok, err := d.ClaimSetting(ctx, "mdm_id", "b"); return claim{v, ok}, err }, claim{"a", false}, "a"},
			{"set overrides", func() (claim, error) { return claim{}, d.SetSetting(ctx, "mdm_id", "c") }, claim{}, "c"},
			{"set again", func() (claim, error) { return claim{}, d.SetSetting(ctx, "mdm_id", "d") }, claim{}, "d"},
			{"claim after set answers the set value", func() (claim, error) { v, ok, err := d.ClaimSetting(ctx, "mdm_id", "e"); return claim{v, ok}, err }, claim{"d", false}, "d"},
		} {
			got, err := tt.do()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
			v, err := d.Setting(ctx, "mdm_id")
			if err != nil || v != tt.after {
				t.Errorf("%s: stored %q, %v; want %q", tt.name, v, err, tt.after)
			}
		}
		if v, err := d.Setting(ctx, "other"); err == nil {
			t.Errorf("an unset name read %q", v)
		}

		// Racing claims: exactly one stores, every one answers its value.
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored, values := 0, map[string]int{}
		errs := make(chan error, 6)
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, ok, err := d.ClaimSetting(ctx, "race", string(rune('a'+i)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				values[v]++
				if ok {
					stored++
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if stored != 1 || len(values) != 1 {
			t.Errorf("racing claims: %d stored, answers %v", stored, values)
		}
	})
}

// TestSettingErrorsNameTheOperation: each function's error says which store operation failed.
func TestSettingErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		checkErrorsNameOps(t, []namedOp{
			{"setting", func(ctx context.Context) error { _, err := d.Setting(ctx, "x"); return err }},
			{"claim setting", func(ctx context.Context) error { _, _, err := d.ClaimSetting(ctx, "x", "y"); return err }},
			{"set setting", func(ctx context.Context) error { return d.SetSetting(ctx, "x", "y") }},
		})
	})
}
