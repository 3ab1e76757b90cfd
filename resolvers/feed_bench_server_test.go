package resolvers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/resolvers"
)

// The server of BenchmarkSubscribers runs in a process of its own, so that what it costs per
// subscriber (heap, goroutine stacks, resident memory, goroutines) is measured without the
// clients' half. The benchmark runs its own test binary again with envFeedServer set to the
// database's URL; TestMain then serves instead of testing, as the orchard server does: the
// GraphQL handler behind the request log, an http.Server with the server's timeouts, and the
// Prometheus registry (the Go runtime's metrics among it) on /metrics.
//
// It serves on two listeners. The second one's sockets have a send buffer of
// slowSendBuffer bytes: the benchmark's slow subscriber connects there, so that its socket
// backs up after a few KB instead of the megabytes Linux's autotuning gives loopback sockets,
// and the feed's drop is what ends it. POST /debug/gc collects garbage and returns memory to
// the system before the benchmark reads the memory figures.
//
// The first line it writes is "feed-bench-server ADDR SLOW-ADDR PID"; it ends when its
// standard input closes (the benchmark ended, or died).
const envFeedServer = "ORCHARD_BENCH_FEED_SERVER"

// slowSendBuffer is the send buffer of the slow listener's sockets (the kernel doubles it).
const slowSendBuffer = 4096

func TestMain(m *testing.M) {
	if target := os.Getenv(envFeedServer); target != "" {
		if err := serveFeedBench(target); err != nil {
			fmt.Fprintln(os.Stderr, "feed bench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveFeedBench(rawTarget string) error {
	if os.Getenv("ORCHARD_BENCH_PPROF") != "" {
		runtime.MemProfileRate = 1
	}
	ctx := context.Background()
	target, err := db.ParseTarget(rawTarget)
	if err != nil {
		return fmt.Errorf("parse the database URL: %w", err)
	}
	d, err := db.Open(ctx, target, db.Options{Logger: dbtest.Quiet()})
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer d.Close()
	log := dbtest.Quiet()
	gql := resolvers.NewHandler(resolvers.Config{
		DB: d, License: license.New(d, license.Options{Logger: log}), Auth: resolvers.NewAuthenticator(d, db.Now),
		Log: log, Limits: resolvers.Limits{WSPerKey: -1, WSPerAddress: -1},
	})
	mux := http.NewServeMux()
	mux.Handle("/graphql", resolvers.RequestLog(log, "graphql", gql))
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { pprof.Handler("heap").ServeHTTP(w, r) })
	mux.HandleFunc("GET /debug/pprof/goroutine", func(w http.ResponseWriter, r *http.Request) { pprof.Handler("goroutine").ServeHTTP(w, r) })
	mux.HandleFunc("POST /debug/gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		w.WriteHeader(http.StatusNoContent)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	slowCfg := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, slowSendBuffer)
		}); err != nil {
			return err
		}
		return serr
	}}
	slowLn, err := slowCfg.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen with a small send buffer: %w", err)
	}
	for _, l := range []net.Listener{ln, slowLn} {
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
			IdleTimeout: 120 * time.Second}
		go func() { _ = srv.Serve(l) }()
	}
	fmt.Printf("feed-bench-server %s %s %d\n", ln.Addr(), slowLn.Addr(), os.Getpid())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// feedServer is the benchmark's handle on the server process.
type feedServer struct {
	cmd           *exec.Cmd
	stdin         io.Closer
	URL, SlowURL  string // ws:// URLs of /graphql (the slow listener's for SlowURL)
	base          string // http://ADDR, for /metrics and /debug/gc
	metricsClient *http.Client
}

// startFeedServer starts the server process over d's database.
func startFeedServer(b *testing.B, d *db.DB) *feedServer {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envFeedServer+"="+targetURL(b, d.Target()))
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
		b.Fatalf("start the server process: %v", err)
	}
	s := &feedServer{cmd: cmd, stdin: stdin, metricsClient: &http.Client{Timeout: 30 * time.Second}}
	b.Cleanup(s.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the server process did not start: %v", err)
	}
	var addr, slow string
	var pid int
	if _, err := fmt.Sscanf(line, "feed-bench-server %s %s %d", &addr, &slow, &pid); err != nil {
		b.Fatalf("the server process said %q: %v", line, err)
	}
	s.base = "http://" + addr
	s.URL, s.SlowURL = "ws://"+addr+"/graphql", "ws://"+slow+"/graphql"
	return s
}

// targetURL renders a database target as a URL db.ParseTarget reads back, password included.
func targetURL(b *testing.B, t *db.Target) string {
	if t.Dialect == db.SQLite {
		return "sqlite:" + t.Path
	}
	u := url.URL{Scheme: "mysql", Host: t.MySQL.Addr, Path: "/" + t.MySQL.DBName, User: url.User(t.MySQL.User)}
	if t.MySQL.Passwd != "" {
		u.User = url.UserPassword(t.MySQL.User, t.MySQL.Passwd)
	}
	if _, err := db.ParseTarget(u.String()); err != nil {
		b.Fatalf("the database URL for the server process: %v", err)
	}
	return u.String()
}

// stop ends the server process: its standard input closes, then, if it has not ended within
// 10 s, it is killed.
func (s *feedServer) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// metrics reads the server's /metrics: each series' value, summed over its labels.
func (s *feedServer) metrics(b *testing.B) map[string]float64 {
	b.Helper()
	m, err := s.readMetrics()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// readMetrics is metrics for goroutines other than the benchmark's.
func (s *feedServer) readMetrics() (map[string]float64, error) {
	resp, err := s.metricsClient.Get(s.base + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("read the server's metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		out[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the server's metrics: %w", err)
	}
	return out, nil
}

// serverMem is the server's memory after a collection: the Go heap and goroutine stacks in
// use, its resident set, and its goroutines.
type serverMem struct {
	heapStack, stack, rss, goroutines float64
}

func (s *feedServer) memory(b *testing.B) serverMem {
	b.Helper()
	for range 2 {
		resp, err := s.metricsClient.Post(s.base+"/debug/gc", "text/plain", nil)
		if err != nil {
			b.Fatalf("collect the server's garbage: %v", err)
		}
		resp.Body.Close()
	}
	m := s.metrics(b)
	rss, err := vmRSS(s.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return serverMem{
		heapStack:  m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"],
		stack:      m["go_memstats_stack_inuse_bytes"],
		rss:        rss,
		goroutines: m["go_goroutines"],
	}
}

// vmRSS is a process's resident set in bytes (/proc/PID/status).
func vmRSS(pid int) (float64, error) {
	bs, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the server's resident memory: %w", err)
	}
	for line := range strings.SplitSeq(string(bs), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}
