package apple

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Issue 11 class 1: a countDelta is applied only when it is a plausible integer; anything
// else (overflowing, fractional, a string, null, missing, zero, beyond MaxCountDelta) is
// decoded (Apple would only deliver it again) but reported implausible.
func TestAssetCountPlausible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delta     string
		wantDelta int
		plausible bool
	}{
		{"5", 5, true},
		{"-3", -3, true},
		{fmt.Sprint(MaxCountDelta), MaxCountDelta, true},
		{fmt.Sprint(-MaxCountDelta), -MaxCountDelta, true},
		{fmt.Sprint(MaxCountDelta + 1), MaxCountDelta + 1, false},
		{"1000000", 1000000, false},
		{"0", 0, false},
		{"9223372036854775807", 0, false},
		{"-9223372036854775807", 0, false},
		{"99999999999999999999999", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"null", 0, false},
		{"", 0, false}, // no countDelta at all
	}
	for _, tt := range tests {
		field := ""
		if tt.delta != "" {
			field = `,"countDelta":` + tt.delta
		}
		n, err := ParseNotification([]byte(`{"notificationId":"n","notificationType":"ASSET_COUNT","notification":{"adamId":"1","pricingParam":"STDQ"` + field + `}}`))
		if err != nil {
			t.Errorf("countDelta %s: %v", tt.delta, err)
			continue
		}
		got := struct {
			Delta     int
			Plausible bool
		}{n.AssetCount.CountDelta, n.AssetCount.Plausible()}
		want := struct {
			Delta     int
			Plausible bool
		}{tt.wantDelta, tt.plausible}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("countDelta %s mismatch (-want +got):\n%s", tt.delta, diff)
		}
	}
}

// Issue 11 class 1: listings whose numbers are out of bounds are refused at decoding with
// ErrImplausible; the bounds themselves pass.
func TestListingBounds(t *testing.T) {
	t.Parallel()
	asset := func(total, assigned, available, retired int64) string {
		return fmt.Sprintf(`{"assets":[{"adamId":"1","pricingParam":"STDQ","totalCount":%d,"assignedCount":%d,"availableCount":%d,"retiredCount":%d}],
			"currentPageIndex":0,"size":1,"totalPages":1,"versionId":"v"}`, total, assigned, available, retired)
	}
	page := func(cur, next, size, total int64) string {
		return fmt.Sprintf(`{"currentPageIndex":%d,"nextPageIndex":%d,"size":%d,"totalPages":%d,"versionId":"v"}`, cur, next, size, total)
	}
	tests := []struct {
		name, body  string
		decode      func([]byte) error
		implausible bool
	}{
		{"assets within bounds", asset(MaxLicenseCount, 1, MaxLicenseCount-1, 0), assetsDecode, false},
		{"total beyond MaxLicenseCount", asset(MaxLicenseCount+1, 0, 0, 0), assetsDecode, true},
		{"total of MaxInt64", asset(1<<63-1, 0, 0, 0), assetsDecode, true},
		{"negative assigned", asset(10, -1, 11, 0), assetsDecode, true},
		{"negative available", asset(10, 0, -5, 0), assetsDecode, true},
		{"retired beyond", asset(10, 0, 10, 1<<40), assetsDecode, true},
		{"page within bounds", page(0, MaxPageIndex, MaxPageSize, MaxPageIndex+1), usersDecode, false},
		{"next page beyond", page(0, MaxPageIndex+1, 1, 2), usersDecode, true},
		{"negative next page", page(0, -1, 1, 2), usersDecode, true},
		{"current page beyond", page(MaxPageIndex+1, MaxPageIndex+2, 1, 2), assignmentsDecode, true},
		{"size beyond", page(0, 1, MaxPageSize+1, 2), assignmentsDecode, true},
		{"total pages negative", page(0, 1, 1, -1), assignmentsDecode, true},
	}
	for _, tt := range tests {
		err := tt.decode([]byte(tt.body))
		if got := errors.Is(err, ErrImplausible); got != tt.implausible || (!tt.implausible && err != nil) {
			t.Errorf("%s: error %v, want implausible=%v", tt.name, err, tt.implausible)
		}
	}
}

func assetsDecode(b []byte) error      { _, _, err := decodeAssetsPage(b); return err }
func usersDecode(b []byte) error       { _, _, err := decodeUsersPage(b); return err }
func assignmentsDecode(b []byte) error { _, _, err := decodeAssignmentsPage(b); return err }

// Issue 11 class 7: serial numbers in Apple's listings and notifications take Orchard's
// canonical form, so that they match the devices Orchard stores.
func TestAppleSerialsCanonical(t *testing.T) {
	t.Parallel()
	p, _, err := decodeAssignmentsPage([]byte(`{"assignments":[{"adamId":"1","pricingParam":"STDQ","serialNumber":"abc1"},
		{"adamId":"1","pricingParam":"STDQ","serialNumber":"DEF2"},{"adamId":"1","pricingParam":"STDQ","clientUserId":"u-1"}],
		"currentPageIndex":0,"size":3,"totalPages":1,"versionId":"v"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.Assignments {
		got = append(got, a.SerialNumber+"|"+a.ClientUserID)
	}
	n, err := ParseNotification([]byte(`{"notificationId":"n","notificationType":"ASSET_MANAGEMENT","notification":{"type":"ASSOCIATE","result":"SUCCESS",
		"assignments":[{"adamId":"1","pricingParam":"STDQ","serialNumber":" ghi3 "}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, n.AssetManagement.Assignments[0].SerialNumber)
	if diff := cmp.Diff([]string{"ABC1|", "DEF2|", "|u-1", "GHI3"}, got); diff != "" {
		t.Errorf("serial numbers mismatch (-want +got):\n%s", diff)
	}
}
