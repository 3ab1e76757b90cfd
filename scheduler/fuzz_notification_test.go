package scheduler_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"orchard/apple/applesim"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// FuzzNotification posts notifications to the real endpoint of a running stack (the
// scheduler, a real SQLite database, the simulator as Apple) for an account synced from
// the simulator. In the inputs, account "1" is that account, auth "good" its secret, and
// "UID" and "ADAM" in the body its uId and one of its adamIds. Whatever is sent: no 5xx (Apple
// would retry it for ever), and afterwards the account's pools still read, its stored errors
// show no internal text, and the endpoint still applies a notification.
// Seeds: testdata/fuzz/FuzzNotification.
//
//	go test -run '^$' -fuzz FuzzNotification -fuzztime 3m -parallel 1 ./scheduler/
func FuzzNotification(f *testing.F) {
	d := dbtest.Engines()[0].Open(f)
	st := newStack(f, d, gqltest.StackOptions{})
	g := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 2, AssignmentsPerToken: 10, Seed: 15, Countries: []string{"US"}})
	tok := g.TokenFiles[0]
	gid := addSynced(f, st, "Fuzz", tok)
	id := dbID(f, gid)
	secret := notificationSecret(f, st, id)
	uid := st.Sim.UID(tok)
	adam := st.Sim.AssetStates(tok)[0].AdamID
	f.Add("1", "good", `{"notificationId":"n-1","notificationType":"TEST_NOTIFICATION","uId":"UID","notification":{}}`)
	f.Add("1", "good", `{"notificationId":"n-2","notificationType":"ASSET_COUNT","uId":"UID","notification":{"adamId":"ADAM","pricingParam":"STDQ","countDelta":9223372036854775807}}`)
	f.Add("999999", "good", `{"notificationId":"n-3","notificationType":"TEST_NOTIFICATION","uId":"UID","notification":{}}`)
	n := 0
	f.Fuzz(func(t *testing.T, account, auth, body string) {
		path := url.PathEscape(account)
		if account == "1" {
			path = fmt.Sprint(id)
		}
		if auth == "good" {
			auth = secret
		}
		body = strings.ReplaceAll(strings.ReplaceAll(body, "UID", uid), "ADAM", adam)
		code, answer := postRaw(t, st.BaseURL+"/apple/notifications/"+path, auth, body)
		if code >= 500 {
			t.Fatalf("HTTP %d %q for account %q, body %q", code, answer, account, body)
		}
		// Still healthy: the pools read, the stored errors are coded, a notification applies.
		var out struct {
			Account struct {
				LastError    *string
				LicensePools struct{ Nodes []struct{ TotalCount int } }
				SyncRuns     struct{ Nodes []struct{ Error *string } }
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!) { account(id: $id) { lastError licensePools(first: 100) { nodes { totalCount } }
			syncRuns(first: 3) { nodes { error } } } }`, map[string]any{"id": gid}).MustData(t, &out)
		msgs := []*string{out.Account.LastError}
		for _, r := range out.Account.SyncRuns.Nodes {
			msgs = append(msgs, r.Error)
		}
		for _, m := range msgs {
			if m != nil && internalText.MatchString(*m) {
				t.Fatalf("a stored error shows internal text: %q", *m)
			}
		}
		n++
		probe := fmt.Sprintf(`{"notificationId":"probe-%d","notificationType":"TEST_NOTIFICATION","uId":%q,"notification":{}}`, n, uid)
		if code, answer := postRaw(t, fmt.Sprintf("%s/apple/notifications/%d", st.BaseURL, id), secret, probe); code != http.StatusOK {
			t.Fatalf("after the input, a TEST_NOTIFICATION answers %d %q", code, answer)
		}
	})
}

// postRaw posts body with a bearer auth (none if empty) and returns the status and body.
func postRaw(t *testing.T, u, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, "" // not a request a client could send
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "invalid header") || strings.Contains(err.Error(), "invalid URL") {
			return http.StatusBadRequest, "" // refused by the client itself
		}
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
