package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// internalText matches what must never reach a client in a stored message: a driver's or an
// encoder's text, a Go type name, a file path.
var internalText = regexp.MustCompile(`(?i)sql|gorm|scan|converting|unmarshal|json:|go value|\*?[a-z]+\.[A-Z][A-Za-z]+\b|\.go\b|/[a-z]+/`)

// postNotification posts a notification body to the account's endpoint with the account's
// secret (as Apple, or whoever holds the secret, would) and returns the status.
func postNotification(t testing.TB, st *gqltest.Stack, accountID int64, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/apple/notifications/%d", st.BaseURL, accountID), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notificationSecret is the account's notification secret, as Orchard gave it to Apple.
func notificationSecret(t testing.TB, st *gqltest.Stack, id int64) string {
	t.Helper()
	a, err := st.DB.AccountByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := st.License.NotificationSecret(a)
	if err != nil || secret == "" {
		t.Fatalf("notification secret: %q, %v", secret, err)
	}
	return secret
}

// Issue 11 class 1: an ASSET_COUNT notification with an implausible countDelta (±MaxInt64
// overflowed the pool's counter on SQLite and broke the account for good; +1,000,000 was taken
// as it is) is not written: the endpoint accepts it, a full pass reads Apple's counts, and the
// pools stay readable and equal to Apple's.
func TestImplausibleAssetCountNotification(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{})
		g := gen(st.Sim, 1, 11)
		tok := g.Tokens[0].TokenFile
		gid := addSynced(t, st, "Harden", tok)
		id := dbID(t, gid)
		secret := notificationSecret(t, st, id)
		var asset applesim.AssetState
		for _, a := range st.Sim.AssetStates(tok) {
			if !a.Unlimited {
				asset = a
				break
			}
		}
		if asset.AdamID == "" {
			t.Fatal("no limited asset generated")
		}
		for i, delta := range []string{"9223372036854775807", "-9223372036854775807", "1000000", "-1000000", "0",
			"99999999999999999999999", "1.5", "1e3", "null", "2147483648"} {
			since := time.Now()
			body := fmt.Sprintf(`{"notificationId":"implausible-%d","notificationType":"ASSET_COUNT","uId":%q,
				"notification":{"adamId":%q,"pricingParam":%q,"countDelta":%s}}`, i, st.Sim.UID(tok), asset.AdamID, asset.PricingParam, delta)
			if code, b := postNotification(t, st, id, secret, body); code != http.StatusOK {
				t.Fatalf("countDelta %s: HTTP %d %q, want 200", delta, code, b)
			}
			waitFullPass(t, st, gid, since)
			if diff := cmp.Diff(simPoolCounts(st.Sim, tok), orchardPoolCounts(t, st, gid)); diff != "" {
				t.Fatalf("countDelta %s: pools mismatch (-want +got):\n%s", delta, diff)
			}
		}
		if acc := account(t, st, gid); acc.LastError != nil || acc.SyncStatus != "OK" {
			t.Errorf("account after the notifications: syncStatus %s, lastError %v", acc.SyncStatus, deref(acc.LastError))
		}
		// A plausible one is still applied at once, without a pass.
		if err := st.Sim.PurchasePricing(tok, asset.AdamID, asset.PricingParam, 5); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the purchase of 5 to show", waitLong, func() bool {
			return cmp.Equal(simPoolCounts(st.Sim, tok), orchardPoolCounts(t, st, gid))
		})
	})
}

// Issue 11 class 1: bad numbers in Apple's answers (a count beyond what a column holds) and
// answers that cannot be read fail the pass with a coded message of Orchard's own in
// SyncRun.error and Account.lastError — never a decoder's or a driver's text — and the
// account recovers by itself once Apple answers well.
func TestPassErrorsAreCoded(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{NoNotifications: true})
		g := gen(st.Sim, 1, 12)
		tok := g.Tokens[0].TokenFile
		gid := addSynced(t, st, "Coded", tok)
		check := func(what, wantCode string) {
			t.Helper()
			r := syncAccountFailing(t, st, gid)
			acc := account(t, st, gid)
			for name, msg := range map[string]string{"SyncRun.error": deref(r.Error), "Account.lastError": deref(acc.LastError)} {
				if !strings.HasPrefix(msg, wantCode+": ") || internalText.MatchString(strings.TrimPrefix(msg, wantCode+": ")) {
					t.Errorf("%s: %s = %q, want %s: and no internal text", what, name, msg, wantCode)
				}
			}
		}
		st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultMalformedJSON})
		check("an answer that cannot be read", string(model.CodeAppleUnavailable))
		st.Sim.ClearFaults(tok)
		// Once Apple answers well, the next pass clears the error.
		syncAndWait(t, st, gid, "FULL")
		if acc := account(t, st, gid); acc.LastError != nil {
			t.Errorf("lastError after recovery: %q", *acc.LastError)
		}
		var asset applesim.AssetState
		for _, a := range st.Sim.AssetStates(tok) {
			if !a.Unlimited {
				asset = a
				break
			}
		}
		before := orchardPoolCounts(t, st, gid)
		if err := st.Sim.PurchasePricing(tok, asset.AdamID, asset.PricingParam, 1<<40); err != nil {
			t.Fatal(err)
		}
		check("a count beyond any column", string(model.CodeAppleUnavailable))
		// Nothing of the refused listing was stored: the pools read as before.
		if diff := cmp.Diff(before, orchardPoolCounts(t, st, gid)); diff != "" {
			t.Errorf("pools after the refused listing mismatch (-want +got):\n%s", diff)
		}
	})
}

// syncAccountFailing asks for a full pass and waits for it to fail.
func syncAccountFailing(t testing.TB, st *gqltest.Stack, gid string) runView {
	t.Helper()
	r := syncAccount(t, st, gid, "FULL")
	r = waitRun(t, st, r.ID)
	if r.Status != "FAILED" {
		t.Fatalf("pass ended %s, want FAILED", r.Status)
	}
	return r
}

// Issue 11 class 11: throttledUntil shows a hold only while it lasts. During Apple's
// Retry-After it is set (and syncStatus HELD); once the hold is over and the pass that resumed
// has succeeded (syncStatus OK), it reads as null, not as a time in the past.
func TestThrottledUntilEndsWithTheHold(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{NoNotifications: true})
		g := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 2, AssignmentsPerToken: 10, Seed: 13, Countries: []string{"US"}})
		tok := g.TokenFiles[0]
		gid := addSynced(t, st, "Held", tok)
		// A date well ahead of the pass's first request however slow the machine.
		until := time.Now().Add(4 * time.Second)
		st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterDate: until, Count: 1})
		held := waitRun(t, st, syncAccount(t, st, gid, "FULL").ID)
		if held.Status != "HELD" {
			t.Fatalf("pass ended %s (%v), want HELD", held.Status, deref(held.Error))
		}
		acc := account(t, st, gid)
		if acc.ThrottledUntil == nil && time.Now().Before(until) {
			t.Errorf("throttledUntil is null during the hold (syncStatus %s)", acc.SyncStatus)
		}
		waitFor(t, "the held pass to resume and succeed", waitLong, func() bool {
			acc = account(t, st, gid)
			return acc.SyncStatus == "OK" && time.Now().After(until.Add(time.Second))
		})
		if acc.ThrottledUntil != nil {
			t.Errorf("syncStatus OK after the hold, yet throttledUntil = %v (now %v)", *acc.ThrottledUntil, time.Now().UTC())
		}
	})
}

// Issue 11 class 10: the notification endpoint does not tell which account ids exist (an
// unknown account, a malformed id and a known account with a wrong or no secret get the same
// status and body), refuses a notification naming another location (uId), and bounds
// notificationId.
func TestNotificationEndpointAnswersAlike(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{})
		g := gen(st.Sim, 1, 14)
		tok := g.Tokens[0].TokenFile
		gid := addSynced(t, st, "Alike", tok)
		id := dbID(t, gid)
		secret := notificationSecret(t, st, id)
		test := func(nid, uid string) string {
			return fmt.Sprintf(`{"notificationId":%q,"notificationType":"TEST_NOTIFICATION","uId":%q,"notification":{}}`, nid, uid)
		}
		post := func(path, auth, body string) string {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, st.BaseURL+"/apple/notifications/"+path, strings.NewReader(body))
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), strings.TrimSpace(string(b)))
		}
		uid := st.Sim.UID(tok)
		refused := post(fmt.Sprint(id), "wrong", test("n-0", uid))
		if !strings.HasPrefix(refused, "401 ") {
			t.Fatalf("a wrong secret: %s, want 401", refused)
		}
		for name, got := range map[string]string{
			"unknown account":             post("999999", secret, test("n-1", uid)),
			"unknown account, no secret":  post("999999", "", test("n-2", uid)),
			"malformed id":                post("abc", secret, test("n-3", uid)),
			"negative id":                 post("-1", secret, test("n-4", uid)),
			"known account, no secret":    post(fmt.Sprint(id), "", test("n-5", uid)),
			"known account, wrong secret": post(fmt.Sprint(id), secret+"x", test("n-6", uid)),
		} {
			if got != refused {
				t.Errorf("%s: %q, want the same answer as a wrong secret %q", name, got, refused)
			}
		}
		for _, tt := range []struct{ name, body, want string }{
			{"its own uId", test("n-7", uid), "200"},
			{"another location's uId", test("n-8", "someone-else"), "400"},
			{"no uId", `{"notificationId":"n-9","notificationType":"TEST_NOTIFICATION","notification":{}}`, "400"},
			{"a notificationId of 128 characters", test(strings.Repeat("a", 128), uid), "200"},
			{"a notificationId of 129 characters", test(strings.Repeat("a", 129), uid), "400"},
			{"a notificationId with a newline", test("n\n10", uid), "400"},
		} {
			if got := post(fmt.Sprint(id), secret, tt.body); !strings.HasPrefix(got, tt.want+" ") {
				t.Errorf("%s: %q, want %s", tt.name, got, tt.want)
			}
		}
	})
}
