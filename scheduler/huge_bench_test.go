package scheduler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/scheduler"
)

// BenchmarkReconcileHuge is issue 13's huge account: one account of ORCHARD_BENCH_ASSIGNMENTS
// assignments (default 1,000,000; the growth table's sizes are 10,000, 100,000 and 1,000,000)
// over ORCHARD_BENCH_APPS assets (default 2,000), on each engine, with Apple answering at once
// and with 100 ms added to every Apple request. It reports the figures of BenchmarkReconcile:
// first-s, full-s (no change), incr-s (no change; goal < 1 s), client-s, ratio-first (goal
// ≤ 1.3 at 100 ms), peak-heap-MB (goal < 256).
//
// The simulator runs in a child process (this test binary again, as TestApplesimProcess), so
// that the heap figures are Orchard's alone: a million simulated assignments would otherwise
// count in them. The child's peak resident set is reported apart as sim-rss-MB.
//
//	ORCHARD_BENCH_ASSIGNMENTS=100000 go test ./scheduler/ -run '^$' -bench ReconcileHuge -benchtime 1x -timeout 120m
func BenchmarkReconcileHuge(b *testing.B) {
	n := benchEnvInt(b, "ORCHARD_BENCH_ASSIGNMENTS", 1_000_000)
	apps := benchEnvInt(b, "ORCHARD_BENCH_APPS", 2000)
	for _, e := range dbtest.Engines() {
		for _, lat := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/latency=%s", e.Name, lat), func(b *testing.B) {
				var m reconcileFigures
				for range b.N {
					m.add(reconcileHugeOnce(b, e, lat, n, apps))
				}
				m.report(b, b.N)
			})
		}
	}
}

// reconcileHugeOnce starts a simulator process with one token of n assignments, adds the
// account to a fresh database and measures its passes.
func reconcileHugeOnce(b *testing.B, e dbtest.Engine, latency time.Duration, n, apps int) reconcileFigures {
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	sim := startHugeSim(b, n, apps)
	d := e.Open(b)
	mdmID, _, err := d.ClaimSetting(ctx, "mdm_id", "orchard-bench-instance")
	if err != nil {
		b.Fatal(err)
	}
	api := apple.New(apple.Config{BaseURL: sim.url + "/mdm/v2", LookupURL: sim.url + "/lookup",
		MDM: apple.MDMInfo{ID: mdmID, Name: "Orchard", Metadata: "bench"}, BackoffBase: 50 * time.Millisecond})
	sealer, err := license.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	svc := license.New(d, license.Options{Logger: dbtest.Quiet(), Apple: api, Sealer: sealer})
	sched := scheduler.New(scheduler.Config{DB: d, License: svc, Apple: api, Log: dbtest.Quiet(), Holder: "bench", LeaseTTL: 30 * time.Second})
	a, _, err := svc.AddAccount(ctx, license.Actor{Kind: model.ActorSystem, ID: "bench", Name: "bench", Role: model.RoleAdmin},
		license.AddAccountInput{Name: "Huge", Token: sim.token})
	if err != nil {
		b.Fatal(err)
	}
	if latency > 0 {
		sim.control(b, "POST", "/_sim/faults", map[string]any{"token": sim.token, "kind": "slow", "delay": latency.String()})
	}
	f := measurePasses(b, benchSetup{d: d, svc: svc, sched: sched, api: api, accountID: a.ID, token: sim.token, assignments: int64(n)})
	f.simRSS = sim.peakRSS(b)
	return f
}

// hugeSim is a simulator running in a child process.
type hugeSim struct {
	url, token string
	cmd        *exec.Cmd
}

// hugeSimEnv carries the simulator's flags to TestApplesimProcess in the child.
const hugeSimEnv = "ORCHARD_BENCH_APPLESIM_ARGS"

// startHugeSim runs this test binary again as the simulator (TestApplesimProcess) with one
// generated token of n assignments over apps assets, and waits until it listens. It is
// stopped at cleanup (and stops by itself when this process dies: its stdin closes).
func startHugeSim(b *testing.B, n, apps int) *hugeSim {
	b.Helper()
	dir := b.TempDir()
	args := fmt.Sprintf("-listen 127.0.0.1:0 -tokens 1 -apps %d -assignments %d -seed 1 -countries US -token-dir %s -event-delay 20ms", apps, n, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplesimProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), hugeSimEnv+"="+args)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the simulator process: %v", err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	p := &hugeSim{cmd: cmd}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var tokenPath string
	for sc.Scan() && (p.url == "" || tokenPath == "") {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "applesim: listening on "); ok {
			p.url = strings.TrimSpace(u)
		}
		if f, ok := strings.CutPrefix(line, "  file: "); ok {
			tokenPath = strings.TrimSpace(f)
		}
	}
	if p.url == "" || tokenPath == "" {
		b.Fatalf("the simulator process did not say where it listens (%v)", sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	tok, err := os.ReadFile(filepath.Clean(tokenPath))
	if err != nil {
		b.Fatal(err)
	}
	p.token = string(tok)
	// The client's limiter follows service config: lift Apple's 15 requests per second, as
	// gqltest's stack does for the in-process simulator.
	p.control(b, "POST", "/_sim/limits", map[string]int{"maxRequestPerSecond": 10000})
	return p
}

// control calls the simulator's control API.
func (p *hugeSim) control(b *testing.B, method, path string, body any) {
	b.Helper()
	buf, err := json.Marshal(body)
	if err != nil {
		b.Fatal(err)
	}
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(buf))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s %s: %s %s", method, path, resp.Status, msg)
	}
}

// peakRSS reads the simulator process's peak resident set (VmHWM, Linux); 0 where unknown.
func (p *hugeSim) peakRSS(b *testing.B) uint64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	return 0
}

// TestApplesimProcess is not a test of its own: it is the simulator process of
// BenchmarkReconcileHuge (this binary run again with hugeSimEnv set), serving until its
// stdin closes. Without the variable it is skipped.
func TestApplesimProcess(t *testing.T) {
	args := os.Getenv(hugeSimEnv)
	if args == "" {
		t.Skip("the simulator process of BenchmarkReconcileHuge; it runs only as that")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it, or dies
		cancel()
	}()
	if err := applesim.Run(ctx, strings.Fields(args), os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// benchEnvInt reads a positive size from the environment, or def.
func benchEnvInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
