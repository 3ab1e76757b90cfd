package apple

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// samplePage renders an assignment page as Apple would: n records, three in
// four devices, grouped by app.
func samplePage(n int) []byte {
	type a struct {
		AdamID       string `json:"adamId"`
		PricingParam string `json:"pricingParam"`
		SerialNumber string `json:"serialNumber,omitempty"`
		ClientUserID string `json:"clientUserId,omitempty"`
	}
	as := make([]a, 0, n)
	for i := range n {
		x := a{AdamID: fmt.Sprint(400000000 + i/50), PricingParam: "STDQ"}
		if i%4 != 0 {
			x.SerialNumber = fmt.Sprintf("SIM%09d", i)
		} else {
			x.ClientUserID = fmt.Sprintf("user-%d", i)
		}
		as = append(as, x)
	}
	b, _ := json.Marshal(map[string]any{"assignments": as, "currentPageIndex": 4, "nextPageIndex": 5, "size": n,
		"totalPages": 100, "versionId": "abc123", "uId": "2049025000431439", "tokenExpirationDate": "2030-11-08T22:33:22+0000"})
	return b
}

// BenchmarkDecodeAssignmentsPage measures the client's decoding of one
// 1000-assignment page alone: the fast path and the encoding/json reference.
func BenchmarkDecodeAssignmentsPage(b *testing.B) {
	page := samplePage(1000)
	for _, bc := range []struct {
		name string
		dec  func([]byte) error
	}{
		{"fast", func(p []byte) error { _, _, err := decodeAssignmentsPage(p); return err }},
		{"encoding-json", func(p []byte) error { _, err := decodeAssignmentsPageStd(p); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.dec(page); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "assignments/s")
		})
	}
}

func TestFastDecoderMatchesEncodingJSON(t *testing.T) {
	page := samplePage(1000)
	fast, ok := fastDecodeAssignments(page)
	if !ok {
		t.Fatal("fast path refused a plain page")
	}
	std, err := decodeAssignmentsPageStd(page)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Error("fast decoder differs from encoding/json")
	}
}
