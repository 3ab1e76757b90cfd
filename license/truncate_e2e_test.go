package license_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// An app name longer than its column (apps.name is VARCHAR(255)) comes from Apple's metadata
// lookup cut to 255 characters — 254 of the name and "…" — on both engines: never 256 (MySQL in
// strict mode refuses the row, and the app keeps no metadata at all), never a split multi-byte
// character (invalid UTF-8, which MySQL's utf8mb4 refuses too). The names are 300 characters of
// 1-, 2-, 3- and 4-byte characters, and one that mixes them so the cut falls on every width.
func TestLongAppNameStoredWithinItsColumn(t *testing.T) {
	t.Parallel()
	mixed := strings.Repeat("aé日🍏", 75)
	names := map[string]string{
		"2001": strings.Repeat("a", 300),
		"2002": strings.Repeat("é", 300),
		"2003": strings.Repeat("日", 300),
		"2004": strings.Repeat("🍏", 300),
		"2005": mixed,
	}
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var assets []applesim.Asset
		for _, id := range []string{"2001", "2002", "2003", "2004", "2005"} {
			assets = append(assets, app(id, func(a *applesim.Asset) { a.Name = names[id] }))
		}
		e := newEnv(t, d, gqltest.StackOptions{}, assets...)

		type appView struct{ AdamID, Name string }
		var out struct {
			Apps struct{ Nodes []appView }
		}
		e.do(`{ apps(first: 100) { nodes { adamId name } } }`, nil, &out)
		want := []appView{}
		for _, id := range []string{"2001", "2002", "2003", "2004", "2005"} {
			r := []rune(names[id])
			want = append(want, appView{AdamID: id, Name: string(r[:254]) + "…"})
		}
		if diff := cmp.Diff(want, out.Apps.Nodes); diff != "" {
			t.Errorf("app names over GraphQL mismatch (-want +got):\n%s", diff)
		}
		// What the database holds, not only what JSON makes of it (encoding/json would quietly
		// turn invalid UTF-8 into U+FFFD).
		for _, w := range want {
			a, err := d.AppByBundleID(context.Background(), "com.example.app"+w.AdamID)
			if err != nil {
				t.Fatalf("app %s: %v", w.AdamID, err)
			}
			if !utf8.ValidString(a.Name) {
				t.Errorf("app %s: stored name is not valid UTF-8 (%d bytes)", w.AdamID, len(a.Name))
			}
			if n := utf8.RuneCountInString(a.Name); n > 255 {
				t.Errorf("app %s: stored name has %d characters, over VARCHAR(255)", w.AdamID, n)
			}
			if a.Name != w.Name {
				t.Errorf("app %s: stored name ends %q (%d characters, %d bytes), want it to end %q (255 characters)",
					w.AdamID, suffix(a.Name), utf8.RuneCountInString(a.Name), len(a.Name), suffix(w.Name))
			}
		}
	})
}

// suffix is the last few bytes of s, where a cut shows.
func suffix(s string) string { return s[max(len(s)-8, 0):] }
