package applesim

import (
	"strconv"
	"unicode/utf8"
)

// Hand-rolled JSON appenders for the hot path (assignment pages): a page of 1000 assignments
// is encoded into a reused buffer without reflection.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal, escaping what JSON requires.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			if r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xf])
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendField appends ,"name":"value" (or without the comma when first).
func appendField(b []byte, first bool, name, value string) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendIntField appends ,"name":n.
func appendIntField(b []byte, name string, n int) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, int64(n), 10)
}

// appendPageAndEnvelope appends the pagination fields and the envelope, closing the object.
func appendPageAndEnvelope(b []byte, p wirePage, e envelope) []byte {
	b = appendIntField(b, "currentPageIndex", p.CurrentPageIndex)
	if p.NextPageIndex != nil {
		b = appendIntField(b, "nextPageIndex", *p.NextPageIndex)
	}
	b = appendIntField(b, "size", p.Size)
	b = appendIntField(b, "totalPages", p.TotalPages)
	b = appendField(b, false, "versionId", p.VersionID)
	if e.UID != "" {
		b = appendField(b, false, "uId", e.UID)
	}
	if e.TokenExpirationDate != "" {
		b = appendField(b, false, "tokenExpirationDate", e.TokenExpirationDate)
	}
	if e.MDMInfo != nil {
		b = append(b, `,"mdmInfo":{`...)
		b = appendField(b, true, "id", e.MDMInfo.ID)
		b = appendField(b, false, "name", e.MDMInfo.Name)
		b = appendField(b, false, "metadata", e.MDMInfo.Metadata)
		b = append(b, '}')
	}
	return append(b, '}')
}
