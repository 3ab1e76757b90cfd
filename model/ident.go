package model

import (
	"strconv"
	"strings"
)

// Canonical identifiers. Every identifier that names a thing outside Orchard — a device's
// serial number, a country, an OS version — has one canonical form, and every input path (the
// GraphQL mutations, dynamic group rules, Apple's answers and notifications) brings what it is
// given to that form before storing or comparing it. Without it `abc1` and `ABC1` would be two
// devices (and an assignment to one would miss the other), `ZZ` would pass as a country, and a
// control character or markup would reach logs, the audit trail and every client that shows a
// serial number.

// MaxSerialNumberLength is the longest serial number accepted. Apple's serial numbers are 8
// (before 2010), 11 or 12 (2010–2021) and 10 (randomised, since 2021) characters long; 20
// leaves room for other hardware an MDM may report, and no more.
const MaxSerialNumberLength = 20

// CanonicalSerialNumber returns the canonical form of a serial number: surrounding spaces
// removed and upper-cased. Apple's serial numbers use upper-case letters and digits only (Apple
// compares them case-insensitively), so that is all this accepts: NUL and other control
// characters, newlines, bidi controls, inner spaces, punctuation, markup and non-ASCII letters
// are refused with INVALID_INPUT, as are an empty value and one longer than
// MaxSerialNumberLength. field is the path of the input, for the error.
func CanonicalSerialNumber(s string, field ...string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if c == "" || len(c) > MaxSerialNumberLength {
		return "", FieldError(field, "serialNumber must be 1 to %d characters", MaxSerialNumberLength)
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; (b < 'A' || b > 'Z') && (b < '0' || b > '9') {
			return "", FieldError(field, "serialNumber may hold only letters A to Z and digits (Apple's serial numbers do)")
		}
	}
	return c, nil
}

// SerialNumberKey is the form in which a serial number is looked up: the canonical form when
// there is one, else the input upper-cased (which matches no stored device, since only
// canonical serial numbers are stored, and so answers NOT_FOUND). Lookups use it so that
// `abc1` finds the device stored as `ABC1`.
func SerialNumberKey(s string) string {
	if c, err := CanonicalSerialNumber(s); err == nil {
		return c
	}
	return strings.ToUpper(strings.TrimSpace(s))
}

// CanonicalCountry returns the canonical form of a country code: an ISO 3166-1 alpha-2 code
// that is officially assigned (see countries), upper-cased. User-assigned codes (AA, QM–QZ,
// XA–XZ, ZZ), exceptionally reserved ones (EU, UK, ...) and anything else are refused with
// INVALID_INPUT: Apple's storefronts are assigned countries, and a code that names none could
// only make the cross-country rule (R11) decide on nothing.
func CanonicalCountry(s string, field ...string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if !IsCountry(c) {
		return "", FieldError(field, "country codes are assigned ISO 3166-1 alpha-2 codes such as US (got %q)", Truncate(s, 8))
	}
	return c, nil
}

// IsCountry reports whether c (upper-case) is an assigned ISO 3166-1 alpha-2 code.
func IsCountry(c string) bool {
	if len(c) != 2 {
		return false
	}
	i := strings.Index(countries, c)
	return i >= 0 && i%3 == 0
}

// countries are the 249 officially assigned ISO 3166-1 alpha-2 codes (ISO 3166 Maintenance
// Agency, 2024), each followed by a space. A new assignment is added here.
const countries = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
	"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
	"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "

// OS versions are dotted numbers: at most MaxOSVersionComponents components of at most
// MaxOSVersionDigits digits each (Apple's are like 17.4.1; no component has ever had more than
// two digits).
const (
	MaxOSVersionComponents = 4
	MaxOSVersionDigits     = 4
)

// CanonicalOSVersion returns the canonical form of an OS version: surrounding spaces removed
// and each component without leading zeros ("17.04" is "17.4"). Anything but one to
// MaxOSVersionComponents dot-separated numbers of one to MaxOSVersionDigits digits is refused
// with INVALID_INPUT; a 100-digit version is not a version.
func CanonicalOSVersion(s string, field ...string) (string, error) {
	t := strings.TrimSpace(s)
	bad := FieldError(field, "an OS version is 1 to %d numbers of at most %d digits separated by dots, such as 17.4.1", MaxOSVersionComponents, MaxOSVersionDigits)
	if t == "" || len(t) > MaxOSVersionComponents*(MaxOSVersionDigits+1) {
		return "", bad
	}
	parts := strings.Split(t, ".")
	if len(parts) > MaxOSVersionComponents {
		return "", bad
	}
	for i, p := range parts {
		if p == "" || len(p) > MaxOSVersionDigits {
			return "", bad
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return "", bad
			}
		}
		n, _ := strconv.Atoi(p) // at most four digits: no error
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, "."), nil
}
