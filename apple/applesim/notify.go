package applesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Notifications (doc/apple-api.md §8): Apple POSTs JSON to the token's notificationUrl with
// "Authorization: Bearer <notificationAuthToken>"; any 2xx counts as delivered. Delivery is
// best effort: up to Options.NotificationAttempts attempts, the n-th retry after n ×
// Options.NotificationRetryBackoff, optionally every notification twice
// (Options.DuplicateNotifications). Messages are built while the token is locked and
// delivered from a goroutine after the lock is released.

// maxNotificationItems is Apple's cap of elements (assignments, users) per notification.
const maxNotificationItems = 100

// outgoing is one notification ready to send.
type outgoing struct {
	uid, url, auth string
	id, typ        string
	body           []byte
}

// Delivery is one delivery attempt of a notification.
type Delivery struct {
	Time             time.Time       `json:"time"`
	Token            string          `json:"token"` // the token's uId
	URL              string          `json:"url"`
	NotificationID   string          `json:"notificationId"`
	NotificationType string          `json:"notificationType"`
	Attempt          int             `json:"attempt"`          // 1 for the first attempt
	Status           int             `json:"status,omitempty"` // HTTP status, 0 when the request failed
	Err              string          `json:"error,omitempty"`
	Body             json.RawMessage `json:"body"` // the whole message: {notificationId, notificationType, uId, notification}
}

// notification builds a message for the token's subscriber, or none if the token has no
// notification URL or is not subscribed to the type. Callers hold t.mu.
func (t *token) notification(s *Sim, typ string, payload any) []*outgoing {
	if t.notifyURL == "" || (typ != notifTest && !slices.Contains(t.notifyTypes, typ)) {
		return nil
	}
	id := newUUID()
	body, err := json.Marshal(wireNotification{NotificationID: id, NotificationType: typ, UID: t.uid, Notification: payload})
	if err != nil {
		return nil
	}
	return []*outgoing{{uid: t.uid, url: t.notifyURL, auth: t.notifyAuth, id: id, typ: typ, body: body}}
}

type notifyJob struct {
	o       *outgoing
	attempt int
}

// notifier delivers notifications from one goroutine, started on first use.
type notifier struct {
	s      *Sim
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once

	mu     sync.Mutex
	queue  []notifyJob
	wake   chan struct{}
	closed bool

	dmu        sync.Mutex
	deliveries []Delivery
}

func newNotifier(s *Sim) *notifier {
	n := &notifier{s: s, client: s.opts.NotificationHTTPClient, wake: make(chan struct{}, 1)}
	if n.client == nil {
		n.client = &http.Client{Timeout: 10 * time.Second}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// send queues messages for delivery (twice each with Options.DuplicateNotifications).
func (n *notifier) send(msgs ...*outgoing) {
	if len(msgs) == 0 {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	for _, o := range msgs {
		n.queue = append(n.queue, notifyJob{o: o, attempt: 1})
		if n.s.opts.DuplicateNotifications {
			n.queue = append(n.queue, notifyJob{o: o, attempt: 1})
		}
	}
	// Started under mu so that it cannot race with close's wg.Wait.
	n.start.Do(func() {
		n.wg.Add(1)
		go n.run()
	})
	n.mu.Unlock()
	n.signal()
}

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		var job notifyJob
		have := len(n.queue) > 0
		if have {
			job = n.queue[0]
			n.queue[0] = notifyJob{}
			n.queue = n.queue[1:]
		}
		n.mu.Unlock()
		if !have {
			select {
			case <-n.wake:
				continue
			case <-n.ctx.Done():
				return
			}
		}
		if err := n.deliver(job.o, job.attempt); err != nil && job.attempt < n.s.opts.NotificationAttempts {
			n.retry(job)
		}
	}
}

// retry requeues a job after its backoff, unless the notifier closes first.
func (n *notifier) retry(job notifyJob) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		timer := time.NewTimer(time.Duration(job.attempt) * n.s.opts.NotificationRetryBackoff)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-n.ctx.Done():
			return
		}
		n.mu.Lock()
		if !n.closed {
			n.queue = append(n.queue, notifyJob{o: job.o, attempt: job.attempt + 1})
		}
		n.mu.Unlock()
		n.signal()
	}()
}

// deliver makes one delivery attempt and records it.
func (n *notifier) deliver(o *outgoing, attempt int) error {
	d := Delivery{Time: n.s.now(), Token: o.uid, URL: o.url, NotificationID: o.id, NotificationType: o.typ, Attempt: attempt, Body: o.body}
	err := n.post(o, &d)
	if err != nil {
		d.Err = err.Error()
	}
	n.dmu.Lock()
	n.deliveries = append(n.deliveries, d)
	n.dmu.Unlock()
	return err
}

func (n *notifier) post(o *outgoing, d *Delivery) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, o.url, bytes.NewReader(o.body))
	if err != nil {
		return fmt.Errorf("notification request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+o.auth)
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting notification: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d.Status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notification endpoint answered %s", resp.Status)
	}
	return nil
}

func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.queue = nil
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
}

// Deliveries returns every notification delivery attempt so far, in order.
func (s *Sim) Deliveries() []Delivery {
	n := s.notifier
	n.dmu.Lock()
	defer n.dmu.Unlock()
	return slices.Clone(n.deliveries)
}

// splitItems cuts a list into chunks of at most maxNotificationItems elements; one empty
// chunk for an empty list.
func splitItems[T any](items []T) [][]T {
	if len(items) == 0 {
		return [][]T{{}}
	}
	var out [][]T
	for len(items) > 0 {
		n := min(len(items), maxNotificationItems)
		out = append(out, items[:n:n])
		items = items[n:]
	}
	return out
}
