package license_test

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Idempotency keys: a retried call with the same key and input gets the first answer and
// nothing is done twice (not even when the retries race each other); the same key with another
// input is refused with IDEMPOTENCY_KEY_REUSED; keys belong to the API key that used them.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9101", total(5)), app("9102"))
		e.upsertDevices(iPad("K1"), iPad("K2"), iPad("K3"), iPad("K4"), iPad("K5"))
		keyed := func(in map[string]any, key string) map[string]any {
			out := map[string]any{"idempotencyKey": key}
			for k, v := range in {
				out[k] = v
			}
			return out
		}

		// assignLicense: the retry answers the same assignment; one license is used.
		first := e.assign(keyed(deviceLicense("9101", "K1"), "assign-1"))
		if first.Assignment == nil {
			t.Fatalf("first call refused: %+v", first.UserErrors)
		}
		again := e.assign(keyed(deviceLicense("9101", "K1"), "assign-1"))
		if again.Assignment == nil || again.Assignment.ID != first.Assignment.ID || len(again.UserErrors) > 0 {
			t.Errorf("retry: %s, want assignment %s", gqltest.JSON(again), first.Assignment.ID)
		}
		// Another input under the same key is refused, and does nothing.
		other := e.assign(keyed(deviceLicense("9101", "K2"), "assign-1"))
		if other.Assignment != nil || !cmp.Equal(codes(other.UserErrors), []string{"IDEMPOTENCY_KEY_REUSED"}) {
			t.Errorf("same key, other input: %s", gqltest.JSON(other))
		}
		// The key is the API key's own: another API key may use the same string.
		var adminOut struct{ AssignLicense assignPayload }
		e.st.Do(t, e.st.Keys[model.RoleAdmin], `mutation($in: AssignLicenseInput!) { assignLicense(input: $in) { assignment { id } userErrors { code message } } }`,
			map[string]any{"in": keyed(deviceLicense("9101", "K2"), "assign-1")}).MustData(t, &adminOut)
		if adminOut.AssignLicense.Assignment == nil {
			t.Errorf("another API key's use of the key: %+v", adminOut.AssignLicense.UserErrors)
		}
		// A refusal is an answer too: replayed as it was.
		refusedIn := keyed(deviceLicense("9101", "K1"), "assign-2")
		r1, r2 := e.assign(refusedIn), e.assign(refusedIn)
		if !cmp.Equal(codes(r1.UserErrors), []string{"ALREADY_ASSIGNED"}) || !cmp.Equal(r1.UserErrors, r2.UserErrors) {
			t.Errorf("replayed refusal: %+v then %+v", r1.UserErrors, r2.UserErrors)
		}

		// Retries racing each other: one assignment. (Raw requests: Server.Do records the
		// statement count of its last request and is not for concurrent use.)
		body, _ := json.Marshal(map[string]any{
			"query":     `mutation($in: AssignLicenseInput!) { assignLicense(input: $in) { assignment { id } userErrors { code message } } }`,
			"variables": map[string]any{"in": keyed(deviceLicense("9101", "K3"), "assign-race")},
		})
		var wg sync.WaitGroup
		got := make([]string, 6)
		for i := range got {
			wg.Go(func() {
				resp, err := e.st.Raw(e.op, bytes.NewReader(body), "application/json")
				if err != nil {
					t.Errorf("racing retry %d: %v", i, err)
					return
				}
				defer resp.Body.Close()
				var out struct {
					Data   struct{ AssignLicense assignPayload }
					Errors []gqltest.Error
				}
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
					t.Errorf("racing retry %d: %v %+v", i, err, out.Errors)
					return
				}
				if a := out.Data.AssignLicense.Assignment; a != nil {
					got[i] = a.ID
				} else {
					got[i] = gqltest.JSON(out.Data.AssignLicense.UserErrors)
				}
			})
		}
		wg.Wait()
		for i := range got {
			if got[i] != got[0] {
				t.Errorf("racing retries answered differently: %q", got)
				break
			}
		}
		if n := len(e.assignments(e.acct)); n != 3 {
			t.Errorf("%d assignments after the racing retries, want 3", n)
		}

		// assignLicenses: the same results, no second round.
		bulk := func(key string, serials ...string) []string {
			targets := []map[string]any{}
			for _, s := range serials {
				targets = append(targets, map[string]any{"serialNumber": s})
			}
			var out struct {
				AssignLicenses struct {
					Results []struct {
						Assignment *struct{ ID string }
						UserErrors []userError
					}
					UserErrors []userError
				}
			}
			e.do(`mutation($t: [LicenseTargetInput!]!, $k: String) { assignLicenses(input: {adamId: "9102", kind: DEVICE, targets: $t, idempotencyKey: $k}) {
				results { assignment { id } userErrors { code } } userErrors { code } } }`, map[string]any{"t": targets, "k": key}, &out)
			res := []string{}
			for _, r := range out.AssignLicenses.Results {
				if r.Assignment != nil {
					res = append(res, r.Assignment.ID)
				} else {
					res = append(res, codes(r.UserErrors)...)
				}
			}
			return append(res, codes(out.AssignLicenses.UserErrors)...)
		}
		b1 := bulk("bulk-1", "K4", "K5")
		if b2 := bulk("bulk-1", "K4", "K5"); len(b1) != 2 || !cmp.Equal(b1, b2) {
			t.Errorf("assignLicenses retry: %v then %v", b1, b2)
		}
		if b3 := bulk("bulk-1", "K4"); !cmp.Equal(b3, []string{"IDEMPOTENCY_KEY_REUSED"}) {
			t.Errorf("assignLicenses, same key, other input: %v", b3)
		}

		// reclaimLicense: one reclaim, one audit event.
		reclaim := func(id, key string) string {
			var out struct {
				ReclaimLicense struct {
					Assignment *struct{ Status string }
					UserErrors []userError
				}
			}
			e.do(`mutation($id: ID!, $k: String) { reclaimLicense(input: {assignmentId: $id, reason: "retry test", idempotencyKey: $k}) { assignment { status } userErrors { code } } }`,
				map[string]any{"id": id, "k": key}, &out)
			if out.ReclaimLicense.Assignment == nil {
				return gqltest.JSON(out.ReclaimLicense.UserErrors)
			}
			return "ok"
		}
		e.waitStatus(first.Assignment.ID, "ASSIGNED")
		if a, b := reclaim(first.Assignment.ID, "reclaim-1"), reclaim(first.Assignment.ID, "reclaim-1"); a != "ok" || b != "ok" {
			t.Errorf("reclaimLicense and its retry: %s, %s", a, b)
		}
		e.waitStatus(first.Assignment.ID, "RECLAIMED")
		n := 0
		for _, ev := range e.audits(first.Assignment.ID) {
			if ev.Action == "license.reclaim" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d reclaim audit events, want 1", n)
		}

		// reclaimLicenses: the retry answers the first count and queues nothing more.
		many := func(key string) int {
			var out struct {
				ReclaimLicenses struct {
					ReclaimsQueued int
					UserErrors     []userError
				}
			}
			e.do(`mutation($a: ID!, $k: String) { reclaimLicenses(input: {accountId: $a, idempotencyKey: $k}) { reclaimsQueued userErrors { code } } }`,
				map[string]any{"a": e.acct, "k": key}, &out)
			if len(out.ReclaimLicenses.UserErrors) > 0 {
				t.Errorf("reclaimLicenses: %+v", out.ReclaimLicenses.UserErrors)
			}
			return out.ReclaimLicenses.ReclaimsQueued
		}
		e.settle(e.acct)
		if a, b := many("reclaim-all"), many("reclaim-all"); a != 4 || b != 4 {
			t.Errorf("reclaimLicenses and its retry queued %d and %d, want 4 and the same answer", a, b)
		}
		e.assertInSync(e.tok, e.acct)
		if got := e.st.Sim.Assignments(e.tok); len(got) != 0 {
			t.Errorf("the simulator still holds %+v", got)
		}
		var reqs int
		for _, r := range e.st.Sim.RequestsFor(e.tok) {
			if r.Method == "POST" && r.Path == "/mdm/v2/assets/disassociate" {
				reqs++
			}
		}
		if reqs == 0 {
			t.Error("no disassociate reached Apple")
		}
	})
}
