package gqltest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/scheduler"
)

// Stack is Orchard end to end, in process but over real HTTP: the GraphQL endpoint and the
// Apple notification endpoint on one server, the scheduler running, and Apple played by the
// simulator on another server.
type Stack struct {
	*Server
	Sim       *applesim.Sim
	SimURL    string
	Apple     *apple.Client
	Scheduler *scheduler.Scheduler
	// Replicas are the schedulers sharing the database, as replicas of Orchard would
	// (StackOptions.Replicas); Replicas[0] is Scheduler, which also serves notifications.
	Replicas []*Replica
	// BaseURL is the Orchard server's root (also the public URL Apple notifies).
	BaseURL string
}

// Replica is one of a Stack's schedulers, with an Apple client of its own (replicas share
// nothing but the database).
type Replica struct {
	Holder    string
	Scheduler *scheduler.Scheduler
	Apple     *apple.Client
	// DB is the replica's database handle: the Stack's, or one of its own with
	// StackOptions.SeparateDBs.
	DB    *db.DB
	ownDB bool
	stop  context.CancelFunc
	done  chan struct{}
}

// Crash stops the replica as if its process died: its database handle is closed first, so
// that it can neither record the end of the work it had under way nor give its leases back
// (they run out), then its context is cancelled and it is waited for. It needs
// StackOptions.SeparateDBs.
func (r *Replica) Crash(t testing.TB) {
	t.Helper()
	if !r.ownDB {
		t.Fatal("Replica.Crash needs StackOptions.SeparateDBs")
	}
	if err := r.DB.Close(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
}

// Stop stops the replica's scheduler (its context is cancelled, as at shutdown) and waits for
// it. Stopping a stopped replica does nothing.
func (r *Replica) Stop() {
	r.stop()
	<-r.done
}

// StackOptions adjust a Stack.
type StackOptions struct {
	Sim applesim.Options
	// Scheduler settings (tests want them fast); zero values get test defaults.
	Scheduler scheduler.Config
	// NoNotifications leaves ORCHARD_PUBLIC_URL unset: Apple sends no notifications, and
	// completion relies on status polling.
	NoNotifications bool
	// NoScheduler does not start the scheduler (tests that run passes by hand).
	NoScheduler bool
	// Replicas is the number of schedulers sharing the database (default 1); each gets the
	// Holder "replica-N" (unless Scheduler.Holder is set, for a single one) and an Apple
	// client of its own.
	Replicas int
	// SeparateDBs gives every replica a database handle of its own on the same database, as
	// separate processes have (see Replica.Crash).
	SeparateDBs bool
}

// NewStack starts a Stack over d.
func NewStack(t testing.TB, d *db.DB, opts StackOptions) *Stack {
	t.Helper()
	if opts.Sim.EventDelay == 0 {
		opts.Sim.EventDelay = 20 * time.Millisecond
	}
	if opts.Sim.NotificationRetryBackoff == 0 {
		opts.Sim.NotificationRetryBackoff = 20 * time.Millisecond
	}
	sim := applesim.New(opts.Sim)
	sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 10000})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(func() { simSrv.Close(); sim.Close() })

	st := &Stack{Sim: sim, SimURL: simSrv.URL}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st.BaseURL = srv.URL

	mdmID, _, err := d.ClaimSetting(context.Background(), "mdm_id", "orchard-test-instance")
	if err != nil {
		t.Fatal(err)
	}
	newClient := func() *apple.Client {
		return apple.New(apple.Config{BaseURL: simSrv.URL + "/mdm/v2", LookupURL: simSrv.URL + "/lookup",
			MDM: apple.MDMInfo{ID: mdmID, Name: "Orchard", Metadata: "test"}, BackoffBase: 50 * time.Millisecond})
	}
	st.Apple = newClient()
	sealer, err := license.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	public := srv.URL
	if opts.NoNotifications {
		public = ""
	}
	svc := license.New(d, license.Options{Logger: dbtest.Quiet(), Apple: st.Apple, Sealer: sealer, PublicURL: public})
	n := max(opts.Replicas, 1)
	for i := range n {
		sc := opts.Scheduler
		sc.DB, sc.License, sc.Apple = d, svc, st.Apple
		if i > 0 {
			sc.Apple = newClient()
		}
		own := false
		if opts.SeparateDBs {
			h, err := db.Open(context.Background(), d.Target(), db.Options{Logger: dbtest.Quiet()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close() })
			sc.DB, own = h, true
		}
		if sc.Log == nil {
			sc.Log = dbtest.Quiet()
		}
		if sc.Tick == 0 {
			sc.Tick = 50 * time.Millisecond
		}
		if sc.PollInterval == 0 {
			sc.PollInterval = 100 * time.Millisecond
		}
		if sc.LeaseTTL == 0 {
			// Long enough for the race detector's slow SQLite: a pass whose lease renewal
			// is late is stopped (and run again).
			sc.LeaseTTL = 10 * time.Second
		}
		if sc.Holder == "" || n > 1 {
			sc.Holder = fmt.Sprintf("replica-%d", i)
		}
		st.Replicas = append(st.Replicas, &Replica{Holder: sc.Holder, Scheduler: scheduler.New(sc), Apple: sc.Apple,
			DB: sc.DB, ownDB: own, done: make(chan struct{})})
	}
	st.Scheduler = st.Replicas[0].Scheduler
	svc.SetKick(func(id int64) {
		for _, r := range st.Replicas {
			r.Scheduler.Kick(id)
		}
	})

	st.Server = newServer(t, d, svc, Options{})
	mux.Handle("/graphql", st.Server.handler)
	mux.Handle("POST /apple/notifications/{accountID}", st.Scheduler.NotificationHandler())
	st.Server.URL = srv.URL + "/graphql"
	st.Server.client = keepAlive(srv.Client())

	for _, r := range st.Replicas {
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		if opts.NoScheduler {
			close(r.done)
			continue
		}
		go func() {
			defer close(r.done)
			_ = r.Scheduler.Run(ctx)
		}()
	}
	t.Cleanup(st.Stop)
	return st
}

// Stop stops every scheduler and waits for them.
func (st *Stack) Stop() {
	for _, r := range st.Replicas {
		r.stop()
	}
	for _, r := range st.Replicas {
		<-r.done
	}
}

// AddAccount adds a simulator token through the API and returns the account's global id.
func (st *Stack) AddAccount(t testing.TB, name, tokenFile string) string {
	t.Helper()
	var out struct {
		AddAccount struct {
			Account    *struct{ ID string }
			UserErrors []struct{ Code, Message string }
		}
	}
	st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: AddAccountInput!) { addAccount(input: $in) { account { id } userErrors { code message } } }`,
		map[string]any{"in": map[string]any{"name": name, "token": tokenFile}}).MustData(t, &out)
	if len(out.AddAccount.UserErrors) > 0 || out.AddAccount.Account == nil {
		t.Fatalf("addAccount refused: %+v", out.AddAccount.UserErrors)
	}
	return out.AddAccount.Account.ID
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitSynced waits until the account has a successful pass that started after since.
func (st *Stack) WaitSynced(t testing.TB, accountGID string, since time.Time) {
	t.Helper()
	WaitFor(t, "a successful sync of "+accountGID, 30*time.Second, func() bool {
		var out struct {
			Account struct {
				SyncRuns struct {
					Nodes []struct {
						Status    string
						StartedAt time.Time
						Error     *string
					}
				}
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!) { account(id: $id) { syncRuns(first: 5) { nodes { status startedAt error } } } }`,
			map[string]any{"id": accountGID}).MustData(t, &out)
		for _, r := range out.Account.SyncRuns.Nodes {
			if r.Status == "SUCCEEDED" && !r.StartedAt.Before(since.Add(-time.Second)) {
				return true
			}
		}
		return false
	})
}

// JSON pretty-prints v for failure messages.
func JSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
