package apple

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseToken(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := time.Date(2030, 11, 8, 22, 33, 22, 0, time.UTC)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	valid := `{"token":"abc+/inner==","expDate":"2030-11-08T22:33:22+0000","orgName":"ORG12345"}`
	tests := []struct {
		name    string
		file    string
		wantErr error
		wantOrg string
		wantExp time.Time
	}{
		{name: "apple format", file: enc(valid), wantOrg: "ORG12345", wantExp: exp},
		{name: "trailing newline", file: enc(valid) + "\n", wantOrg: "ORG12345", wantExp: exp},
		{name: "surrounding whitespace and CRLF", file: " \t" + enc(valid) + "\r\n\r\n", wantOrg: "ORG12345", wantExp: exp},
		{name: "byte order mark", file: "\ufeff" + enc(valid), wantOrg: "ORG12345", wantExp: exp},
		{name: "unpadded", file: strings.TrimRight(enc(valid+" "), "="), wantOrg: "ORG12345", wantExp: exp},
		{name: "url alphabet", file: base64.URLEncoding.EncodeToString([]byte(valid)), wantOrg: "ORG12345", wantExp: exp},
		{name: "negative offset", file: enc(`{"token":"t","expDate":"2030-11-08T15:33:22-0700","orgName":"O"}`), wantOrg: "O", wantExp: exp},
		{name: "rfc3339 offset", file: enc(`{"token":"t","expDate":"2030-11-09T00:33:22+02:00","orgName":"O"}`), wantOrg: "O", wantExp: exp},
		{name: "rfc3339 Z with fraction", file: enc(`{"token":"t","expDate":"2030-11-08T22:33:22.000Z","orgName":"O"}`), wantOrg: "O", wantExp: exp},
		{name: "extra fields ignored", file: enc(`{"token":"t","expDate":"2030-11-08T22:33:22+0000","orgName":"O","x":1}`), wantOrg: "O", wantExp: exp},
		{name: "empty org name tolerated", file: enc(`{"token":"t","expDate":"2030-11-08T22:33:22+0000","orgName":""}`), wantOrg: "", wantExp: exp},

		{name: "empty file", file: "  \n", wantErr: ErrTokenNotBase64},
		{name: "not base64", file: "this is not base64!!", wantErr: ErrTokenNotBase64},
		{name: "json not base64", file: valid, wantErr: ErrTokenNotBase64},
		{name: "not json", file: enc("hello world"), wantErr: ErrTokenNotJSON},
		{name: "truncated json", file: enc(valid[:30]), wantErr: ErrTokenNotJSON},
		{name: "json null", file: enc("null"), wantErr: ErrTokenNotJSON},
		{name: "json array", file: enc(`[1,2]`), wantErr: ErrTokenNotJSON},
		{name: "json string", file: enc(`"token"`), wantErr: ErrTokenNotJSON},
		{name: "empty object", file: enc(`{}`), wantErr: ErrTokenMissingField},
		{name: "missing token", file: enc(`{"expDate":"2030-11-08T22:33:22+0000","orgName":"O"}`), wantErr: ErrTokenMissingField},
		{name: "empty token", file: enc(`{"token":" ","expDate":"2030-11-08T22:33:22+0000","orgName":"O"}`), wantErr: ErrTokenMissingField},
		{name: "missing expDate", file: enc(`{"token":"t","orgName":"O"}`), wantErr: ErrTokenMissingField},
		{name: "missing orgName", file: enc(`{"token":"t","expDate":"2030-11-08T22:33:22+0000"}`), wantErr: ErrTokenMissingField},
		{name: "token not a string", file: enc(`{"token":12,"expDate":"2030-11-08T22:33:22+0000","orgName":"O"}`), wantErr: ErrTokenMissingField},
		{name: "bad date", file: enc(`{"token":"t","expDate":"next tuesday","orgName":"O"}`), wantErr: ErrTokenBadDate},
		{name: "date without time", file: enc(`{"token":"t","expDate":"2030-11-08","orgName":"O"}`), wantErr: ErrTokenBadDate},
		{name: "expired", file: enc(`{"token":"t","expDate":"2020-11-08T22:33:22+0000","orgName":"Old Org"}`), wantErr: ErrTokenExpiredLocally, wantOrg: "Old Org"},
		{name: "expires exactly now", file: enc(`{"token":"t","expDate":"2026-01-01T00:00:00+0000","orgName":"O"}`), wantErr: ErrTokenExpiredLocally, wantOrg: "O"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken([]byte(tt.file), now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseToken() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "apple: content token") {
				t.Errorf("error %q lacks context", err)
			}
			if tt.wantErr != nil && !errors.Is(tt.wantErr, ErrTokenExpiredLocally) {
				if tok != nil {
					t.Errorf("token returned with error %v", err)
				}
				return
			}
			if tok == nil {
				t.Fatal("no token")
			}
			if tok.OrgName != tt.wantOrg {
				t.Errorf("OrgName = %q, want %q", tok.OrgName, tt.wantOrg)
			}
			if !tt.wantExp.IsZero() && !tok.ExpiresAt.Equal(tt.wantExp) {
				t.Errorf("ExpiresAt = %v, want %v", tok.ExpiresAt, tt.wantExp)
			}
			if want := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tt.file), "\ufeff")); tok.Bearer() != want {
				t.Errorf("Bearer() = %q, want the trimmed file %q", tok.Bearer(), want)
			}
		})
	}
}

func TestParseTokenZeroNowSkipsExpiry(t *testing.T) {
	tok, err := ParseToken([]byte(makeTokenFile("x", time.Now().Add(-time.Hour), "O")), time.Time{})
	if err != nil || tok == nil {
		t.Fatalf("ParseToken(zero now) = %v, %v", tok, err)
	}
}

func TestTokenAccessors(t *testing.T) {
	tok := testToken(t)
	if tok.Inner() != testInner {
		t.Errorf("Inner() = %q", tok.Inner())
	}
	fp := tok.Fingerprint()
	if len(fp) != 12 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint() = %q, want 12 hex digits", fp)
	}
	again, _ := ParseToken([]byte(tok.Bearer()+"\n"), time.Now())
	if again.Fingerprint() != fp {
		t.Errorf("fingerprint not stable: %q vs %q", again.Fingerprint(), fp)
	}
	if tok.Expired(time.Now()) || !tok.Expired(tok.ExpiresAt) {
		t.Error("Expired() wrong")
	}
	var nilTok *Token
	if nilTok.Bearer() != "" || nilTok.Inner() != "" || nilTok.Fingerprint() != "" {
		t.Error("nil token accessors must return empty strings")
	}
}

// TestTokenRedaction prints a token every way a careless caller might and
// checks that neither the bearer nor the inner token shows.
func TestTokenRedaction(t *testing.T) {
	tok := testToken(t)
	type holder struct {
		Name string
		Tok  Token
		Ptr  *Token
		tok  Token // unexported: fmt prints it by reflection, without methods
	}
	h := holder{Name: "h", Tok: *tok, Ptr: tok, tok: *tok}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, tok), fmt.Sprintf(verb, *tok), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outputs = append(outputs, fmt.Sprint(tok), fmt.Sprintln(*tok), tok.String(), tok.GoString())
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	for _, handler := range []func(*syncBuffer) slog.Handler{
		func(b *syncBuffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *syncBuffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		buf := &syncBuffer{}
		log := slog.New(handler(buf))
		log.Info("token", "tok", tok, "value", *tok, "holder", h, slog.Any("any", tok))
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		assertNoSecret(t, out, tok)
	}
	if !strings.Contains(tok.String(), tok.Fingerprint()) || !strings.Contains(tok.String(), "Test Org") {
		t.Errorf("String() = %q, want org and fingerprint", tok.String())
	}
}

// assertNoSecret fails if s contains the token's bearer, its inner token or a
// recognisable chunk of either.
func assertNoSecret(t *testing.T, s string, tok *Token) {
	t.Helper()
	for _, secret := range []string{tok.Bearer(), tok.Inner(), tok.Bearer()[:24], tok.Bearer()[len(tok.Bearer())-24:]} {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked into %q", s)
			return
		}
	}
}

func TestParseTokenErrorsNeverQuoteTheFile(t *testing.T) {
	secret := "TOPSECRETVALUE1234567890"
	files := []string{
		secret + "!!!",
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte(`{"token":"` + secret + `","expDate":"` + secret + `","orgName":"O"}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"token":"` + secret + `"}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"token":"` + secret + `","expDate":12}`)),
	}
	for _, f := range files {
		_, err := ParseToken([]byte(f), time.Now())
		if err == nil {
			t.Fatalf("ParseToken(%q) succeeded", f)
		}
		if strings.Contains(err.Error(), secret[:12]) || strings.Contains(err.Error(), f[:12]) {
			t.Errorf("error %q quotes the file", err)
		}
	}
}

func TestTokenMarshalJSON(t *testing.T) {
	tok := testToken(t)
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"orgName": "Test Org", "fingerprint": tok.Fingerprint(), "expiresAt": tok.ExpiresAt.Format(time.RFC3339Nano)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MarshalJSON mismatch (-want +got):\n%s", diff)
	}
}
