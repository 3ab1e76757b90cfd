package applesim

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesGeneratedData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"-listen", "127.0.0.1:0", "-tokens", "2", "-apps", "10", "-assignments", "100", "-seed", "5", "-token-dir", dir, "-event-delay", "10ms"}, &out)
	}()
	var base string
	waitFor(t, "the listening line", func() bool {
		m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String())
		if m != nil && strings.Count(out.String(), "file: ") == 2 {
			base = m[1]
			return true
		}
		return false
	})
	files, err := filepath.Glob(filepath.Join(dir, "*.vpptoken"))
	if err != nil || len(files) != 2 {
		t.Fatalf("token files %v, %v", files, err)
	}
	tokenFile, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), string(tokenFile)) {
		t.Errorf("output does not print the token file:\n%s", out.String())
	}
	for _, path := range []string{"/mdm/v2/service/config", "/mdm/v2/client/config", "/mdm/v2/assets", "/mdm/v2/assignments", "/mdm/v2/users"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+string(tokenFile))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", path, resp.Status)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestRunFlagErrors(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"-nope"}, &out); err == nil {
		t.Errorf("unknown flag accepted")
	}
	if err := Run(context.Background(), []string{"extra"}, &out); err == nil {
		t.Errorf("extra argument accepted")
	}
	if err := Run(context.Background(), []string{"-h"}, &out); err != nil {
		t.Errorf("-h: %v", err)
	}
}
