package applesim

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
)

// Data sets with a versionId (doc/apple-api.md §7). Each token has one write counter; a data
// set's version is the counter value of its last change, so versions only grow.
const (
	setAssets      = 'a'
	setAssignments = 'n'
	setUsers       = 'u'
)

// renderVersion renders a version as an opaque versionId. The check suffix ties it to its
// token and data set, so a versionId from another token or set is rejected with 9721, and
// clients cannot usefully do arithmetic on it.
func renderVersion(uid string, set byte, v uint64) string {
	return fmt.Sprintf("%c%s-%04x", set, strconv.FormatUint(v, 36), versionCheck(uid, set, v))
}

func versionCheck(uid string, set byte, v uint64) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%c/%d", uid, set, v)
	return h.Sum32() & 0xffff
}

// parseVersion parses a versionId rendered by renderVersion for the same token and set.
func parseVersion(uid string, set byte, s string) (uint64, bool) {
	if len(s) < 3 || s[0] != set {
		return 0, false
	}
	num, check, ok := strings.Cut(s[1:], "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 36, 64)
	if err != nil {
		return 0, false
	}
	c, err := strconv.ParseUint(check, 16, 32)
	if err != nil || uint32(c) != versionCheck(uid, set, v) {
		return 0, false
	}
	return v, true
}

// pageSpan computes the records [lo, hi) of page idx of n records and the page fields. An
// empty listing has one (empty) page, so page 0 is always valid. ok is false for an
// out-of-range index (9650).
func pageSpan(n, size, idx int) (lo, hi int, p wirePage, ok bool) {
	total := (n + size - 1) / size
	if total == 0 {
		total = 1
	}
	if idx < 0 || idx >= total {
		return 0, 0, p, false
	}
	lo = idx * size
	hi = min(lo+size, n)
	p = wirePage{CurrentPageIndex: idx, Size: hi - lo, TotalPages: total}
	if idx+1 < total {
		next := idx + 1
		p.NextPageIndex = &next
	}
	return lo, hi, p, true
}

// queryPageIndex reads pageIndex (default 0); a malformed value is reported like an
// out-of-range one.
func queryPageIndex(q url.Values) (int, bool) {
	v := q.Get("pageIndex")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// queryBool reads an optional boolean parameter; set is false when absent, ok false when
// malformed.
func queryBool(q url.Values, name string) (val, set, ok bool) {
	v := q.Get(name)
	if v == "" {
		return false, false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, true, false
	}
	return b, true, true
}

// queryInt reads an optional integer parameter.
func queryInt(q url.Values, name string) (val int, set, ok bool) {
	v := q.Get(name)
	if v == "" {
		return 0, false, true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, true, false
	}
	return n, true, true
}
