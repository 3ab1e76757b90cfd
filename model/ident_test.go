package model

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type identCase struct {
	in, want string
	ok       bool
}

func checkIdent(t *testing.T, name string, fn func(string, ...string) (string, error), tests []identCase) {
	t.Helper()
	for _, tt := range tests {
		got, err := fn(tt.in, "input", "x")
		if tt.ok != (err == nil) {
			t.Errorf("%s(%q): error %v, want ok=%v", name, tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			e, isModel := AsError(err)
			if !isModel || e.Code != CodeInvalidInput || !cmp.Equal(e.Field, []string{"input", "x"}) {
				t.Errorf("%s(%q): error %#v, want INVALID_INPUT on input.x", name, tt.in, err)
			}
			if got != "" {
				t.Errorf("%s(%q) = %q with an error, want \"\"", name, tt.in, got)
			}
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s(%q) mismatch (-want +got):\n%s", name, tt.in, diff)
		}
	}
}

func TestCanonicalSerialNumber(t *testing.T) {
	t.Parallel()
	checkIdent(t, "CanonicalSerialNumber", CanonicalSerialNumber, []identCase{
		{in: "C02XL0GHJGH5", want: "C02XL0GHJGH5", ok: true},
		{in: "abc1", want: "ABC1", ok: true},
		{in: "  aBc1\t", want: "ABC1", ok: true},
		{in: "S", want: "S", ok: true},
		{in: strings.Repeat("A", MaxSerialNumberLength), want: strings.Repeat("A", MaxSerialNumberLength), ok: true},
		{in: strings.Repeat("A", MaxSerialNumberLength+1)},
		{in: ""},
		{in: "   "},
		{in: "ABC\x001"},
		{in: "ABC\n1"},
		{in: "ABC\r1"},
		{in: "ABC 1"},
		{in: "ABC\u202e1"}, // right-to-left override
		{in: "ABC\u200b1"}, // zero-width space
		{in: "<b>ABC</b>"},
		{in: "ABC-1"},
		{in: "ÄBC1"},
		{in: "ＡＢＣ１"}, // full-width letters are not Apple's
		{in: "ABC1'; DROP TABLE devices; --"},
	})
}

func TestSerialNumberKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"abc1": "ABC1", " ABC1 ": "ABC1", "a-b": "A-B"} {
		if got := SerialNumberKey(in); got != want {
			t.Errorf("SerialNumberKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalCountry(t *testing.T) {
	t.Parallel()
	checkIdent(t, "CanonicalCountry", CanonicalCountry, []identCase{
		{in: "US", want: "US", ok: true},
		{in: "us", want: "US", ok: true},
		{in: " gb ", want: "GB", ok: true},
		{in: "AD", want: "AD", ok: true}, // first of the table
		{in: "ZW", want: "ZW", ok: true}, // last of the table
		{in: "SS", want: "SS", ok: true},
		{in: "ZZ"}, {in: "XX"}, {in: "AA"}, {in: "QM"}, {in: "XK"},
		{in: "UK"}, {in: "EU"},
		{in: "D E"}, // would straddle two codes of the table
		{in: "E "},  // ends with the table's separator
		{in: "USA"}, {in: "U"}, {in: ""}, {in: "1A"}, {in: "U\x00"},
	})
	// Every code of the table is two letters followed by a space, in order, without repeats.
	codes := strings.Fields(countries)
	if len(codes) != 249 || len(countries) != 3*249 {
		t.Fatalf("%d codes in %d bytes, want 249 in %d", len(codes), len(countries), 3*249)
	}
	for i, c := range codes {
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || (i > 0 && codes[i-1] >= c) {
			t.Errorf("table entry %d %q out of order or malformed", i, c)
		}
	}
}

func TestCanonicalOSVersion(t *testing.T) {
	t.Parallel()
	checkIdent(t, "CanonicalOSVersion", CanonicalOSVersion, []identCase{
		{in: "17", want: "17", ok: true},
		{in: "17.4", want: "17.4", ok: true},
		{in: " 17.4.1 ", want: "17.4.1", ok: true},
		{in: "17.04", want: "17.4", ok: true},
		{in: "1.2.3.4", want: "1.2.3.4", ok: true},
		{in: "9999.0", want: "9999.0", ok: true},
		{in: "1.2.3.4.5"},
		{in: "10000"},
		{in: strings.Repeat("9", 100)},
		{in: ""}, {in: "."}, {in: "17."}, {in: ".17"}, {in: "17..4"},
		{in: "17.4b"}, {in: "-1"}, {in: "+17"}, {in: "17 .4"}, {in: "١٧"}, // Arabic-Indic digits
	})
}
