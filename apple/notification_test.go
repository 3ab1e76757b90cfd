package apple

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseNotification(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *Notification
	}{
		{"test", `{"notificationId":"n1","notificationType":"TEST_NOTIFICATION","uId":"u","notification":{}}`,
			&Notification{NotificationID: "n1", NotificationType: NotificationTest, UID: "u", Test: true}},
		{"asset count", `{"notificationId":"n2","notificationType":"ASSET_COUNT","uId":"u","notification":{"adamId":"408709785","pricingParam":"STDQ","countDelta":-12}}`,
			&Notification{NotificationID: "n2", NotificationType: NotificationAssetCount, UID: "u",
				AssetCount: &AssetCountNotification{AdamID: "408709785", PricingParam: "STDQ", CountDelta: -12}}},
		{"asset count numeric adamId", `{"notificationId":"n2b","notificationType":"ASSET_COUNT","notification":{"adamId":408709785,"countDelta":3}}`,
			&Notification{NotificationID: "n2b", NotificationType: NotificationAssetCount,
				AssetCount: &AssetCountNotification{AdamID: "408709785", CountDelta: 3}}},
		{"asset management failure", `{"notificationId":"n3","notificationType":"ASSET_MANAGEMENT","uId":"u","notification":{"type":"ASSOCIATE","result":"FAILURE","eventId":"e1",
			"assignments":[{"adamId":"1","pricingParam":"STDQ","serialNumber":"S1"},{"adamId":"1","pricingParam":"STDQ","clientUserId":"c1"}],
			"error":{"errorNumber":9709,"errorMessage":"There aren't enough assets available"}}}`,
			&Notification{NotificationID: "n3", NotificationType: NotificationAssetManagement, UID: "u",
				AssetManagement: &AssetManagementNotification{Type: EventTypeAssociate, Result: ResultFailure, EventID: "e1",
					Assignments: []Assignment{{AdamID: "1", PricingParam: "STDQ", SerialNumber: "S1"}, {AdamID: "1", PricingParam: "STDQ", ClientUserID: "c1"}},
					Error:       &Error{Number: 9709, Message: "There aren't enough assets available"}}}},
		{"asset management revoke success", `{"notificationId":"n4","notificationType":"ASSET_MANAGEMENT","notification":{"type":"REVOKE","result":"SUCCESS","eventId":"e2","assignments":[]}}`,
			&Notification{NotificationID: "n4", NotificationType: NotificationAssetManagement,
				AssetManagement: &AssetManagementNotification{Type: EventTypeRevoke, Result: ResultSuccess, EventID: "e2", Assignments: []Assignment{}}}},
		{"user management", `{"notificationId":"n5","notificationType":"USER_MANAGEMENT","notification":{"type":"CREATE","result":"FAILURE","eventId":"e3",
			"users":[{"clientUserId":"c1","status":"Registered","inviteCode":"ic"}],"error":{"errorNumber":9716,"errorMessage":"exists","errorInfo":{"clientUserIds":["c1"]}}}}`,
			&Notification{NotificationID: "n5", NotificationType: NotificationUserManagement,
				UserManagement: &UserManagementNotification{Type: EventTypeCreate, Result: ResultFailure, EventID: "e3",
					Users: []User{{ClientUserID: "c1", Status: UserRegistered, InviteCode: "ic"}},
					Error: &Error{Number: 9716, Message: "exists", Info: &ErrorInfo{ClientUserIDs: []string{"c1"}}}}}},
		{"user associated", `{"notificationId":"n6","notificationType":"USER_ASSOCIATED","notification":{"associatedUsers":[{"clientUserId":"c1","idHash":"h","status":"Associated"}]}}`,
			&Notification{NotificationID: "n6", NotificationType: NotificationUserAssociated,
				UserAssociated: &UserAssociatedNotification{AssociatedUsers: []User{{ClientUserID: "c1", IDHash: "h", Status: UserAssociated}}}}},
		{"unknown type kept raw", `{"notificationId":"n7","notificationType":"SUBSCRIPTION_COUNT","notification":{"adamId":123,"countDelta":1}}`,
			&Notification{NotificationID: "n7", NotificationType: "SUBSCRIPTION_COUNT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNotification([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Notification{}, "Payload")); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if len(got.Payload) == 0 {
				t.Error("raw payload not kept")
			}
		})
	}
	am, _ := ParseNotification([]byte(tests[3].body))
	if !errors.Is(am.AssetManagement.Error, ErrNotEnoughLicenses) {
		t.Error("notification error kind lost")
	}
}

func TestParseNotificationRejects(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"notificationType":"TEST_NOTIFICATION"}`, `{"notificationId":"n"}`,
		`{"notificationId":"n","notificationType":"ASSET_COUNT","notification":{"countDelta":"many"}}`,
		`{"notificationId":"n","notificationType":"ASSET_MANAGEMENT","notification":{"assignments":{}}}`,
		`{"notificationId":"n","notificationType":"USER_MANAGEMENT","notification":[]}`,
		`{"notificationId":"n","notificationType":"USER_ASSOCIATED","notification":{"associatedUsers":"x"}}`,
	} {
		if _, err := ParseNotification([]byte(body)); !errors.Is(err, ErrNotificationMalformed) {
			t.Errorf("ParseNotification(%q) err = %v, want ErrNotificationMalformed", body, err)
		}
	}
}

func TestVerifyNotificationAuth(t *testing.T) {
	tests := []struct {
		header, secret string
		want           bool
	}{
		{"Bearer SUp3rS3Cr3t", "SUp3rS3Cr3t", true},
		{"bearer SUp3rS3Cr3t", "SUp3rS3Cr3t", true},
		{"  Bearer   SUp3rS3Cr3t  ", "SUp3rS3Cr3t", true},
		{"Bearer SUp3rS3Cr3", "SUp3rS3Cr3t", false},
		{"Bearer SUp3rS3Cr3tX", "SUp3rS3Cr3t", false},
		{"SUp3rS3Cr3t", "SUp3rS3Cr3t", false},
		{"Basic SUp3rS3Cr3t", "SUp3rS3Cr3t", false},
		{"Bearer ", "SUp3rS3Cr3t", false},
		{"", "SUp3rS3Cr3t", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := VerifyNotificationAuth(tt.header, tt.secret); got != tt.want {
			t.Errorf("VerifyNotificationAuth(%q, %q) = %v, want %v", tt.header, tt.secret, got, tt.want)
		}
	}
}

func TestDeduper(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &Deduper{capacity: 3, ttl: time.Hour, now: func() time.Time { return now }}
	if d.Seen("a") || !d.Seen("a") {
		t.Fatal("first delivery must pass, second must be a duplicate")
	}
	d.Seen("b")
	d.Seen("c")
	d.Seen("d") // evicts the least recently used: a was used before b, c, d
	if d.Len() != 3 {
		t.Errorf("Len = %d, want 3 (bounded)", d.Len())
	}
	if d.Seen("a") {
		t.Error("evicted id still remembered")
	}
	now = now.Add(2 * time.Hour)
	if d.Seen("d") {
		t.Error("expired id still remembered")
	}
	d.Forget("d")
	if d.Seen("d") {
		t.Error("forgotten id still remembered")
	}
	// The zero value works; concurrent deliveries of the same id: exactly one passes.
	d2 := &Deduper{}
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if !d2.Seen(fmt.Sprint("id-", i%8)) {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 8 {
		t.Errorf("%d deliveries passed, want 8", passed.Load())
	}
}
