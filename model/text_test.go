package model

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Truncate keeps a text within n characters, the ellipsis included, and never yields invalid
// UTF-8: a VARCHAR(255) column on MySQL in strict mode refuses both a 256th character and a
// split one.
func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "empty", in: "", n: 5, want: ""},
		{name: "shorter", in: "abc", n: 5, want: "abc"},
		{name: "exactly n ASCII", in: "abcde", n: 5, want: "abcde"},
		{name: "one over, ASCII", in: "abcdef", n: 5, want: "abcd…"},
		{name: "exactly n multi-byte", in: "éééé日", n: 5, want: "éééé日"},
		{name: "multi-byte over", in: "日本語のアプリ", n: 5, want: "日本語の…"},
		{name: "four-byte characters", in: "🍏🍎🍐🍊🍋🍌", n: 3, want: "🍏🍎…"},
		{name: "n is 1", in: "abc", n: 1, want: "…"},
		{name: "n is 0", in: "abc", n: 0, want: ""},
		{name: "invalid UTF-8 replaced", in: "ab\xffc", n: 10, want: "ab\uFFFDc"},
		{name: "invalid UTF-8 cut", in: "\xffa\xfeb\xfd", n: 3, want: "\uFFFDa…"},
		{name: "many bytes, few characters", in: strings.Repeat("🍏", 4), n: 4, want: strings.Repeat("🍏", 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.in, tt.n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Truncate(%q, %d) mismatch (-want +got):\n%s", tt.in, tt.n, diff)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d) = %q: invalid UTF-8", tt.in, tt.n, got)
			}
			if c := utf8.RuneCountInString(got); c > max(tt.n, 0) {
				t.Errorf("Truncate(%q, %d) has %d characters, over the limit", tt.in, tt.n, c)
			}
		})
	}
}

// A 300-character name of 1- to 4-byte characters, cut for a VARCHAR(255) column, keeps 254
// of its characters and the ellipsis, whatever byte its characters end on.
func TestTruncateLongNames(t *testing.T) {
	t.Parallel()
	for _, ch := range []string{"a", "é", "日", "🍏"} {
		in := strings.Repeat(ch, 300)
		got := Truncate(in, 255)
		want := strings.Repeat(ch, 254) + Ellipsis
		if got != want {
			t.Errorf("Truncate(300 × %q, 255): %d characters, %d bytes, valid %v; want 254 × %q + %q",
				ch, utf8.RuneCountInString(got), len(got), utf8.ValidString(got), ch, Ellipsis)
		}
	}
}
