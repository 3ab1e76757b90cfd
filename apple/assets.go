package apple

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strconv"
)

// AssetsQuery filters GET /assets (doc/apple-api.md §5.2). Zero values leave a filter out.
type AssetsQuery struct {
	AdamID       string
	ProductType  string // ProductApp or ProductBook
	PricingParam string // PricingSTDQ or PricingPLUS
	Revocable    *bool
	// DeviceAssignable filters on device assignability.
	DeviceAssignable  *bool
	MinAssignedCount  *int
	MaxAssignedCount  *int
	MinAvailableCount *int
	MaxAvailableCount *int
	// Unlimited: nil leaves it out (unlimited assets are listed in Assets with
	// totalCount 2147483647); true lists them separately in UnlimitedAssets;
	// false excludes them.
	Unlimited *bool
	// StartPage resumes a listing at this page index (default 0).
	StartPage int
	// Parallel > 1 prefetches up to that many pages concurrently (max 5).
	Parallel int
}

// Ptr returns a pointer to v, for the optional filters of queries.
func Ptr[T any](v T) *T { return &v }

func (q AssetsQuery) values() url.Values {
	v := url.Values{}
	setString(v, "adamId", q.AdamID)
	setString(v, "productType", q.ProductType)
	setString(v, "pricingParam", q.PricingParam)
	setBool(v, "revocable", q.Revocable)
	setBool(v, "deviceAssignable", q.DeviceAssignable)
	setInt(v, "minAssignedCount", q.MinAssignedCount)
	setInt(v, "maxAssignedCount", q.MaxAssignedCount)
	setInt(v, "minAvailableCount", q.MinAvailableCount)
	setInt(v, "maxAvailableCount", q.MaxAvailableCount)
	setBool(v, "unlimited", q.Unlimited)
	return v
}

func setString(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setBool(v url.Values, k string, b *bool) {
	if b != nil {
		v.Set(k, strconv.FormatBool(*b))
	}
}

func setInt(v url.Values, k string, n *int) {
	if n != nil {
		v.Set(k, strconv.Itoa(*n))
	}
}

// withPage appends pageIndex to an encoded query.
func withPage(query string, index int) string {
	p := "pageIndex=" + strconv.Itoa(index)
	if query == "" {
		return p
	}
	return query + "&" + p
}

// AssetsPage is one page of GET /assets.
type AssetsPage struct {
	Envelope
	PageInfo
	Assets []Asset `json:"assets"`
	// UnlimitedAssets is filled only when the query set Unlimited to true;
	// its entries have Unlimited set and no counts.
	UnlimitedAssets []Asset `json:"unlimitedAssets,omitempty"`
}

func (p *AssetsPage) pageInfo() *PageInfo { return &p.PageInfo }

type wireAssetsPage struct {
	wireHeader
	wirePageInfo
	Assets          []Asset `json:"assets"`
	UnlimitedAssets []Asset `json:"unlimitedAssets"`
}

// decodeAssetsPage decodes one GET /assets body.
func decodeAssetsPage(b []byte) (*AssetsPage, *wireHeader, error) {
	var w wireAssetsPage
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, nil, err
	}
	if err := checkPageInfo(&w.wirePageInfo); err != nil {
		return nil, nil, err
	}
	if err := checkAssets(w.Assets); err != nil {
		return nil, nil, err
	}
	for i := range w.UnlimitedAssets {
		w.UnlimitedAssets[i].Unlimited = true
	}
	p := &AssetsPage{Envelope: w.envelope(), PageInfo: w.info(), Assets: w.Assets, UnlimitedAssets: w.UnlimitedAssets}
	return p, &w.wireHeader, nil
}

// Assets streams the library's assets (GET /assets), page by page as they
// arrive; see paginate for the rules. Get Assets takes no sinceVersionId: its
// versionId only signals change, so re-read the whole list to reconcile counts.
//
//	for page, err := range client.Assets(ctx, tok, apple.AssetsQuery{}) {
//		if err != nil { ... }
//		for _, a := range page.Assets { ... }
//	}
func (c *Client) Assets(ctx context.Context, tok *Token, q AssetsQuery) iter.Seq2[*AssetsPage, error] {
	query := q.values().Encode()
	return paginate(ctx, q.StartPage, q.Parallel, func(ctx context.Context, index int) (*AssetsPage, error) {
		var p *AssetsPage
		err := c.getJSON(ctx, tok, "/assets", withPage(query, index), func(b []byte) (*wireHeader, error) {
			v, hdr, err := decodeAssetsPage(b)
			p = v
			return hdr, err
		})
		if err != nil {
			return nil, err
		}
		return p, nil
	})
}
