package main

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Issue 11 class 10: the SQLite database and its -wal and -shm files are readable by Orchard's
// user only (0600), whatever the umask — they hold key hashes, emails and the audit log — and
// a database an earlier version left world-readable is tightened at the next start.
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which would leave 0644 files
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "orchard.db")
	env := []string{"ORCHARD_DATABASE=sqlite:" + path, "ORCHARD_LISTEN=127.0.0.1:0"}
	modes := func() map[string]fs.FileMode {
		t.Helper()
		out := map[string]fs.FileMode{}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			out[filepath.Base(p)] = fi.Mode().Perm()
		}
		return out
	}
	want := map[string]fs.FileMode{"orchard.db": 0o600, "orchard.db-wal": 0o600, "orchard.db-shm": 0o600}
	_, _, stop := startServe(t, nil, env, "GraphiQL:")
	if diff := cmp.Diff(want, modes()); diff != "" {
		t.Errorf("a fresh database's modes mismatch (-want +got):\n%s", diff)
	}
	stop()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	// The -wal and -shm may be gone after a clean stop; an earlier version's are recreated
	// with the database's mode, or tightened if they are still there.
	_, _, stop = startServe(t, nil, env, "GraphiQL:")
	defer stop()
	if diff := cmp.Diff(want, modes()); diff != "" {
		t.Errorf("modes after a start over a 0644 database mismatch (-want +got):\n%s", diff)
	}
}

// Issue 11 class 10: /metrics can be moved to a listener of its own (ORCHARD_METRICS_ADDR) and
// protected by a bearer token (ORCHARD_METRICS_TOKEN); the main listener then has none.
func TestMetricsProtected(t *testing.T) {
	const token = "0123456789abcdef-metrics"
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "orchard.db"), "ORCHARD_LISTEN=127.0.0.1:0",
		"ORCHARD_METRICS_ADDR=127.0.0.1:0", "ORCHARD_METRICS_TOKEN=" + token}
	out, _, stop := startServe(t, nil, env, "GraphiQL:")
	defer stop()
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	m := regexp.MustCompile(`Metrics: (http://\S+)`).FindStringSubmatch(out())
	if m == nil {
		t.Fatalf("no metrics address printed:\n%s", out())
	}
	get := func(url, auth string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
	}
	if code, _, _ := get(base+"/metrics", "Bearer "+token); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener: %d, want 404", code)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", token} {
		if code, challenge, _ := get(m[1], auth); code != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") {
			t.Errorf("GET metrics with %q: %d (WWW-Authenticate %q), want 401 with a Bearer challenge", auth, code, challenge)
		}
	}
	if code, _, body := get(m[1], "bearer "+token); code != http.StatusOK || !strings.Contains(body, "orchard_http_requests_total") {
		t.Errorf("GET metrics with the token: %d, want 200 with Orchard's metrics", code)
	}
}

// Issue 11 class 10: a cross-origin WebSocket upgrade is refused with 403 and a coded error,
// and logged as one JSON line (the Origin a bounded field in it), never as a free-text line
// that quotes the header.
func TestCrossOriginWebSocketRefused(t *testing.T) {
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "orchard.db"), "ORCHARD_LISTEN=127.0.0.1:0"}
	out, stderr, stop := startServe(t, nil, env, "GraphiQL:")
	defer stop()
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	upgrade := func(origin string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/graphql", nil)
		for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "graphql-transport-ws"} {
			req.Header.Set(k, v)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return resp.StatusCode, "" // a WebSocket now: nothing to read
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const evil = `https://evil.example/"quoted" \u202e`
	code, body := upgrade(evil)
	var e struct {
		Errors []struct{ Extensions struct{ Code string } }
	}
	if code != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || len(e.Errors) != 1 || e.Errors[0].Extensions.Code != "FORBIDDEN" {
		t.Errorf("cross-origin upgrade: %d %q, want 403 with a FORBIDDEN error", code, body)
	}
	if code, _ := upgrade(base); code != http.StatusSwitchingProtocols {
		t.Errorf("same-origin upgrade: %d, want 101", code)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] == "cross-origin WebSocket upgrade refused" && rec["origin"] == evil {
			found = true
		}
	}
	if !found {
		t.Errorf("no JSON log line for the refused upgrade:\n%s", stderr.String())
	}
}

// Issue 11 class 10: GraphiQL's page is sent with a strict Content-Security-Policy (its assets
// are served by Orchard: no inline script, no other origin), refuses to be framed, and a
// request without a key is answered 401 with a Bearer challenge. The browser test shows the
// page works under that policy; this one fails if the policy or the headers go missing.
func TestGraphiQLPageHeaders(t *testing.T) {
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "orchard.db"), "ORCHARD_LISTEN=127.0.0.1:0"}
	out, _, stop := startServe(t, nil, env, "GraphiQL:")
	defer stop()
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out())[1]
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q allows inline code or another origin", csp)
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY", got)
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).Match(page) {
		t.Error("the page has an inline script, which its policy would block")
	}
	resp, err = http.Post(base+"/graphql", "application/json", strings.NewReader(`{"query":"{ viewer { role } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("no key: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
