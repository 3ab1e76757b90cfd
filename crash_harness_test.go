package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
)

// The harness of the crash tests (crash_test.go, crash_policy_test.go): Orchard runs as a real
// process, the binary built once per test run, over one database that every run of the process
// shares, against a simulated Apple in the test process that outlives the kills and retries
// the notifications a dead Orchard could not take, as Apple does. A test kills the process
// with SIGKILL and starts it again (restart), waits for it to answer /healthz (waitReady), and
// talks GraphQL to whichever run is up (crashClient).

// crashAsset is an app the account owns at Apple, with its licenses.
type crashAsset struct {
	adamID string
	total  int
}

// crashHarness is one crash test's process, database, Apple and client.
type crashHarness struct {
	*crashEnv
	sim *applesim.Sim
	tok string // the account's token at Apple
	cl  *crashClient

	mu   sync.Mutex // guards proc
	proc *orchardProc
}

// newCrashHarness starts Apple with the assets in one US account, migrates a database of the
// engine (as an operator's `orchard migrate` would), starts the process, and adds the account
// through the API (with the admin key the first run prints), waiting for its first sync.
func newCrashHarness(t *testing.T, bin string, e dbtest.Engine, assets []crashAsset, clientTimeout time.Duration) *crashHarness {
	t.Helper()
	sim := applesim.New(applesim.Options{EventDelay: 100 * time.Millisecond, NotificationAttempts: 12,
		NotificationRetryBackoff: 150 * time.Millisecond})
	sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 10000})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(func() { simSrv.Close(); sim.Close() })
	tok := sim.AddToken(applesim.TokenSpec{OrgName: "Crash Org", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
	for _, a := range assets {
		sim.AddAsset(tok, applesim.Asset{AdamID: a.adamID, PricingParam: "STDQ", ProductType: "App", Total: a.total,
			DeviceAssignable: true, Revocable: true, Name: "App " + a.adamID, BundleID: "com.example.a" + a.adamID})
	}

	// The process's database and address; the same for every run.
	d := e.Open(t)
	target := "sqlite:" + d.Target().Path
	if d.Dialect() == db.MySQL {
		u, err := url.Parse(os.Getenv(dbtest.EnvMySQL))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + d.Target().MySQL.DBName
		target = u.String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stderr, err := os.Create(filepath.Join(t.TempDir(), "orchard.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stderr.Close() })
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCHARD_") {
			env = append(env, kv)
		}
	}
	h := &crashHarness{sim: sim, tok: tok, crashEnv: &crashEnv{bin: bin, base: "http://" + addr, stderr: stderr, d: d, env: append(env,
		"ORCHARD_DATABASE="+target,
		"ORCHARD_LISTEN="+addr,
		"ORCHARD_APPLE_URL="+simSrv.URL+"/mdm/v2",
		"ORCHARD_LOOKUP_URL="+simSrv.URL+"/lookup",
		"ORCHARD_PUBLIC_URL=http://"+addr,
		"ORCHARD_SECRET_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"ORCHARD_INCREMENTAL_INTERVAL=10s",
		"ORCHARD_SYNC_INTERVAL=1m",
		"ORCHARD_LOG_LEVEL=warn",
		"ORCHARD_SHUTDOWN_TIMEOUT=2s",
	)}}

	h.proc = h.start(t)
	t.Cleanup(func() { h.mu.Lock(); h.proc.stop(); h.mu.Unlock() })
	h.waitReady(t)
	// The key is printed before the server answers, but its copy from the pipe may lag.
	keyRE := regexp.MustCompile(`orch_[A-Za-z0-9_-]+`)
	var key string
	for deadline := time.Now().Add(10 * time.Second); key == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		key = keyRE.FindString(h.proc.stdout.String())
	}
	if key == "" {
		t.Fatalf("no admin key printed:\n%s", h.proc.stdout.String())
	}
	h.cl = &crashClient{url: h.base + "/graphql", key: key, http: &http.Client{Timeout: clientTimeout}}

	// The account, synced.
	var added struct {
		AddAccount struct {
			Account    *struct{ ID string }
			UserErrors []struct{ Code, Message string }
		}
	}
	h.cl.must(t, `mutation($in: AddAccountInput!) { addAccount(input: $in) { account { id } userErrors { code message } } }`,
		map[string]any{"in": map[string]any{"name": "Main", "token": tok}}, &added)
	if added.AddAccount.Account == nil {
		t.Fatalf("addAccount: %+v", added.AddAccount.UserErrors)
	}
	crashWait(t, "the first sync", 60*time.Second, func() bool {
		return crashCount(t, d, "SELECT COUNT(*) FROM sync_runs WHERE status = 'SUCCEEDED'") > 0 &&
			crashCount(t, d, "SELECT COUNT(*) FROM license_pools") == int64(len(assets))
	})
	return h
}

// restart kills the running process with SIGKILL and starts a new run at once; between, with
// the process dead, it calls between (if any).
func (h *crashHarness) restart(t *testing.T, between func()) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.proc.kill()
	if between != nil {
		between()
	}
	h.proc = h.start(t)
}

// waitReady waits until the current run answers /healthz (or stops).
func (h *crashHarness) waitReady(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	p := h.proc
	h.mu.Unlock()
	h.crashEnv.waitReady(t, p)
}

// buildOrchard builds the orchard binary (a normal build, even under -race) once per run of
// the test, shared by its engines.
func buildOrchard(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "orchard")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// orchardProc is one run of the orchard binary.
type orchardProc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	done   chan struct{}
	err    error
}

// crashEnv is what every run of the process shares: its database, its address, Apple.
type crashEnv struct {
	bin, base string
	env       []string
	stderr    *os.File
	d         *db.DB
}

func (c *crashEnv) start(t *testing.T) *orchardProc {
	t.Helper()
	p := &orchardProc{stdout: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(c.bin)
	p.cmd.Env = c.env
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = c.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start orchard: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p
}

// kill stops the process with SIGKILL and waits for it.
func (p *orchardProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to shut down (SIGTERM) and waits for it.
func (p *orchardProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// waitReady waits until the process answers /healthz (or stops).
func (c *crashEnv) waitReady(t *testing.T, p *orchardProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("orchard stopped: %v\n%s", p.err, c.logTail())
		default:
		}
		resp, err := http.Get(c.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("orchard did not become ready\n%s", c.logTail())
}

func (c *crashEnv) logTail() string {
	b, _ := os.ReadFile(c.stderr.Name())
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return "orchard's log (tail):\n" + string(b)
}

// crashClient talks GraphQL to whichever run of the process is up.
type crashClient struct {
	url, key string
	http     *http.Client
}

// errTransport is a failure to get an answer at all (the process is down or was killed
// mid-request): the caller retries with the same idempotency key.
var errTransport = errors.New("no answer")

func (c *crashClient) do(ctx context.Context, query string, vars map[string]any, into any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errTransport, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: %v", errTransport, err)
	}
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("%w: status %d: %.200s", errTransport, resp.StatusCode, b)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("status %d: %v: %s", resp.StatusCode, out.Errors[0].Extensions["code"], out.Errors[0].Message)
	}
	return json.Unmarshal(out.Data, into)
}

// must sends a request that must succeed (outside the kills).
func (c *crashClient) must(t *testing.T, query string, vars map[string]any, into any) {
	t.Helper()
	if err := c.do(context.Background(), query, vars, into); err != nil {
		t.Fatal(err)
	}
}

type crashPool struct {
	adamID                                   string
	total, assigned, reserved, appleAssigned int64
}

// crashPools reads the pools' counts straight from the database (errors, such as a busy SQLite
// file while a run is being killed, give no rows).
// fullPass asks for a full pass of the harness's one account and waits until it succeeded.
func fullPass(t *testing.T, cl *crashClient, d *db.DB) {
	t.Helper()
	var acct struct {
		Accounts struct{ Nodes []struct{ ID string } }
	}
	cl.must(t, `{ accounts { nodes { id } } }`, nil, &acct)
	runsBefore := crashCount(t, d, "SELECT COUNT(*) FROM sync_runs WHERE kind = 'FULL' AND status = 'SUCCEEDED'")
	var synced struct {
		SyncAccount struct {
			SyncRun    *struct{ ID string }
			UserErrors []struct{ Code, Message string }
		}
	}
	cl.must(t, `mutation($id: ID!) { syncAccount(input: {accountId: $id, kind: FULL}) { syncRun { id } userErrors { code message } } }`,
		map[string]any{"id": acct.Accounts.Nodes[0].ID}, &synced)
	if synced.SyncAccount.SyncRun == nil {
		t.Fatalf("syncAccount: %+v", synced.SyncAccount.UserErrors)
	}
	crashWait(t, "a full pass", 60*time.Second, func() bool {
		return crashCount(t, d, "SELECT COUNT(*) FROM sync_runs WHERE kind = 'FULL' AND status = 'SUCCEEDED'") > runsBefore
	})
}

func crashPools(ctx context.Context, d *db.DB) []crashPool {
	rs, err := d.SQL().QueryContext(ctx, "SELECT adam_id, total_count, assigned_count, reserved_count, apple_assigned_count FROM license_pools")
	if err != nil {
		return nil
	}
	defer rs.Close()
	var out []crashPool
	for rs.Next() {
		var p crashPool
		if err := rs.Scan(&p.adamID, &p.total, &p.assigned, &p.reserved, &p.appleAssigned); err != nil {
			return nil
		}
		out = append(out, p)
	}
	return out
}

func crashCount(t *testing.T, d *db.DB, query string) int64 {
	t.Helper()
	var n int64
	if err := d.SQL().QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func crashWait(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
