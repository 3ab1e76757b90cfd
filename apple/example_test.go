package apple_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"orchard/apple"
)

// A full assignment sync of one account: stream the pages, remember the
// first page's versionId for the next incremental pass, and hold the account
// when Apple throttles (DESIGN R3).
func ExampleClient_Assignments() {
	client := apple.New(apple.Config{
		BaseURL: os.Getenv("ORCHARD_APPLE_URL"),
		MDM:     apple.MDMInfo{ID: "orchard-instance-uuid", Name: "Orchard", Metadata: "1.0"},
	})
	file, _ := os.ReadFile("account.vpptoken")
	tok, err := apple.ParseToken(file, time.Now())
	if err != nil {
		fmt.Println("token:", err) // never contains the secret
		return
	}
	ctx := context.Background()
	var nextSince string
	for page, err := range client.Assignments(ctx, tok, apple.AssignmentsQuery{Parallel: 3}) {
		if until, held := apple.ThrottledUntil(err); held {
			fmt.Println("hold the account until", until)
			return
		}
		if errors.Is(err, apple.ErrClaimedElsewhere) || apple.IsTokenUnusable(err) {
			fmt.Println("stop writing to this account:", err)
			return
		}
		if err != nil {
			fmt.Println("sync failed:", err)
			return
		}
		nextSince = page.VersionID
		for range page.Assignments {
			// upsert in batches
		}
	}
	fmt.Println("next incremental pass from", nextSince)
}

// Sending a large associate within Apple's current limits.
func ExampleSplitManage() {
	client := apple.New(apple.Config{})
	ctx := context.Background()
	var tok *apple.Token            // from ParseToken
	limits, _ := client.Limits(ctx) // always usable, even if service config is down
	req := apple.ManageAssetsRequest{
		Assets:        []apple.AssetRef{{AdamID: "408709785", PricingParam: apple.PricingSTDQ}},
		SerialNumbers: []string{"C02XXXXXXXX1", "C02XXXXXXXX2"},
	}
	for _, part := range apple.SplitManage(req, limits) {
		ev, err := client.Associate(ctx, tok, part)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("follow event", ev.EventID) // success only from EventStatus or a notification
	}
}
