package license

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Seal([]byte("secret token"), PurposeToken)
	b, _ := s.Seal([]byte("secret token"), PurposeToken)
	if bytes.Equal(a, b) || bytes.Contains(a, []byte("secret")) {
		t.Fatal("sealing must be randomised and hide the plaintext")
	}
	got, err := s.Open(a, PurposeToken)
	if err != nil || string(got) != "secret token" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open(a, PurposeNotificationSecret); !errors.Is(err, ErrUnseal) {
		t.Errorf("opened with another purpose: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(a, PurposeToken); !errors.Is(err, ErrUnseal) {
		t.Errorf("opened with another key: %v", err)
	}
	a[len(a)-1] ^= 1
	if _, err := s.Open(a, PurposeToken); !errors.Is(err, ErrUnseal) {
		t.Errorf("opened a tampered value: %v", err)
	}
	if _, err := s.Open([]byte("x"), PurposeToken); !errors.Is(err, ErrUnseal) {
		t.Errorf("opened garbage: %v", err)
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
}
