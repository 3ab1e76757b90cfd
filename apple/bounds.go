package apple

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds on the numbers Apple sends. Whatever Apple (or someone holding an account's
// notification secret) sends must never make stored data unreadable or wrong: a count beyond
// what a column holds, a negative count, or a page index that skips far ahead is refused at
// decoding (an answer is then a *DecodeError wrapping ErrImplausible, the pass fails with a
// coded message and runs again later), and a notification's implausible count change is not
// applied but answered with a full pass of the account, whose listing says what Apple holds.
const (
	// MaxLicenseCount bounds every license count of an asset (total, assigned, available,
	// retired). It is UnlimitedCount, the totalCount Apple reports for free assets, and far
	// beyond any purchase (Apple sells volumes of at most a few hundred thousand licenses).
	MaxLicenseCount = UnlimitedCount
	// MaxCountDelta bounds an ASSET_COUNT notification's countDelta: more licenses bought or
	// refunded at once than this is implausible (the largest volume purchases are in the tens
	// of thousands), and a full pass reads the counts instead of applying the change.
	MaxCountDelta = 100_000
	// MaxPageIndex bounds page indexes and page counts of a listing: a million pages of a
	// thousand records each is far beyond any library.
	MaxPageIndex = 1_000_000
	// MaxPageSize bounds the records a page says it holds (Apple's pages hold 1,000 at most).
	MaxPageSize = 100_000
)

// MaxNotificationIDLength bounds a notification's notificationId (Apple's are UUIDs, 36
// characters; Orchard stores them in a VARCHAR(128) to deduplicate deliveries).
const MaxNotificationIDLength = 128

// printableASCII reports whether s holds only printable ASCII: no control characters (a
// newline forges a log line) and nothing beyond ASCII (bidi controls reorder what a log shows).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ErrImplausible is wrapped by decoding errors of answers whose numbers are out of bounds.
var ErrImplausible = errors.New("apple: number out of bounds")

// checkPageInfo checks a page's pagination numbers.
func checkPageInfo(w *wirePageInfo) error {
	switch {
	case w.CurrentPageIndex < 0 || w.CurrentPageIndex > MaxPageIndex:
		return fmt.Errorf("%w: currentPageIndex %d", ErrImplausible, w.CurrentPageIndex)
	case w.NextPageIndex != nil && (*w.NextPageIndex < 0 || *w.NextPageIndex > MaxPageIndex):
		return fmt.Errorf("%w: nextPageIndex %d", ErrImplausible, *w.NextPageIndex)
	case w.TotalPages < 0 || w.TotalPages > MaxPageIndex+1:
		return fmt.Errorf("%w: totalPages %d", ErrImplausible, w.TotalPages)
	case w.Size < 0 || w.Size > MaxPageSize:
		return fmt.Errorf("%w: size %d", ErrImplausible, w.Size)
	}
	return nil
}

// checkAssets checks the license counts of listed assets.
func checkAssets(assets []Asset) error {
	for _, a := range assets {
		for _, n := range [...]struct {
			name string
			v    int
		}{{"totalCount", a.TotalCount}, {"assignedCount", a.AssignedCount}, {"availableCount", a.AvailableCount}, {"retiredCount", a.RetiredCount}} {
			if n.v < 0 || n.v > MaxLicenseCount {
				return fmt.Errorf("%w: asset %s %s %d", ErrImplausible, truncateID(a.AdamID), n.name, n.v)
			}
		}
	}
	return nil
}

// Plausible reports whether the notification's count change may be applied as it is: neither
// zero (a change of nothing is no purchase) nor beyond MaxCountDelta either way, and decoded
// without overflow. An implausible one is answered with a full pass.
func (c *AssetCountNotification) Plausible() bool {
	return !c.Invalid && c.CountDelta != 0 && c.CountDelta >= -MaxCountDelta && c.CountDelta <= MaxCountDelta
}

// canonicalSerials brings the serial numbers of Apple's assignments to Orchard's canonical
// form (model.CanonicalSerialNumber: trimmed and upper-cased; Apple compares them without
// regard to case), so that an assignment Apple lists matches the device Orchard stores. It
// allocates only for a serial number that is not canonical already.
func canonicalSerials(as []Assignment) {
	for i := range as {
		s := as[i].SerialNumber
		if s == "" {
			continue
		}
		for j := 0; j < len(s); j++ {
			if b := s[j]; b >= 'a' && b <= 'z' || b == ' ' || b == '\t' {
				as[i].SerialNumber = strings.ToUpper(strings.TrimSpace(s))
				break
			}
		}
	}
}

// truncateID shortens an identifier quoted in an error.
func truncateID(s string) string {
	if len(s) > 32 {
		return strings.ToValidUTF8(s[:32], "") + "…"
	}
	return s
}
