package model

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis ends a string that Truncate shortened.
const Ellipsis = "…"

// Truncate returns s cut to at most n characters (Unicode code points), the last of which is
// Ellipsis when anything was cut. It is the one way Orchard shortens a text to fit a column
// or a log line:
//
//   - it counts characters, not bytes, because that is what MySQL's VARCHAR(n) limits (and a
//     TEXT column's 65,535 bytes hold any n ≤ 16,383 characters of utf8mb4), so the result
//     always fits a column declared for n — the ellipsis is inside the limit, not after it, or
//     MySQL in strict mode refuses the row;
//   - it never splits a multi-byte character, and it replaces any invalid UTF-8 in s by U+FFFD,
//     so the result is valid UTF-8 that MySQL's utf8mb4 accepts and GraphQL can return as it is
//     stored.
//
// n < 1 yields "". Strings within the limit come back unchanged, apart from invalid UTF-8 (each
// run of invalid bytes becomes one U+FFFD).
func Truncate(s string, n int) string {
	if n < 1 {
		return ""
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n { // at most n bytes: at most n characters
		return s
	}
	count := 0
	for i := range s {
		if count == n-1 {
			// i is the start of character n: keep it only if it is the last one.
			if utf8.RuneCountInString(s[i:]) == 1 {
				return s
			}
			return s[:i] + Ellipsis
		}
		count++
	}
	return s // fewer than n characters
}
