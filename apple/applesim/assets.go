package applesim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Asset describes an app or book owned by an organisational unit, with the metadata the
// lookup endpoint serves.
type Asset struct {
	AdamID string `json:"adamId"`
	// PricingParam is "STDQ" (default) or "PLUS".
	PricingParam string `json:"pricingParam,omitempty"`
	// ProductType is "App" (default) or "Book". Books are always user-only and not revocable,
	// whatever DeviceAssignable and Revocable say (doc/apple-api.md §11).
	ProductType string `json:"productType,omitempty"`
	// Total is the number of licenses owned; ignored when Unlimited.
	Total int `json:"total"`
	// Unlimited marks free apps and books that Apple counts as unlimited.
	Unlimited        bool `json:"unlimited,omitempty"`
	DeviceAssignable bool `json:"deviceAssignable,omitempty"`
	Revocable        bool `json:"revocable,omitempty"`
	// Platforms are supportedPlatforms: iOS, macOS, tvOS, watchOS, visionOS; default iOS.
	Platforms []string `json:"platforms,omitempty"`
	// B2B marks custom apps: found by /lookup only with the owning token's itvt cookie.
	B2B      bool   `json:"b2b,omitempty"`
	Name     string `json:"name,omitempty"`
	BundleID string `json:"bundleId,omitempty"`
	// NotSoldIn lists ISO country codes whose storefront does not sell the app.
	NotSoldIn []string `json:"notSoldIn,omitempty"`

	// Lookup metadata; defaults are derived from the fields above.
	Price            float64 `json:"price,omitempty"`
	Version          string  `json:"version,omitempty"`
	MinimumOSVersion string  `json:"minimumOSVersion,omitempty"`
}

// assetKey identifies an asset: the pair (adamId, pricingParam).
type assetKey struct{ adamID, pricing string }

// asset is an asset with its license counts. Accounting follows doc/apple-api.md §15:
// total = assigned + available, retired counted apart.
type asset struct {
	meta     Asset
	total    int
	assigned int
	retired  int
}

func (a *asset) key() assetKey { return assetKey{a.meta.AdamID, a.meta.PricingParam} }

// available is what can still be assigned; unlimited assets report int32 max minus assigned.
func (a *asset) available() int {
	if a.meta.Unlimited {
		return unlimitedCount - a.assigned
	}
	return max(0, a.total-a.assigned)
}

// canAssign reports whether one more license can be assigned.
func (a *asset) canAssign() bool { return a.meta.Unlimited || a.total-a.assigned > 0 }

// assetStore holds a token's assets sorted by (adamId, pricingParam).
type assetStore struct {
	byKey   map[assetKey]*asset
	sorted  []*asset
	version uint64
}

func (st *assetStore) init() { st.byKey = make(map[assetKey]*asset) }

func cmpAssetKey(a, b assetKey) int {
	return cmp.Or(cmpAdamID(a.adamID, b.adamID), strings.Compare(a.pricing, b.pricing))
}

// cmpAdamID orders numeric adamIds numerically (they are all digits at Apple), and any other
// string after them in string order.
func cmpAdamID(a, b string) int {
	da, db := isDigits(a), isDigits(b)
	switch {
	case da && db:
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// put inserts or replaces an asset; a replaced asset keeps its assigned and retired counts.
func (st *assetStore) put(a *asset, version uint64) {
	k := a.key()
	if old := st.byKey[k]; old != nil {
		old.meta, old.total = a.meta, a.total
	} else {
		st.byKey[k] = a
		i, _ := slices.BinarySearchFunc(st.sorted, k, func(x *asset, k assetKey) int { return cmpAssetKey(x.key(), k) })
		st.sorted = slices.Insert(st.sorted, i, a)
	}
	st.version = version
}

// find returns the asset of an adamId and pricingParam; an empty pricingParam prefers STDQ
// and otherwise takes any.
func (st *assetStore) find(adamID, pricing string) *asset {
	if pricing != "" {
		return st.byKey[assetKey{adamID, pricing}]
	}
	if a := st.byKey[assetKey{adamID, "STDQ"}]; a != nil {
		return a
	}
	return st.byKey[assetKey{adamID, "PLUS"}]
}

// normalizeAsset fills defaults and enforces the rules of books.
func normalizeAsset(a Asset) Asset {
	if a.PricingParam == "" {
		a.PricingParam = "STDQ"
	}
	if a.ProductType == "" {
		a.ProductType = "App"
	}
	if a.ProductType == "Book" {
		a.DeviceAssignable, a.Revocable = false, false
	}
	if len(a.Platforms) == 0 {
		a.Platforms = []string{"iOS"}
	}
	a.Platforms = slices.Clone(a.Platforms)
	a.NotSoldIn = slices.Clone(a.NotSoldIn)
	for i, c := range a.NotSoldIn {
		a.NotSoldIn[i] = strings.ToUpper(c)
	}
	if a.Name == "" {
		a.Name = "App " + a.AdamID
		if a.ProductType == "Book" {
			a.Name = "Book " + a.AdamID
		}
	}
	if a.BundleID == "" && a.ProductType == "App" {
		a.BundleID = "com.example.app" + a.AdamID
	}
	if a.Version == "" {
		a.Version = "1.0"
	}
	if a.MinimumOSVersion == "" {
		a.MinimumOSVersion = "15.0"
	}
	if a.Total < 0 {
		a.Total = 0
	}
	return a
}

// AddAsset adds an asset to a token (or replaces its description and total, keeping its
// assignments), as if bought in Apple Business Manager, and registers it for /lookup.
func (s *Sim) AddAsset(tokenFile string, a Asset) {
	t := s.mustToken(tokenFile)
	a = normalizeAsset(a)
	t.mu.Lock()
	t.assets.put(&asset{meta: a, total: a.Total}, t.bump())
	t.mu.Unlock()
	s.addToCatalog(t, a)
}

// Purchase changes the number of licenses of an asset as a purchase (delta > 0) or a refund
// (delta < 0) in Apple Business Manager does: total changes, refunded licenses are counted
// as retired, and an ASSET_COUNT notification goes out if subscribed. The asset is the adamId's
// STDQ asset, else its PLUS one; see PurchasePricing. A refund cannot take back assigned
// licenses, and unlimited assets have no count to change.
func (s *Sim) Purchase(tokenFile, adamID string, delta int) error {
	return s.PurchasePricing(tokenFile, adamID, "", delta)
}

// PurchasePricing is Purchase for an explicit pricingParam.
func (s *Sim) PurchasePricing(tokenFile, adamID, pricingParam string, delta int) error {
	t, err := s.findToken(tokenFile)
	if err != nil {
		return err
	}
	s.settle(t)
	t.mu.Lock()
	a := t.assets.find(adamID, pricingParam)
	switch {
	case a == nil:
		t.mu.Unlock()
		return fmt.Errorf("applesim: purchase: asset %s %s not owned by this token; add it first", adamID, pricingParam)
	case a.meta.Unlimited:
		t.mu.Unlock()
		return fmt.Errorf("applesim: purchase: asset %s is unlimited", adamID)
	case a.total+delta < a.assigned:
		t.mu.Unlock()
		return fmt.Errorf("applesim: refund of %d licenses of %s would leave %d for %d assignments", -delta, adamID, a.total+delta, a.assigned)
	}
	a.total += delta
	if delta < 0 {
		a.retired -= delta
	}
	t.assets.version = t.bump()
	out := t.notification(s, notifAssetCount, wireAssetCountNotification{AdamID: a.meta.AdamID, PricingParam: a.meta.PricingParam, CountDelta: delta})
	t.mu.Unlock()
	s.notifier.send(out...)
	return nil
}

// AssetState is an asset as the simulator counts it.
type AssetState struct {
	AdamID           string `json:"adamId"`
	PricingParam     string `json:"pricingParam"`
	ProductType      string `json:"productType"`
	Total            int    `json:"total"`
	Assigned         int    `json:"assigned"`
	Available        int    `json:"available"`
	Retired          int    `json:"retired"`
	Unlimited        bool   `json:"unlimited"`
	DeviceAssignable bool   `json:"deviceAssignable"`
	Revocable        bool   `json:"revocable"`
}

// AssetStates returns a token's assets in (adamId, pricingParam) order. Unlimited assets show
// Total and Available as Apple does with the unlimited parameter omitted.
func (s *Sim) AssetStates(tokenFile string) []AssetState {
	t := s.mustToken(tokenFile)
	s.settle(t)
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]AssetState, 0, len(t.assets.sorted))
	for _, a := range t.assets.sorted {
		total := a.total
		if a.meta.Unlimited {
			total = unlimitedCount
		}
		out = append(out, AssetState{
			AdamID: a.meta.AdamID, PricingParam: a.meta.PricingParam, ProductType: a.meta.ProductType,
			Total: total, Assigned: a.assigned, Available: a.available(), Retired: a.retired,
			Unlimited: a.meta.Unlimited, DeviceAssignable: a.meta.DeviceAssignable, Revocable: a.meta.Revocable,
		})
	}
	return out
}

// assetFilter is the query of GET /assets (doc/apple-api.md §5.2).
type assetFilter struct {
	adamID, productType, pricing string
	revocable, deviceAssignable  *bool
	minAssigned, maxAssigned     *int
	minAvailable, maxAvailable   *int
	unlimited                    *bool
}

func (f *assetFilter) match(a *asset) bool {
	m := &a.meta
	switch {
	case f.adamID != "" && m.AdamID != f.adamID,
		f.productType != "" && m.ProductType != f.productType,
		f.pricing != "" && m.PricingParam != f.pricing,
		f.revocable != nil && m.Revocable != *f.revocable,
		f.deviceAssignable != nil && m.DeviceAssignable != *f.deviceAssignable,
		f.unlimited != nil && !*f.unlimited && m.Unlimited,
		f.minAssigned != nil && a.assigned < *f.minAssigned,
		f.maxAssigned != nil && a.assigned > *f.maxAssigned,
		f.minAvailable != nil && a.available() < *f.minAvailable,
		f.maxAvailable != nil && a.available() > *f.maxAvailable:
		return false
	}
	return true
}

// getAssets serves GET /assets: filters, pagination, versionId. With unlimited=true the
// unlimited assets of the page come in unlimitedAssets without counts; with unlimited=false
// they are left out; without the parameter they are in assets with totalCount int32 max.
// sinceVersionId is ignored, or answered 9602 with Options.AssetsRejectSinceVersionID.
func (c *call) getAssets() {
	q := c.r.URL.Query()
	if q.Has("sinceVersionId") && c.s.opts.AssetsRejectSinceVersionID {
		writeError(c.w, errInvalidArgument, nil)
		return
	}
	page, ok := queryPageIndex(q)
	if !ok {
		writeError(c.w, errBadPageIndex, nil)
		return
	}
	f := assetFilter{adamID: q.Get("adamId"), productType: q.Get("productType"), pricing: q.Get("pricingParam")}
	valid := (f.productType == "" || f.productType == "App" || f.productType == "Book") &&
		(f.pricing == "" || f.pricing == "STDQ" || f.pricing == "PLUS")
	for name, dst := range map[string]**bool{"revocable": &f.revocable, "deviceAssignable": &f.deviceAssignable, "unlimited": &f.unlimited} {
		v, set, ok := queryBool(q, name)
		valid = valid && ok
		if set && ok {
			*dst = &v
		}
	}
	for name, dst := range map[string]**int{"minAssignedCount": &f.minAssigned, "maxAssignedCount": &f.maxAssigned, "minAvailableCount": &f.minAvailable, "maxAvailableCount": &f.maxAvailable} {
		v, set, ok := queryInt(q, name)
		valid = valid && ok
		if set && ok {
			*dst = &v
		}
	}
	if !valid {
		writeError(c.w, errInvalidArgument, nil)
		return
	}

	t := c.t
	t.mu.RLock()
	var list []*asset
	for _, a := range t.assets.sorted {
		if f.match(a) {
			list = append(list, a)
		}
	}
	lo, hi, p, ok := pageSpan(len(list), c.s.opts.PageSize, page)
	if !ok {
		t.mu.RUnlock()
		writeError(c.w, errBadPageIndex, nil)
		return
	}
	resp := wireAssetsPage{Assets: []wireResponseAsset{}, wirePage: p, envelope: t.envelope(c.s, c.now)}
	resp.VersionID = renderVersion(t.uid, setAssets, t.assets.version)
	separate := f.unlimited != nil && *f.unlimited
	for _, a := range list[lo:hi] {
		m := &a.meta
		ra := wireResponseAsset{
			AdamID: m.AdamID, PricingParam: m.PricingParam, ProductType: m.ProductType,
			AssignedCount: a.assigned, DeviceAssignable: m.DeviceAssignable, Revocable: m.Revocable,
			SupportedPlatforms: m.Platforms,
		}
		if m.Unlimited && separate {
			resp.UnlimitedAssets = append(resp.UnlimitedAssets, ra)
			continue
		}
		total, avail, retired := a.total, a.available(), a.retired
		if m.Unlimited {
			total = unlimitedCount
		}
		ra.TotalCount, ra.AvailableCount, ra.RetiredCount = &total, &avail, &retired
		resp.Assets = append(resp.Assets, ra)
	}
	t.mu.RUnlock()
	writeJSON(c.w, 200, resp)
}
