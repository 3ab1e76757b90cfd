package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// serving is a service started with run, as main starts it.
type serving struct {
	base, key string
	stderr    *syncBuffer
	stop      context.CancelFunc // SIGTERM
	done      chan error         // run's result
	result    *error             // run's result once taken from done
}

// wait returns run's result (once: the cleanup does not wait when a test took it).
func (s *serving) wait(timeout time.Duration) (error, bool) {
	if s.result != nil {
		return *s.result, true
	}
	select {
	case err := <-s.done:
		s.result = &err
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

func startServing(t *testing.T, env ...string) *serving {
	t.Helper()
	env = append([]string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "orchard.db"), "ORCHARD_LISTEN=127.0.0.1:0"}, env...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{stderr: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	var stdout syncBuffer
	go func() { s.done <- run(ctx, nil, env, &stdout, s.stderr) }()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	keyRe := regexp.MustCompile(`orch_[A-Za-z0-9_-]+`)
	deadline := time.Now().Add(20 * time.Second)
	for !re.MatchString(stdout.String()) || !keyRe.MatchString(stdout.String()) {
		select {
		case err := <-s.done:
			t.Fatalf("serve stopped: %v\nstderr: %s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start; stderr: %s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.base, s.key = re.FindStringSubmatch(stdout.String())[1], keyRe.FindString(stdout.String())
	t.Cleanup(func() {
		cancel()
		s.wait(30 * time.Second)
	})
	return s
}

// TestShutdown: on SIGTERM an open WebSocket subscription gets a close frame with 1001 (going
// away) instead of an abnormal closure, and an event stream completes, both at once (not at
// the end of the shutdown timeout); the run ends without error.
func TestShutdown(t *testing.T) {
	s := startServing(t, "ORCHARD_SHUTDOWN_TIMEOUT=10s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + s.key}})
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), "connection_ack") {
		t.Fatalf("connection_init: %s, %v", b, err)
	}
	send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription { licenseEvents { kind } }"}})

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/graphql", strings.NewReader(`{"query":"subscription { licenseEvents { kind } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.key)
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if sse.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: status %d, Content-Type %q", sse.StatusCode, sse.Header.Get("Content-Type"))
	}
	time.Sleep(200 * time.Millisecond) // the subscription is running

	start := time.Now()
	s.stop()
	for {
		if _, _, err = c.Read(ctx); err == nil {
			continue // the operation's end (complete) before the close frame
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Fatalf("WebSocket closed with %v (%v), want 1001 going away", got, err)
		}
		break
	}
	body, err := io.ReadAll(sse.Body)
	if err != nil || !strings.Contains(string(body), "event: complete") {
		t.Errorf("event stream ended with %q, %v; want event: complete", body, err)
	}
	if err, ok := s.wait(15 * time.Second); !ok {
		t.Fatal("run did not return")
	} else if err != nil {
		t.Fatalf("run returned %v after a clean shutdown", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with open streams; they should end at once", d)
	}
}

// TestShutdownPastTimeout: a request that is still in flight when the shutdown timeout is
// over (here one whose body never arrives) makes the run fail, so the process exits non-zero
// (main exits 1 on any error that is not a usage error), naming what did not finish.
func TestShutdownPastTimeout(t *testing.T) {
	s := startServing(t, "ORCHARD_SHUTDOWN_TIMEOUT=1s")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /graphql HTTP/1.1\r\nHost: orchard\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the request is being read
	s.stop()
	err, ok := s.wait(15 * time.Second)
	if !ok {
		t.Fatal("run did not return")
	}
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "requests still in flight after 1s") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run returned %v; want one line saying requests were still in flight", err)
	}
}
