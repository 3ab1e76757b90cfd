package applesim

import (
	"sync"
	"time"
)

// Request is one entry of the request log: every request to Apple's API (/mdm/v2/…) and to
// the metadata lookup, whatever its outcome, including those answered by a fault. Control
// API requests (/_sim/…) are not logged. Tests use it to prove, for example, that no request
// reached an account while it was held.
type Request struct {
	Time time.Time `json:"time"`
	// Token is the token's uId when the request named a known token (Bearer or itvt cookie),
	// never the secret; empty otherwise.
	Token       string `json:"token,omitempty"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query,omitempty"`
	Status      int    `json:"status"`
	ErrorNumber int    `json:"errorNumber,omitempty"` // the errorNumber of an error body, 0 for success
}

// maxLoggedRequests bounds the request log of a long-running simulator (the demo): past it,
// the oldest half is dropped. Tests stay far below it.
const maxLoggedRequests = 1 << 20

// requestLog is an append-only log under a small mutex of its own.
type requestLog struct {
	mu      sync.Mutex
	entries []Request
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	if len(l.entries) >= maxLoggedRequests {
		l.entries = append(l.entries[:0:0], l.entries[len(l.entries)/2:]...)
	}
	l.entries = append(l.entries, r)
	l.mu.Unlock()
}

func (l *requestLog) snapshot(uid string) []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	if uid == "" {
		return append([]Request(nil), l.entries...)
	}
	var out []Request
	for _, r := range l.entries {
		if r.Token == uid {
			out = append(out, r)
		}
	}
	return out
}

// Requests returns a copy of the request log.
func (s *Sim) Requests() []Request { return s.reqlog.snapshot("") }

// RequestsFor returns the logged requests of one token.
func (s *Sim) RequestsFor(tokenFile string) []Request {
	return s.reqlog.snapshot(s.mustToken(tokenFile).uid)
}

// ResetRequests empties the request log.
func (s *Sim) ResetRequests() {
	s.reqlog.mu.Lock()
	s.reqlog.entries = nil
	s.reqlog.mu.Unlock()
}
