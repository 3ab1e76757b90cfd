package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// documentedMetrics reads the metric families of the README's metrics table, with their
// labels.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile("(?m)^\\| `(orchard_[a-z_]+)` \\| [a-z]+ \\| ([^|]*) \\|")
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) < 20 {
		t.Fatalf("the README's metrics table lists %d families; expected the whole table", len(out))
	}
	return out
}

// scrape reads /metrics and returns the families present (with a sample) and the text.
func scrape(t *testing.T, base string) (map[string]bool, string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	present := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suffix)
		}
		present[name] = true
	}
	return present, string(b)
}

// perAccount says whether a family's series exist only once there is an account (or a
// request to Apple) to label them with.
func perAccount(labels string) bool {
	return strings.Contains(labels, "`account`") || strings.Contains(labels, "`endpoint`")
}

// TestMetricsAtStart: on a fresh install, every documented family that is not per account or
// per Apple endpoint is in /metrics at once (counters at zero), with the build info and the
// gauges read.
func TestMetricsAtStart(t *testing.T) {
	s := startServing(t)
	present, text := scrape(t, s.base)
	for name, labels := range documentedMetrics(t) {
		if !perAccount(labels) && !present[name] {
			t.Errorf("%s (documented) is not in /metrics at start", name)
		}
	}
	for _, want := range []string{`orchard_gauges_up 1`, `orchard_build_info{goversion="go`, `orchard_graphql_errors_total{code="UNAUTHENTICATED"} 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// logLines decodes the JSON log lines with the given msg.
func logLines(text, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestOperationsWithAccounts runs the demo (three accounts, synced from the simulator): each
// first pass logs one "sync pass" line with its account, kind, duration, counts and outcome;
// a request's log line names its operation and the key (never the key itself); and every
// documented metric family is in /metrics, the per-account ones for each account.
func TestOperationsWithAccounts(t *testing.T) {
	if raceEnabled() {
		saved := demoSpec
		demoSpec.AssignmentsPerToken = 100 // see TestServeDemo
		t.Cleanup(func() { demoSpec = saved })
	}
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "demo.db"), "ORCHARD_LISTEN=127.0.0.1:0"}
	out, stderr, stop := startServe(t, []string{"-demo"}, env, "Try in GraphiQL")
	defer stop()
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	key := regexp.MustCompile(`orch_[A-Za-z0-9_-]+`).FindString(out())

	deadline := time.Now().Add(90 * time.Second)
	var passes []map[string]any
	for {
		passes = nil
		for _, p := range logLines(stderr.String(), "sync pass") {
			if p["outcome"] == "SUCCEEDED" && p["kind"] == "FULL" {
				passes = append(passes, p)
			}
		}
		if len(passes) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(passes) < 3 {
		t.Fatalf("%d successful full sync pass lines, want one per demo account (3):\n%v", len(passes), logLines(stderr.String(), "sync pass"))
	}
	accounts := map[string]bool{}
	for _, p := range passes {
		for _, f := range []string{"account", "account_name", "kind", "trigger", "outcome", "duration_ms", "pages", "items_seen", "added", "changed", "removed"} {
			if _, ok := p[f]; !ok {
				t.Errorf("sync pass line lacks %s: %v", f, p)
			}
		}
		if added, _ := p["added"].(float64); added < 1 {
			t.Errorf("a demo account's first full pass added %v rows, want its generated data: %v", p["added"], p)
		}
		accounts[strings.TrimSuffix(strings.TrimSuffix(jsonString(p["account"]), ".0"), "")] = true
	}
	if len(accounts) != 3 {
		t.Errorf("sync pass lines name accounts %v, want three different ones", accounts)
	}

	var got struct{ Viewer struct{ Role string } }
	graphql(t, base, key, `query WhoAmI { viewer { role } }`, &got)
	var line map[string]any
	for _, l := range logLines(stderr.String(), "request") {
		if l["operation"] == "WhoAmI" {
			line = l
		}
	}
	want := map[string]any{"operation": "WhoAmI", "operation_type": "query", "api_key": "bootstrap admin", "route": "graphql", "status": float64(200)}
	gotLine := map[string]any{}
	for k := range want {
		gotLine[k] = line[k]
	}
	if diff := cmp.Diff(want, gotLine); diff != "" {
		t.Errorf("request log line mismatch (-want +got):\n%s\nline: %v", diff, line)
	}
	if strings.Contains(stderr.String(), key) {
		t.Error("the key is in the log")
	}

	present, text := scrape(t, base)
	for name := range documentedMetrics(t) {
		if !present[name] && name != "orchard_account_held_until_timestamp_seconds" { // only while held
			t.Errorf("%s (documented) is not in /metrics", name)
		}
	}
	if n := strings.Count(text, "\norchard_account_info{"); n != 3 {
		t.Errorf("orchard_account_info has %d series, want one per account (3)", n)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTraceparentContinued: a request carrying a W3C traceparent gets spans in that trace: the
// HTTP server span is the caller's span's child, the GraphQL operation the server span's, and
// the key's lookup and the operation's SQL statements are in it too (in-memory exporter).
func TestTraceparentContinued(t *testing.T) {
	rec := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	s := startServing(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, s.base+"/graphql", strings.NewReader(`{"query":"query Keys { viewer { role } apiKeys { totalCount } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	var spans tracetest.SpanStubs
	var server, op *tracetest.SpanStub
	deadline := time.Now().Add(5 * time.Second)
	for server == nil || op == nil {
		if time.Now().After(deadline) {
			var names []string
			for _, sp := range rec.GetSpans() {
				names = append(names, sp.Name+" "+sp.SpanContext.TraceID().String())
			}
			t.Fatalf("no server and operation spans in trace %s; spans: %v", traceID, names)
		}
		time.Sleep(20 * time.Millisecond)
		spans = nil
		for _, sp := range rec.GetSpans() {
			if sp.SpanContext.TraceID().String() == traceID {
				spans = append(spans, sp)
			}
		}
		for i := range spans {
			switch {
			case spans[i].SpanKind == trace.SpanKindServer:
				server = &spans[i]
			case spans[i].Name == "graphql.query Keys":
				op = &spans[i]
			}
		}
	}
	if got := server.Parent.SpanID().String(); got != parentID || !server.Parent.IsRemote() || server.Name != "POST /graphql" {
		t.Errorf("server span %q: parent %s (remote %v); want POST /graphql, the caller's %s, remote", server.Name, got, server.Parent.IsRemote(), parentID)
	}
	if op.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("operation span's parent is %s, want the server span %s", op.Parent.SpanID(), server.SpanContext.SpanID())
	}
	var sqlUnderOp, sqlTables []string
	for _, sp := range spans {
		if strings.HasPrefix(sp.Name, "db ") {
			sqlTables = append(sqlTables, sp.Name)
			if sp.Parent.SpanID() == op.SpanContext.SpanID() {
				sqlUnderOp = append(sqlUnderOp, sp.Name)
			}
		}
	}
	if len(sqlUnderOp) == 0 {
		t.Errorf("no SQL span under the operation; SQL spans of the trace: %v", sqlTables)
	}
}
