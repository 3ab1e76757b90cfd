package apple

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Fuzz targets: no input may make a decoder panic. Their seed corpora (the
// f.Add calls and testdata/*.json) run as ordinary tests with `go test`; run
// one with e.g. `go test -run=^$ -fuzz=FuzzDecodeAssignmentsPage ./apple/`.

// addSeeds adds every testdata/*.json file plus malformed variants.
func addSeeds(f *testing.F, extra ...string) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range append(extra,
		``, `null`, `{}`, `[]`, `"x"`, `0`, `{"errorNumber":9622,"errorMessage":"Invalid authentication token"}`,
		`{"errorNumber":"9646"}`, `{"errorNumber":1e99}`, `{"errorNumber":null}`, `{"mdmInfo":null}`, `{"mdmInfo":{"id":7}}`,
		`{"tokenExpirationDate":"garbage"}`, `{"nextPageIndex":-1}`, `{"nextPageIndex":null}`, "\xff\xfe",
		`{"a":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}`,
	) {
		f.Add([]byte(s))
	}
}

func FuzzParseToken(f *testing.F) {
	exp := time.Date(2030, 11, 8, 22, 33, 22, 0, time.UTC)
	f.Add([]byte(makeTokenFile("inner-token-value", exp, "ORG")))
	f.Add([]byte(makeTokenFile("inner-token-value", exp, "ORG") + "\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte(`{"token":"t","expDate":"2030-11-08T22:33:22+02:00","orgName":"O"}`))))
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte(`{"token":"t","expDate":"2020-11-08T22:33:22+0000","orgName":"O"}`))))
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte(`{"token":1}`))))
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte(`null`))))
	f.Add([]byte("not base64 at all"))
	f.Add([]byte(""))
	f.Add([]byte("\ufeff  \n"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseToken(data, now)
		if err != nil && tok == nil {
			return
		}
		bearer := tok.Bearer()
		if bearer == "" {
			t.Fatal("parsed token without bearer")
		}
		if len(bearer) >= 24 {
			for _, s := range []string{tok.String(), sprintAll(tok), sprintAll(*tok)} {
				if strings.Contains(s, bearer) {
					t.Fatalf("bearer printed: %s", s)
				}
			}
		}
	})
}

func FuzzDecodeServiceConfig(f *testing.F) {
	addSeeds(f, `{"limits":{"maxAssets":"x","maxUsers":1e300,"maxRequestPerSecond":-3}}`, `{"urls":{"a":1}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, _, err := decodeServiceConfig(data)
		if err == nil && (sc.Limits.MaxAssets <= 0 || sc.Limits.MaxRequestPerSecond <= 0) {
			t.Fatalf("limits not usable: %+v", sc.Limits)
		}
	})
}

func FuzzDecodeClientConfig(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cc, _, err := decodeClientConfig(data)
		if err == nil {
			_ = cc.String()
		}
	})
}

func FuzzDecodeAssetsPage(f *testing.F) {
	addSeeds(f, `{"assets":[null,{"totalCount":2147483647}],"unlimitedAssets":[{}]}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := decodeAssetsPage(data)
		if err == nil {
			for _, a := range p.UnlimitedAssets {
				if !a.IsUnlimited() {
					t.Fatal("unlimited asset not flagged")
				}
			}
		}
	})
}

// FuzzDecodeAssignmentsPage also checks the fast decoder against
// encoding/json: whatever the fast path accepts, encoding/json must accept
// and decode identically.
func FuzzDecodeAssignmentsPage(f *testing.F) {
	addSeeds(f,
		`{"assignments":[{"adamId":"1","pricingParam":"STDQ","serialNumber":"S\u00e9\n"}]}`,
		`{"assignments":[{"AdamId":"1"}]}`,
		`{"Assignments":[]}`,
		`{"assignments":[{"adamId":"1","adamId":"2","removed":true,"removed":null}],"assignments":null}`,
		`{"assignments":[{"adamId":"1","x":{"y":[1,2,{"z":null}]},"removed":false}],"size":2,"versionId":"v"}  `,
		`{"assignments":[{"adamId":1}]}`,
		`{"assignments":[null]}`,
		`{"assignments":[{"adamId":"\ud800"}]}`,
		`{"assignments":[{"adamId":"ok"}]} x`,
		`{"mdmInfo":{"id":"a"},"mdmInfo":{"name":"b"},"errorInfo":{"assets":[{"adamId":"1"}]}}`,
		`{"assignments":[{"adamId":"1","pricingParam":"STDQ","clientUserId":"c"},{"adamId":"1","pricingParam":"STDQ","clientUserId":"d"}]}`,
		`{"size":-0.0e+1,"currentPageIndex":1.5}`,
		`{"K":1}`, "{\"\u212a\":1}",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := decodeAssignmentsPage(data)
		std, stdErr := decodeAssignmentsPageStd(data)
		boundsErr := stdErr
		if stdErr == nil {
			boundsErr = checkPageInfo(&std.wirePageInfo) // decodeAssignmentsPage checks bounds too
		}
		if (err == nil) != (boundsErr == nil) {
			t.Fatalf("decodeAssignmentsPage err = %v, encoding/json err = %v", err, boundsErr)
		}
		if err != nil {
			return
		}
		canon := slices.Clone(std.Assignments) // and canonicalises serial numbers
		canonicalSerials(canon)
		if !reflect.DeepEqual(p.Assignments, canon) {
			t.Fatalf("assignments differ:\nfast %+v\nstd  %+v", p.Assignments, std.Assignments)
		}
		if fast, ok := fastDecodeAssignments(data); ok && !reflect.DeepEqual(fast, std) {
			t.Fatalf("fast path differs from encoding/json:\nfast %+v\nstd  %+v", fast, std)
		}
	})
}

func FuzzDecodeUsersPage(f *testing.F) {
	addSeeds(f, `{"users":[{"clientUserId":7}]}`)
	f.Fuzz(func(t *testing.T, data []byte) { _, _, _ = decodeUsersPage(data) })
}

func FuzzDecodeEventResponse(f *testing.F) {
	addSeeds(f, `{"eventId":"e"}`, `{"eventId":""}`, `{"eventId":7}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, hdr, err := decodeEventResponse(data)
		if err == nil && ev.EventID == "" && hdr.ErrorNumber == 0 {
			t.Fatal("success without eventId")
		}
	})
}

func FuzzDecodeEventStatus(f *testing.F) {
	addSeeds(f, `{"failures":[{"errorNumber":"9709","errorInfo":null}]}`, `{"failures":[null]}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := decodeEventStatus(data)
		if err == nil {
			for _, fl := range st.Failures {
				_ = fl.Err().Error()
			}
		}
	})
}

func FuzzDecodeErrorResponse(f *testing.F) {
	addSeeds(f, `<html>503</html>`, `{"errorNumber":9621,"errorMessage":"x","errorInfo":{"clientUserIds":[1]}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		if h := decodeErrorBody(data); h != nil {
			e := &Error{Number: int(h.ErrorNumber), Message: h.ErrorMessage, Info: h.ErrorInfo}
			_ = e.Error()
			_ = h.envelope()
		}
	})
}

func FuzzDecodeLookup(f *testing.F) {
	addSeeds(f, `{"results":[{"trackId":1,"supportedDevices":["iPhone"]}]}`, `{"results":{"1":{"artwork":null,"offers":[]}}}`,
		`{"results":{"1":null}}`, `{"results":"x"}`)
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = decodeLookup(data) })
}

func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{
		`{"notificationId":"n","notificationType":"TEST_NOTIFICATION","notification":{}}`,
		`{"notificationId":"n","notificationType":"ASSET_COUNT","uId":"u","notification":{"adamId":"408709785","pricingParam":"STDQ","countDelta":-12}}`,
		`{"notificationId":"n","notificationType":"ASSET_MANAGEMENT","notification":{"type":"ASSOCIATE","result":"FAILURE","eventId":"e","assignments":[{"adamId":"1","serialNumber":"s"}],"error":{"errorNumber":9709,"errorMessage":"m"}}}`,
		`{"notificationId":"n","notificationType":"USER_MANAGEMENT","notification":{"type":"CREATE","result":"SUCCESS","eventId":"e","users":[{"clientUserId":"c"}]}}`,
		`{"notificationId":"n","notificationType":"USER_ASSOCIATED","notification":{"associatedUsers":[{"clientUserId":"c","status":"Associated"}]}}`,
		`{"notificationId":"n","notificationType":"UNLIMITED_ASSET","notification":{"whatever":[1,2]}}`,
		`{"notificationId":7,"notificationType":"ASSET_COUNT","notification":null}`,
		`{"notificationId":"n","notificationType":"ASSET_MANAGEMENT","notification":{"error":"x"}}`,
		``, `{}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNotification(data)
		if err == nil && (n.NotificationID == "" || n.NotificationType == "") {
			t.Fatal("notification without id or type accepted")
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "Wednesday, 21-Oct-15 07:28:00 GMT",
		"Wed Oct 21 07:28:00 2015", "soon", "", "99999999999999999999", " 5 "} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now, time.Hour)
		if d < 0 || d > time.Hour || (!ok && d != 0) {
			t.Fatalf("parseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}
