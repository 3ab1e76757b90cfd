package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// startServe runs `orchard [args]` in-process until the returned stop is called; ready says
// what on stdout means it has started.
func startServe(t *testing.T, args, env []string, ready string) (out func() string, stderr *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	stderr = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env, &stdout, stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), ready) {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve stopped: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("serve did not print %q; stdout: %s\nstderr: %s", ready, stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stdout.String, stderr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}
}

// getJSON GETs url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// graphql posts a query with key and decodes its data into v.
func graphql(t *testing.T, base, key, query string, v any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
		t.Fatalf("graphql %s: %v %+v", query, err, out.Errors)
	}
	if err := json.Unmarshal(out.Data, v); err != nil {
		t.Fatal(err)
	}
}

type demoAccount struct {
	Name, CountryCode, AppleUID, SyncStatus, Health string
	NotificationsEnabled                            bool
	LicensePools, LicenseAssignments                struct{ TotalCount int }
}

const demoAccountsQuery = `{ accounts { nodes { name countryCode appleUid syncStatus health notificationsEnabled
	licensePools { totalCount } licenseAssignments { totalCount } } } }`

// TestServeDemo is the README's `go run . -demo`: the simulator starts in the process, the
// three generated accounts are added and synced, and Orchard's counts equal the simulator's.
// A second start on the same database keeps the accounts and starts as well.
func TestServeDemo(t *testing.T) {
	if raceEnabled() {
		// The pure-Go SQLite runs many times slower under the race detector: the sync of
		// the full demo (3,000 assignments, about 4 s without it) takes over a minute. The
		// wiring under test is the same with less data.
		saved := demoSpec
		demoSpec.AssignmentsPerToken = 100
		t.Cleanup(func() { demoSpec = saved })
	}
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "demo.db"), "ORCHARD_LISTEN=127.0.0.1:0"}
	const ready = "Try in GraphiQL"
	out, stderr, stop := startServe(t, []string{"-demo"}, env, ready)
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	key := regexp.MustCompile(`orch_[A-Za-z0-9_-]+`).FindString(out())
	m := regexp.MustCompile(`Apple simulator: (http://\S+)`).FindStringSubmatch(out())
	if key == "" || m == nil || strings.Count(out(), "    added ") != 3 {
		stop()
		t.Fatalf("the demo block is incomplete:\n%s", out())
	}
	sim := m[1]

	// What the simulator generated, read from its control API.
	var tokens []struct{ UID, Country, TokenFile string }
	getJSON(t, sim+"/_sim/tokens", &tokens)
	if len(tokens) != 3 {
		stop()
		t.Fatalf("the simulator has %d tokens, want 3", len(tokens))
	}
	type counts struct{ assets, assignments int }
	want := map[string]counts{}
	var countries []string
	for _, tk := range tokens {
		var st struct {
			Assets, Assignments []json.RawMessage
		}
		getJSON(t, sim+"/_sim/state?token="+tk.UID, &st)
		want[tk.UID] = counts{len(st.Assets), len(st.Assignments)}
		countries = append(countries, tk.Country)
	}
	slices.Sort(countries)
	if !slices.Equal(countries, []string{"DE", "GB", "US"}) {
		t.Errorf("countries %v, want DE, GB, US", countries)
	}

	// Wait for the first syncs.
	started := time.Now()
	var accounts []demoAccount
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got struct{ Accounts struct{ Nodes []demoAccount } }
		graphql(t, base, key, demoAccountsQuery, &got)
		accounts = got.Accounts.Nodes
		synced := len(accounts) == 3
		for _, a := range accounts {
			synced = synced && a.SyncStatus == "OK" && a.LicenseAssignments.TotalCount > 0
		}
		if synced {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the demo accounts did not sync: %+v\nstderr: %s", accounts, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := 0
	for _, a := range accounts {
		w, ok := want[a.AppleUID]
		switch {
		case !ok:
			t.Errorf("account %q (%s) is not one of the simulator's", a.Name, a.AppleUID)
		case a.LicenseAssignments.TotalCount != w.assignments || a.LicensePools.TotalCount != w.assets:
			t.Errorf("account %q: %d assignments and %d pools, the simulator has %d and %d",
				a.Name, a.LicenseAssignments.TotalCount, a.LicensePools.TotalCount, w.assignments, w.assets)
		}
		if a.Health != "ACTIVE" || !a.NotificationsEnabled {
			t.Errorf("account %q: health %s, notifications %v", a.Name, a.Health, a.NotificationsEnabled)
		}
		total += a.LicenseAssignments.TotalCount
	}
	t.Logf("%d accounts synced in %s, %d assignments", len(accounts), time.Since(started).Round(time.Millisecond), total)

	// The printed examples work as printed; the assignment goes PENDING, then ASSIGNED.
	examples := demoExamples(out())
	if len(examples) != 4 {
		t.Fatalf("%d examples printed, want 4:\n%s", len(examples), out())
	}
	for _, q := range examples[:2] {
		var v any
		graphql(t, base, key, q, &v)
	}
	var assigned struct {
		AssignLicense struct {
			Assignment *struct{ Status string }
			UserErrors []struct{ Code, Message string }
		}
	}
	graphql(t, base, key, examples[2], &assigned)
	if a := assigned.AssignLicense; a.Assignment == nil || a.Assignment.Status != "PENDING" {
		t.Fatalf("the printed assignLicense answered %+v", a)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		var dev struct {
			Device struct {
				Assignments struct{ Nodes []struct{ Status string } }
			}
		}
		graphql(t, base, key, examples[3], &dev)
		if n := dev.Device.Assignments.Nodes; len(n) == 1 && n[0].Status == "ASSIGNED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the printed assignment did not become ASSIGNED: %+v", dev)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, tk := range tokens {
		if strings.Contains(stderr.String(), tk.TokenFile) || strings.Contains(out(), tk.TokenFile) {
			t.Errorf("a token file leaked into the output")
		}
	}
	stop()

	// Again on the same database: the accounts are there already, which is not an error.
	out, _, stop = startServe(t, []string{"-demo"}, env, ready)
	defer stop()
	if strings.Count(out(), "    present ") != 3 || strings.Contains(out(), "orch_") {
		t.Fatalf("a restarted demo printed:\n%s", out())
	}
	base = regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	var got struct{ Accounts struct{ Nodes []demoAccount } }
	graphql(t, base, key, demoAccountsQuery, &got)
	if len(got.Accounts.Nodes) != 3 {
		t.Fatalf("after a restart: %d accounts, want 3", len(got.Accounts.Nodes))
	}
}

// demoExamples returns the GraphQL examples of the demo block, without their comments.
func demoExamples(out string) []string {
	_, block, _ := strings.Cut(out, "Try in GraphiQL")
	var examples []string
	cur := ""
	for _, line := range strings.Split(block, "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cur += line + "\n"
		if strings.Count(cur, "{") == strings.Count(cur, "}") {
			examples = append(examples, cur)
			cur = ""
		}
	}
	return examples
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// TestDemoConfig: -demo sets the Apple URLs and the public URL itself and refuses them when
// given; it defaults to its own database.
func TestDemoConfig(t *testing.T) {
	key := "ORCHARD_SECRET_KEY=" + strings.Repeat("ab", 32) // no key file beside the database
	for _, tt := range []struct {
		env, args []string
		want      string
	}{
		{[]string{key, "ORCHARD_APPLE_URL=https://vpp.itunes.apple.com/mdm/v2"}, []string{"-demo"}, "unset ORCHARD_APPLE_URL,"},
		{[]string{key}, []string{"-demo", "-lookup-url", "http://127.0.0.1:1/lookup"}, "unset ORCHARD_LOOKUP_URL,"},
		{[]string{key, "ORCHARD_PUBLIC_URL=https://orchard.example.com"}, []string{"-demo", "-apple-url", "http://x"}, "unset ORCHARD_APPLE_URL and ORCHARD_PUBLIC_URL,"},
	} {
		_, err := loadConfig(tt.args, tt.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v args %v: error %v, want one line with %q", tt.env, tt.args, err, tt.want)
		}
	}
	for _, tt := range []struct {
		env, args []string
		want      string
	}{
		{[]string{key}, []string{"-demo"}, "sqlite:orchard-demo.db"},
		{[]string{key, "ORCHARD_DATABASE="}, []string{"-demo"}, "sqlite:orchard-demo.db"},
		{[]string{key, "ORCHARD_DATABASE=sqlite:mine.db"}, []string{"-demo"}, "sqlite:mine.db"},
		{[]string{key}, []string{"-demo", "-database", "sqlite:other.db"}, "sqlite:other.db"},
		{[]string{key}, nil, "sqlite:orchard.db"},
	} {
		cfg, err := loadConfig(tt.args, tt.env, io.Discard)
		if err != nil || cfg.Database.String() != tt.want {
			t.Errorf("env %v args %v: %v, database %v, want %s", tt.env, tt.args, err, cfg, tt.want)
		}
	}
	for addr, want := range map[string]string{
		"0.0.0.0:8080": "http://127.0.0.1:8080", "[::]:8080": "http://127.0.0.1:8080",
		"127.0.0.1:9": "http://127.0.0.1:9", "[::1]:9": "http://[::1]:9", "192.0.2.7:8080": "",
	} {
		tcp, _ := net.ResolveTCPAddr("tcp", addr)
		got, err := demoPublicURL(tcp)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("demoPublicURL(%s) = %q, %v; want %q", addr, got, err, want)
		}
	}
}
