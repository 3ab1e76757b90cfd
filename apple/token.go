package apple

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"orchard/model"
)

// Reasons a content token file is rejected by ParseToken. Each is wrapped with
// context; none of the wrapping texts contains any part of the secret.
var (
	ErrTokenNotBase64      = errors.New("not base64")
	ErrTokenNotJSON        = errors.New("not a base64-encoded JSON object")
	ErrTokenMissingField   = errors.New("missing field")
	ErrTokenBadDate        = errors.New("unparseable expDate")
	ErrTokenExpiredLocally = errors.New("token has expired")
)

// maxTokenFileSize bounds what ParseToken will look at; real files are well
// under 1 KiB.
const maxTokenFileSize = 64 << 10

// Token is a parsed content token (doc/apple-api.md §1). The whole base64 string of
// the file is the bearer credential; it and the inner "token" are held only by
// a closure in an unexported field: reflection-based printing (fmt of an
// enclosing struct under any verb, slog's text handler) shows a function
// address, and encoding/json skips the field.
// String, GoString, Format, LogValue and MarshalJSON show only the org name,
// the expiry and a fingerprint.
type Token struct {
	// OrgName is the organisation named in the file.
	OrgName string
	// ExpiresAt is the file's expDate, in UTC.
	ExpiresAt time.Time

	fingerprint string
	secret      func() tokenSecret
}

type tokenSecret struct {
	bearer string // the file's base64 string, trimmed
	inner  string // the decoded "token" field
}

type tokenFile struct {
	Token   *string `json:"token"`
	ExpDate *string `json:"expDate"`
	OrgName *string `json:"orgName"`
}

// ParseToken parses the content of a .vpptoken file: base64 (standard or URL
// alphabet, padding optional) of a JSON object with "token", "expDate" and
// "orgName". Surrounding whitespace, a trailing newline and a UTF-8 BOM are
// tolerated. expDate may use a numeric offset without a colon (+0000, Apple's
// form) or RFC 3339.
//
// The errors wrap ErrTokenNotBase64, ErrTokenNotJSON, ErrTokenMissingField,
// ErrTokenBadDate or ErrTokenExpiredLocally and never quote the file. A token
// whose expDate is not after now is rejected with ErrTokenExpiredLocally; the
// parsed token is returned along with that error so that callers can still show
// which organisation's token it was and when it expired. A zero now skips the
// expiry check.
func ParseToken(file []byte, now time.Time) (*Token, error) {
	if len(file) > maxTokenFileSize {
		return nil, fmt.Errorf("apple: content token: %w: file is %d bytes, larger than any token file", ErrTokenNotBase64, len(file))
	}
	file = bytes.TrimPrefix(bytes.TrimSpace(file), []byte("\ufeff"))
	file = bytes.TrimSpace(file)
	if len(file) == 0 {
		return nil, fmt.Errorf("apple: content token: %w: file is empty", ErrTokenNotBase64)
	}
	decoded, err := decodeTokenBase64(file)
	if err != nil {
		return nil, err
	}
	var tf tokenFile
	if err := json.Unmarshal(decoded, &tf); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return nil, fmt.Errorf("apple: content token: %w %q (it must be a string)", ErrTokenMissingField, typ.Field)
		}
		return nil, fmt.Errorf("apple: content token: %w: %s", ErrTokenNotJSON, describeJSONError(err))
	}
	if tf.Token == nil && tf.ExpDate == nil && tf.OrgName == nil {
		// Also the case for "null", arrays of objects never match, and objects
		// without any of the fields: all say "this is not a token file".
		if t := bytes.TrimSpace(decoded); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("apple: content token: %w: decoded content is not a JSON object", ErrTokenNotJSON)
		}
	}
	switch {
	case tf.Token == nil || strings.TrimSpace(*tf.Token) == "":
		return nil, fmt.Errorf("apple: content token: %w %q", ErrTokenMissingField, "token")
	case tf.ExpDate == nil || strings.TrimSpace(*tf.ExpDate) == "":
		return nil, fmt.Errorf("apple: content token: %w %q", ErrTokenMissingField, "expDate")
	case tf.OrgName == nil:
		return nil, fmt.Errorf("apple: content token: %w %q", ErrTokenMissingField, "orgName")
	}
	exp, ok := parseAppleTime(*tf.ExpDate)
	if !ok {
		return nil, fmt.Errorf("apple: content token: %w (%d characters; want e.g. 2030-11-08T22:33:22+0000 or RFC 3339)", ErrTokenBadDate, len(*tf.ExpDate))
	}
	bearer := string(file)
	sum := sha256.Sum256(file)
	tok := &Token{
		OrgName:     *tf.OrgName,
		ExpiresAt:   exp,
		fingerprint: hex.EncodeToString(sum[:6]),
		secret:      sealSecret(tokenSecret{bearer: bearer, inner: *tf.Token}),
	}
	if !now.IsZero() && !exp.After(now) {
		return tok, fmt.Errorf("apple: content token of %q: %w at %s; download a new one in Apple Business/School Manager",
			tok.OrgName, ErrTokenExpiredLocally, exp.Format(time.RFC3339))
	}
	return tok, nil
}

// sealSecret hides s in a closure.
func sealSecret(s tokenSecret) func() tokenSecret { return func() tokenSecret { return s } }

// decodeTokenBase64 accepts the standard and URL alphabets, with or without
// padding. The error reports only the offset of the first bad byte.
func decodeTokenBase64(b []byte) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out := make([]byte, enc.DecodedLen(len(b)))
		n, err := enc.Decode(out, b)
		if err == nil {
			return out[:n], nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	var corrupt base64.CorruptInputError
	if errors.As(firstErr, &corrupt) {
		return nil, fmt.Errorf("apple: content token: %w: bad data at byte %d of %d", ErrTokenNotBase64, int64(corrupt), len(b))
	}
	return nil, fmt.Errorf("apple: content token: %w", ErrTokenNotBase64)
}

// describeJSONError explains a json error without quoting the input.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type (want %s)", typ.Field, typ.Type)
		}
		return "expected a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return "invalid JSON"
	}
}

// truncate cuts s to at most n characters for a message: see model.Truncate.
func truncate(s string, n int) string { return model.Truncate(s, n) }

// Bearer returns the credential for the Authorization header (and the itvt
// cookie). It is the only way to obtain the secret; never log its result.
func (t *Token) Bearer() string {
	if t == nil || t.secret == nil {
		return ""
	}
	return t.secret().bearer
}

// Inner returns the decoded "token" field of the file. It is as secret as the
// bearer (the bearer can be rebuilt from it).
func (t *Token) Inner() string {
	if t == nil || t.secret == nil {
		return ""
	}
	return t.secret().inner
}

// Fingerprint is a short, stable, non-secret identifier of the token (the
// first 12 hex digits of the SHA-256 of the bearer string), for logs, metrics
// and limiter keys.
func (t *Token) Fingerprint() string {
	if t == nil {
		return ""
	}
	return t.fingerprint
}

// Expired reports whether the token's expDate is not after now.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.After(now) }

// String describes the token without its secret.
func (t Token) String() string {
	return fmt.Sprintf("apple.Token{org: %q, expires: %s, fingerprint: %s, secret: [REDACTED]}",
		t.OrgName, t.ExpiresAt.Format(time.RFC3339), t.fingerprint)
}

// GoString makes %#v redact too.
func (t Token) GoString() string { return t.String() }

// Format makes every fmt verb (%v, %+v, %s, %q, %x, %d, ...) print the
// redacted description.
func (t Token) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = fmt.Sprintf("%q", s)
	}
	_, _ = io.WriteString(f, s)
}

// LogValue implements slog.LogValuer without the secret.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("org", t.OrgName),
		slog.Time("expires", t.ExpiresAt),
		slog.String("fingerprint", t.fingerprint),
	)
}

// MarshalJSON encodes the token's public description, never the secret. To
// store a token, store the original file content (encrypted).
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		OrgName     string    `json:"orgName"`
		ExpiresAt   time.Time `json:"expiresAt"`
		Fingerprint string    `json:"fingerprint"`
	}{t.OrgName, t.ExpiresAt, t.fingerprint})
}
