package license_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Issue 5, done means 5: the figures of the write path, over GraphQL and HTTP against the
// simulator, on each engine, with Apple answering at once and with 100 ms added to every Apple
// request (the simulator's slow fault on the account's token).
//
//	go test ./license/ -run '^$' -bench . -benchtime 1x      (AssignLicenses10k)
//	go test ./license/ -run '^$' -bench AssignLicenseConcurrent -benchtime 3s

var benchLatencies = []time.Duration{0, 100 * time.Millisecond}

// BenchmarkAssignLicenses10k: one assignLicenses call for 10,000 devices, then the wait until
// every assignment is ASSIGNED. With notifications off completion comes from status polls
// (gqltest's scheduler polls a pending event every 100 ms; Apple's guidance, and Orchard's
// default, is 30 s), with them on from Apple's ASSET_MANAGEMENT notifications. Reported:
//
//	associates   associate requests Apple saw (Apple takes 1,000 serial numbers per request:
//	             the goal is at most 10)
//	polls        status polls Apple saw; poll-rounds the most polls any one event needed
//	call-s       the assignLicenses call (10,000 intents recorded, PENDING)
//	assigned-s   from the call to the last assignment ASSIGNED
func BenchmarkAssignLicenses10k(b *testing.B) {
	const devices = 10000
	for _, e := range dbtest.Engines() {
		for _, notify := range []bool{false, true} {
			for _, lat := range benchLatencies {
				name := fmt.Sprintf("%s/notifications=%v/latency=%s", e.Name, notify, lat)
				b.Run(name, func(b *testing.B) {
					b.StopTimer()
					d := e.Open(b)
					st := gqltest.NewStack(b, d, gqltest.StackOptions{NoNotifications: !notify})
					tok := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Bench", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
					acct := benchAccount(b, st, tok)
					serials := benchDevices(b, st, "BULK", 0, devices)
					var sum struct {
						associates, polls, rounds int
						call, assigned            time.Duration
					}
					for i := range b.N {
						adam := fmt.Sprint(810000 + i)
						st.Sim.ClearFaults(tok)
						st.Sim.AddAsset(tok, applesim.Asset{AdamID: adam, PricingParam: "STDQ", ProductType: "App", Total: devices,
							DeviceAssignable: true, Revocable: true, Name: "Bulk " + adam})
						benchSync(b, st, acct)
						if lat > 0 {
							st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: lat})
						}
						st.Sim.ResetRequests()
						targets := make([]map[string]any, len(serials))
						for k, sn := range serials {
							targets[k] = map[string]any{"serialNumber": sn}
						}
						b.StartTimer()
						start := time.Now()
						var out struct {
							AssignLicenses struct {
								AssignedCount, FailedCount int
								UserErrors                 []struct{ Code, Message string }
							}
						}
						st.Do(b, st.Keys[model.RoleOperator], `mutation($in: AssignLicensesInput!) { assignLicenses(input: $in) { assignedCount failedCount userErrors { code message } } }`,
							map[string]any{"in": map[string]any{"adamId": adam, "kind": "DEVICE", "targets": targets}}).MustData(b, &out)
						call := time.Since(start)
						if out.AssignLicenses.AssignedCount != devices {
							b.Fatalf("assignLicenses: %+v", out.AssignLicenses)
						}
						q := "SELECT COUNT(*) FROM license_assignments a JOIN license_pools p ON p.id = a.pool_id WHERE p.adam_id = '" + adam + "' AND a.status = 'ASSIGNED'"
						gqltest.WaitFor(b, "10,000 ASSIGNED", 10*time.Minute, func() bool { return benchCount(b, d, q) == devices })
						assigned := time.Since(start)
						b.StopTimer()
						associates, polls, rounds := benchRequests(st.Sim.Requests())
						sum.associates += associates
						sum.polls += polls
						sum.rounds = max(sum.rounds, rounds)
						sum.call += call
						sum.assigned += assigned
					}
					n := float64(b.N)
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(float64(sum.associates)/n, "associates")
					b.ReportMetric(float64(sum.polls)/n, "polls")
					b.ReportMetric(float64(sum.rounds), "poll-rounds")
					b.ReportMetric(sum.call.Seconds()/n, "call-s")
					b.ReportMetric(sum.assigned.Seconds()/n, "assigned-s")
				})
			}
		}
	}
}

// benchRequests counts the associate requests and status polls of a request log, and the most
// polls one event had.
func benchRequests(reqs []applesim.Request) (associates, polls, rounds int) {
	perEvent := map[string]int{}
	for _, r := range reqs {
		switch {
		case r.Method == "POST" && r.Path == "/mdm/v2/assets/associate":
			associates++
		case r.Method == "GET" && r.Path == "/mdm/v2/status":
			polls++
			perEvent[r.Query]++
		}
	}
	for _, n := range perEvent {
		rounds = max(rounds, n)
	}
	return associates, polls, rounds
}

// BenchmarkAssignLicenseConcurrent: assignLicense (one device each, distinct devices) from 50
// concurrent clients over HTTP, with the scheduler sending the intents to Apple meanwhile; and
// in the same run the bare database transaction the mutation is built around — reserve a
// license (the conditional update), insert the PENDING assignment and its outbox row — through
// the same db package functions, from 50 goroutines. Reported: req/s, p50-ms and p99-ms of
// the GraphQL calls; bare-tx/s, bare-p50-ms, bare-p99-ms; and rate-ratio = req/s ÷ bare-tx/s
// (the goal: at least 0.5).
func BenchmarkAssignLicenseConcurrent(b *testing.B) {
	const clients = 50
	for _, e := range dbtest.Engines() {
		for _, lat := range benchLatencies {
			b.Run(fmt.Sprintf("%s/latency=%s", e.Name, lat), func(b *testing.B) {
				b.StopTimer()
				f := benchConcurrentFixture(b, e, lat)
				serials := f.devices(b, b.N)
				bare := timeConcurrent(b.N, clients, func(i int) error { return f.bareTx(f.nextBare()) })
				f.drain(b)

				var next atomic.Int64
				b.StartTimer()
				gql := timeConcurrent(b.N, clients, func(int) error {
					sn := serials[next.Add(1)-1]
					var out struct {
						AssignLicense struct {
							Assignment *struct{ Status string }
							UserErrors []struct{ Code, Message string }
						}
					}
					if err := f.st.Post(f.op, `mutation($sn: String!) { assignLicense(input: {adamId: "910001", kind: DEVICE, target: {serialNumber: $sn}}) {
  assignment { status } userErrors { code message } } }`, map[string]any{"sn": sn}, &out); err != nil {
						return err
					}
					if out.AssignLicense.Assignment == nil {
						return fmt.Errorf("%s: %+v", sn, out.AssignLicense.UserErrors)
					}
					return nil
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/gql.wall.Seconds(), "req/s")
				b.ReportMetric(gql.pct(50), "p50-ms")
				b.ReportMetric(gql.pct(99), "p99-ms")
				b.ReportMetric(float64(b.N)/bare.wall.Seconds(), "bare-tx/s")
				b.ReportMetric(bare.pct(50), "bare-p50-ms")
				b.ReportMetric(bare.pct(99), "bare-p99-ms")
				b.ReportMetric(bare.wall.Seconds()/gql.wall.Seconds(), "rate-ratio")
			})
		}
	}
}

// concurrentFixture is a stack with an account, two pools of plenty (one for the GraphQL
// calls, one for the bare transactions) and devices made as they are needed.
type concurrentFixture struct {
	st        *gqltest.Stack
	d         *db.DB
	op        string
	made      int
	barePool  *model.LicensePool
	bareCount atomic.Int64
}

func benchConcurrentFixture(b *testing.B, e dbtest.Engine, lat time.Duration) *concurrentFixture {
	d := e.Open(b)
	st := gqltest.NewStack(b, d, gqltest.StackOptions{})
	tok := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Bench", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
	for _, adam := range []string{"910001", "910002"} {
		st.Sim.AddAsset(tok, applesim.Asset{AdamID: adam, PricingParam: "STDQ", ProductType: "App", Total: 10_000_000,
			DeviceAssignable: true, Revocable: true, Name: "Concurrent " + adam})
	}
	benchAccount(b, st, tok)
	if lat > 0 {
		st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: lat})
	}
	f := &concurrentFixture{st: st, d: d, op: st.Keys[model.RoleOperator], barePool: &model.LicensePool{}}
	p := f.barePool
	if err := d.SQL().QueryRow("SELECT id, account_id, app_id, adam_id, pricing_param FROM license_pools WHERE adam_id = '910002'").
		Scan(&p.ID, &p.AccountID, &p.AppID, &p.AdamID, &p.PricingParam); err != nil {
		b.Fatal(err)
	}
	return f
}

// devices returns n devices no call has used yet.
func (f *concurrentFixture) devices(b *testing.B, n int) []string {
	out := benchDevices(b, f.st, "CONCB", f.made, n)
	f.made += n
	return out
}

func (f *concurrentFixture) nextBare() string {
	return fmt.Sprintf("BARE%08d", f.bareCount.Add(1))
}

// bareTx is the mutation's transaction without the mutation: reserve, insert the assignment,
// insert the outbox row.
func (f *concurrentFixture) bareTx(serial string) error {
	ctx := context.Background()
	p := f.barePool
	return f.d.Tx(ctx, func(tx *db.DB) error {
		ok, err := tx.ReserveLicense(ctx, p.ID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no license left")
		}
		now := db.Now()
		key := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
		a := &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Kind: model.LicenseKindDevice, HolderKey: &key,
			SerialNumber: &serial, Status: model.AssignmentPending, Origin: model.OriginAdmin, Reason: "bench", CausedBy: "bench", CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertAssignment(ctx, a); err != nil {
			return err
		}
		id := a.ID
		return tx.InsertOutbox(ctx, &model.OutboxItem{AccountID: p.AccountID, Action: model.OutboxAssociate, AssignmentID: &id, AdamID: p.AdamID,
			PricingParam: p.PricingParam, SerialNumber: &serial, Status: model.OutboxQueued, NotBefore: now, CreatedAt: now})
	})
}

// drain waits until the scheduler has sent everything queued, so that each phase meets the
// same background work.
func (f *concurrentFixture) drain(b *testing.B) {
	gqltest.WaitFor(b, "the outbox to drain", 10*time.Minute, func() bool {
		return benchCount(b, f.d, "SELECT COUNT(*) FROM apple_outbox WHERE status = 'QUEUED'") == 0
	})
}

// timing is the wall time of a concurrent run and each call's latency.
type timing struct {
	wall time.Duration
	each []time.Duration
}

// pct is the p-th percentile latency in milliseconds.
func (t timing) pct(p int) float64 {
	if len(t.each) == 0 {
		return 0
	}
	s := slices.Clone(t.each)
	slices.Sort(s)
	return float64(s[min(len(s)-1, len(s)*p/100)].Microseconds()) / 1000
}

// timeConcurrent runs fn n times from c goroutines.
func timeConcurrent(n, c int, fn func(i int) error) timing {
	var next atomic.Int64
	var wg sync.WaitGroup
	each := make([]time.Duration, n)
	var firstErr atomic.Value
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				each[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		panic(err)
	}
	return timing{wall: wall, each: each}
}

// benchAccount adds the token as an account and waits for its first pass.
func benchAccount(b *testing.B, st *gqltest.Stack, tok string) string {
	start := time.Now()
	gid := st.AddAccount(b, "Main", tok)
	st.WaitSynced(b, gid, start)
	return gid
}

// benchSync runs a full pass of the account and waits for it.
func benchSync(b *testing.B, st *gqltest.Stack, gid string) {
	start := time.Now()
	var out struct {
		SyncAccount struct {
			UserErrors []struct{ Code, Message string }
		}
	}
	st.Do(b, st.Keys[model.RoleAdmin], `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code message } } }`,
		map[string]any{"id": gid}).MustData(b, &out)
	if len(out.SyncAccount.UserErrors) > 0 {
		b.Fatal(out.SyncAccount.UserErrors)
	}
	st.WaitSynced(b, gid, start)
}

// benchDevices creates n devices PREFIX<from>… through upsertDevices and returns their serial
// numbers.
func benchDevices(b *testing.B, st *gqltest.Stack, prefix string, from, n int) []string {
	serials := make([]string, 0, n)
	for start := from; start < from+n; start += 1000 {
		var devs []map[string]any
		for i := start; i < min(start+1000, from+n); i++ {
			sn := fmt.Sprintf("%s%07d", prefix, i)
			serials = append(serials, sn)
			devs = append(devs, map[string]any{"serialNumber": sn, "platform": "IOS", "osVersion": "17.5", "countryCode": "US"})
		}
		var out struct {
			UpsertDevices struct {
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(b, st.Keys[model.RoleOperator], `mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { userErrors { code message } } }`,
			map[string]any{"d": devs}).MustData(b, &out)
		if len(out.UpsertDevices.UserErrors) > 0 {
			b.Fatal(out.UpsertDevices.UserErrors)
		}
	}
	return serials
}

func benchCount(b *testing.B, d *db.DB, q string) int64 {
	var n int64
	if err := d.SQL().QueryRow(q).Scan(&n); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return n
}
