package apple

import (
	"encoding/json"
	"unicode/utf8"
)

// Assignment pages are the bulk of a sync (a large library has hundreds of
// thousands of assignments, 1000 per page), so they get a dedicated decoder.
// It scans the document once, allocates one slice per page and one string per
// distinct value (adamId, pricingParam and userStatus repeat and are shared
// within a page), and decodes the few header fields with encoding/json.
//
// Correctness rests on encoding/json: the fast path accepts only documents it
// fully understands — strict JSON syntax, exact key names, string fields as
// plain strings — and hands anything else (escapes it cannot take verbatim,
// case-variant keys, unexpected types, invalid UTF-8, very deep nesting) to
// encoding/json, whose result or error is then authoritative. A fuzz test
// checks that both paths agree on every input the fast path accepts.

type wireAssignmentsPage struct {
	wireHeader
	wirePageInfo
	Assignments []Assignment `json:"assignments"`
}

// decodeAssignmentsPage decodes one GET /assignments body.
func decodeAssignmentsPage(b []byte) (*AssignmentsPage, *wireHeader, error) {
	w, ok := fastDecodeAssignments(b)
	if !ok {
		w = new(wireAssignmentsPage)
		if err := json.Unmarshal(b, w); err != nil {
			return nil, nil, err
		}
	}
	if err := checkPageInfo(&w.wirePageInfo); err != nil {
		return nil, nil, err
	}
	canonicalSerials(w.Assignments)
	return &AssignmentsPage{Envelope: w.envelope(), PageInfo: w.info(), Assignments: w.Assignments}, &w.wireHeader, nil
}

// decodeAssignmentsPageStd is the encoding/json reference (tests, fuzzing).
func decodeAssignmentsPageStd(b []byte) (*wireAssignmentsPage, error) {
	w := new(wireAssignmentsPage)
	if err := json.Unmarshal(b, w); err != nil {
		return nil, err
	}
	return w, nil
}

// scanner walks a JSON document. Every method reports false when the input is
// not something the fast path is sure about.
type scanner struct {
	b []byte
	i int
}

const maxFastDepth = 64

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// rawString scans a string and returns its content without quotes; escaped
// is true when it contains backslash escapes (the caller must then decode it).
func (s *scanner) rawString() (content []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			content = s.b[start:j]
			if !ascii && !utf8.Valid(content) {
				return nil, false, false // encoding/json would substitute U+FFFD; let it
			}
			return content, escaped, true
		case c == '\\':
			escaped = true
			j++ // skip the escaped byte; validity is checked by encoding/json later
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false, false
}

// str scans a string value and returns it as a Go string. Values equal to
// *last (the same field of the previous record: assignment pages come grouped
// by app) reuse it instead of allocating; last may be nil.
func (s *scanner) str(last *string) (string, bool) {
	start := s.i
	raw, escaped, ok := s.rawString()
	if !ok {
		return "", false
	}
	if escaped {
		var v string
		if json.Unmarshal(s.b[start:s.i], &v) != nil {
			return "", false
		}
		return v, true
	}
	if last != nil {
		if *last == string(raw) { // no allocation for the comparison
			return *last, true
		}
		*last = string(raw)
		return *last, true
	}
	return string(raw), true
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// number scans a JSON number (strict grammar).
func (s *scanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	switch {
	case s.peek() == '0':
		s.i++
	case s.peek() >= '1' && s.peek() <= '9':
		digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// skip scans any value, validating it.
func (s *scanner) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.rawString()
		return ok
	case c == '{':
		s.i++
		s.ws()
		if s.peek() == '}' {
			s.i++
			return true
		}
		for {
			s.ws()
			if _, _, ok := s.rawString(); !ok {
				return false
			}
			s.ws()
			if s.peek() != ':' {
				return false
			}
			s.i++
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// rawValue scans a value and returns its bytes.
func (s *scanner) rawValue() ([]byte, bool) {
	s.ws()
	start := s.i
	if !s.skip(0) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// fastDecodeAssignments is the fast path; ok false means "use encoding/json".
func fastDecodeAssignments(b []byte) (*wireAssignmentsPage, bool) {
	s := &scanner{b: b}
	w := new(wireAssignmentsPage)
	s.ws()
	if s.peek() != '{' {
		return nil, false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return w, s.end()
	}
	for {
		s.ws()
		key, escaped, ok := s.rawString()
		if !ok || escaped {
			return nil, false
		}
		s.ws()
		if s.peek() != ':' {
			return nil, false
		}
		s.i++
		s.ws()
		var target any
		switch string(key) {
		case "assignments":
			if !s.assignments(w) {
				return nil, false
			}
		case "errorNumber":
			target = &w.ErrorNumber
		case "errorMessage":
			target = &w.ErrorMessage
		case "errorInfo":
			target = &w.ErrorInfo
		case "uId":
			target = &w.UID
		case "tokenExpirationDate":
			target = &w.TokenExpirationDate
		case "mdmInfo":
			target = &w.MDMInfo
		case "currentPageIndex":
			target = &w.CurrentPageIndex
		case "nextPageIndex":
			target = &w.NextPageIndex
		case "size":
			target = &w.Size
		case "totalPages":
			target = &w.TotalPages
		case "versionId":
			target = &w.VersionID
		default:
			if foldsToKnown(key, topLevelKeys) {
				return nil, false // encoding/json matches keys case-insensitively
			}
			if !s.skip(0) {
				return nil, false
			}
		}
		if target != nil {
			raw, ok := s.rawValue()
			if !ok || json.Unmarshal(raw, target) != nil {
				return nil, false
			}
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return w, s.end()
		default:
			return nil, false
		}
	}
}

var topLevelKeys = []string{"assignments", "errorNumber", "errorMessage", "errorInfo", "uId", "tokenExpirationDate",
	"mdmInfo", "currentPageIndex", "nextPageIndex", "size", "totalPages", "versionId"}

var assignmentKeys = []string{"adamId", "pricingParam", "clientUserId", "serialNumber", "idHash", "userStatus", "removed"}

func foldsToKnown(key []byte, known []string) bool {
	for _, k := range known {
		if len(k) == len(key) && equalFoldASCII(k, key) {
			return true
		}
	}
	// Non-ASCII keys could fold to ASCII ones under Unicode rules (e.g. the
	// Kelvin sign); leave those to encoding/json.
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func equalFoldASCII(a string, b []byte) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// end accepts only trailing whitespace.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// assignments scans the assignments array into w.Assignments.
func (s *scanner) assignments(w *wireAssignmentsPage) bool {
	if s.literal("null") {
		w.Assignments = nil
		return true
	}
	if s.peek() != '[' {
		return false
	}
	s.i++
	list := make([]Assignment, 0, min(len(s.b)/64+1, 1<<16))
	var lastAdam, lastPricing, lastStatus string
	s.ws()
	if s.peek() == ']' {
		s.i++
		w.Assignments = list
		return true
	}
	for {
		s.ws()
		if s.peek() != '{' {
			return false
		}
		s.i++
		var a Assignment
		s.ws()
		if s.peek() == '}' {
			s.i++
		} else {
			for {
				s.ws()
				key, escaped, ok := s.rawString()
				if !ok || escaped {
					return false
				}
				s.ws()
				if s.peek() != ':' {
					return false
				}
				s.i++
				s.ws()
				var dst *string
				var last *string
				switch string(key) {
				case "adamId":
					dst, last = &a.AdamID, &lastAdam
				case "pricingParam":
					dst, last = &a.PricingParam, &lastPricing
				case "clientUserId":
					dst = &a.ClientUserID
				case "serialNumber":
					dst = &a.SerialNumber
				case "idHash":
					dst = &a.IDHash
				case "userStatus":
					dst, last = &a.UserStatus, &lastStatus
				case "removed":
					switch {
					case s.literal("true"):
						a.Removed = true
					case s.literal("false"):
						a.Removed = false
					case s.literal("null"):
					default:
						return false
					}
				default:
					if foldsToKnown(key, assignmentKeys) || !s.skip(0) {
						return false
					}
				}
				if dst != nil {
					switch {
					case s.peek() == '"':
						v, ok := s.str(last)
						if !ok {
							return false
						}
						*dst = v
					case s.literal("null"):
					default:
						return false
					}
				}
				s.ws()
				if s.peek() == ',' {
					s.i++
					continue
				}
				if s.peek() == '}' {
					s.i++
					break
				}
				return false
			}
		}
		list = append(list, a)
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			w.Assignments = list
			return true
		default:
			return false
		}
	}
}
