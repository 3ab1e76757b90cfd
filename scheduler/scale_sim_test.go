package scheduler_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"orchard/apple/applesim"
)

// The simulator of the scale benchmarks runs in a process of its own (this test binary run
// again, as TestScaleSimProcess), so that the CPU the benchmark measures in its own process is
// Orchard's alone; the simulator's is read from /proc and reported beside it. It also drives the
// changes "from Apple's side" itself, so that the benchmark's process sends nothing for them.

// simProcessEnv switches TestScaleSimProcess on, with the simulator's settings as JSON.
const simProcessEnv = "ORCHARD_SCALE_SIM_PROCESS"

// simSpec is what the simulator process is asked for.
type simSpec struct {
	Accounts, Assignments, Apps int
	Seed                        int64
	Latency                     time.Duration // added to every authenticated request (FaultSlow)
	ChangesPerSecond            float64       // assignments added or removed in ABM, over all accounts
}

// simReady is the simulator process's one line once it serves.
type simReady struct {
	URL    string
	Tokens []string
}

const simReadyPrefix = "SCALE-SIM-READY "

// TestScaleSimProcess is not a test: it is the simulator process of the scale benchmarks
// (skipped unless they start it). It serves until its standard input closes.
func TestScaleSimProcess(t *testing.T) {
	raw := os.Getenv(simProcessEnv)
	if raw == "" {
		t.Skip("the simulator process of the scale benchmarks; they start it")
	}
	var spec simSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	sim := applesim.New(applesim.Options{EventDelay: 20 * time.Millisecond})
	defer sim.Close()
	sim.SetLimits(applesim.Limits{MaxRequestPerSecond: 10000})
	g := sim.Generate(applesim.GenSpec{Tokens: spec.Accounts, AppsPerToken: spec.Apps, AssignmentsPerToken: spec.Assignments,
		Seed: spec.Seed, Countries: []string{"US"}})
	if spec.Latency > 0 {
		for _, tok := range g.TokenFiles {
			sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: spec.Latency})
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	line, err := json.Marshal(simReady{URL: "http://" + ln.Addr().String(), Tokens: g.TokenFiles})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "%s%s\n", simReadyPrefix, line)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	driveChanges(ctx, sim, g.TokenFiles, spec.ChangesPerSecond, spec.Seed)
}

// driveChanges changes assignments in ABM at the given rate until ctx ends: each change removes
// one of a random account's assignments, or gives back one removed earlier (so that pools keep
// their licenses and the data keeps its size).
func driveChanges(ctx context.Context, sim *applesim.Sim, toks []string, perSecond float64, seed int64) {
	if perSecond <= 0 || len(toks) == 0 {
		<-ctx.Done()
		return
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	removed := make([][]applesim.Assignment, len(toks))
	const step = 50 * time.Millisecond
	t := time.NewTicker(step)
	defer t.Stop()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		owed += perSecond * step.Seconds()
		for ; owed >= 1; owed-- {
			i := rng.IntN(len(toks))
			if n := len(removed[i]); n > 0 && rng.IntN(2) == 0 {
				a := removed[i][n-1]
				removed[i] = removed[i][:n-1]
				_ = sim.AddAssignment(toks[i], a.AdamID, a.SerialNumber, a.ClientUserID)
				continue
			}
			as := sim.Assignments(toks[i])
			if len(as) == 0 {
				continue
			}
			a := as[rng.IntN(len(as))]
			if sim.RemoveAssignment(toks[i], a.AdamID, a.SerialNumber, a.ClientUserID) == nil {
				removed[i] = append(removed[i], a)
			}
		}
	}
}

// simProcess is a running simulator process.
type simProcess struct {
	simReady
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
}

// startSim starts the simulator process and waits until it serves.
func startSim(tb testing.TB, spec simSpec) *simProcess {
	tb.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleSimProcess$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), simProcessEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start the simulator process: %v", err)
	}
	p := &simProcess{cmd: cmd, stdin: stdin}
	tb.Cleanup(p.stop)
	r := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := r.ReadString('\n')
		if rest, ok := strings.CutPrefix(line, simReadyPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &p.simReady); err != nil {
				tb.Fatalf("the simulator process's ready line: %v", err)
			}
			break
		}
		if err != nil {
			tb.Fatalf("the simulator process ended before it served: %v", err)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	return p
}

func (p *simProcess) stop() {
	p.once.Do(func() {
		_ = p.stdin.Close()
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
}

// cpu is the simulator process's CPU time so far.
func (p *simProcess) cpu() time.Duration { return procCPU(p.cmd.Process.Pid) }

// procCPU reads a process's user + system CPU time from /proc (0 when it cannot). Linux counts
// it in clock ticks of 1/100 s (USER_HZ, 100 on every architecture Go supports there).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its ')' are fixed.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// findProcess returns the pid of the first process whose command is one of names (0: none).
func findProcess(names ...string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		for _, n := range names {
			if strings.TrimSpace(string(comm)) == n {
				return pid
			}
		}
	}
	return 0
}
