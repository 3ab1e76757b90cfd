package apple

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	capD := time.Hour
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"120", 120 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"7200", time.Hour, true},                    // capped
		{"99999999999999999999999", time.Hour, true}, // overflow: capped
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true}, // in the past: now
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
		{now.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"120s", 0, false},
		{"Mon, 99 Foo 2026 25:61:00 GMT", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.header, now, capD)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffCeiling(t *testing.T) {
	base, maxD := time.Second, time.Minute
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := backoffCeiling(i+1, base, maxD); got != w {
			t.Errorf("backoffCeiling(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := backoffCeiling(1000, base, maxD); got != maxD {
		t.Errorf("backoffCeiling(1000) = %v", got)
	}
	for range 1000 {
		if j := fullJitter(time.Second); j < 0 || j > time.Second {
			t.Fatalf("fullJitter out of range: %v", j)
		}
	}
	if fullJitter(0) != 0 {
		t.Error("fullJitter(0) != 0")
	}
}

func TestHoldTable(t *testing.T) {
	h := newHoldTable()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reason := func(streak int, d time.Duration) string { return "r" }
	if _, ok := h.active("k", now); ok {
		t.Fatal("empty table holds")
	}
	got := h.throttled("k", now, 2*time.Minute, nil, reason, 503, 0)
	if !got.until.Equal(now.Add(2*time.Minute)) || got.streak != 1 {
		t.Fatalf("hold = %+v", got)
	}
	// A shorter later answer does not shorten the hold.
	got = h.throttled("k", now.Add(time.Second), 5*time.Second, nil, reason, 503, 0)
	if !got.until.Equal(now.Add(2*time.Minute)) || got.streak != 2 {
		t.Fatalf("hold shortened: %+v", got)
	}
	if _, ok := h.active("k", now.Add(119*time.Second)); !ok {
		t.Error("hold not active before its end")
	}
	if _, ok := h.active("k", now.Add(2*time.Minute)); ok {
		t.Error("hold active at its end")
	}
	if _, ok := h.active("other", now); ok {
		t.Error("hold leaked to another key")
	}
	h.succeeded("k", now.Add(3*time.Minute))
	got = h.throttled("k", now.Add(4*time.Minute), 0, func(streak int) time.Duration { return time.Duration(streak) * time.Second }, reason, 429, 9646)
	if got.streak != 1 || !got.until.Equal(now.Add(4*time.Minute+time.Second)) {
		t.Errorf("streak not reset after success: %+v", got)
	}
}
