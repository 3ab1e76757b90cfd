package apple

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AppMetadata describes an app as the metadata lookup reports it in one
// storefront (doc/apple-api.md §10).
type AppMetadata struct {
	AdamID   string `json:"adamId"`
	Name     string `json:"name"`
	BundleID string `json:"bundleId,omitempty"`
	// IconURL is a 512×512 PNG rendition of the artwork.
	IconURL string `json:"iconUrl,omitempty"`
	// Kind is Apple's kind ("iosSoftware", "macSoftware", "software", ...).
	Kind string `json:"kind,omitempty"`
	// Platforms in canonical order: iOS, iPadOS, macOS, tvOS, watchOS, visionOS.
	Platforms []string `json:"platforms,omitempty"`
	// B2B is set for custom (B2B) apps, assignable in every country (R11).
	B2B bool `json:"b2b,omitempty"`
	// DeviceBasedLicensing is set when the app can take device licenses.
	DeviceBasedLicensing bool   `json:"deviceBasedLicensing,omitempty"`
	MinimumOSVersion     string `json:"minimumOSVersion,omitempty"`
	Version              string `json:"version,omitempty"`
	// Free is set when the storefront offers the app at no cost (R5: its licenses are still
	// counted, and more cost nothing in Apple Business Manager).
	Free bool `json:"free,omitempty"`
}

// maxLookupBatch is how many ids one lookup request asks for.
const maxLookupBatch = 100

// lookupCache caches lookups per (country, token, adamId), negative results
// included (found == false): an app that is not sold in a storefront is asked
// about again only after Config.LookupTTL.
type lookupCache = ttlLRU[lookupKey, lookupEntry]

type lookupKey struct {
	country     string
	fingerprint string // authenticated lookups can see the org's B2B apps; others cannot
	adamID      string
}

type lookupEntry struct {
	meta  AppMetadata
	found bool
}

func newLookupCache(capacity int, ttl time.Duration) *lookupCache {
	return newTTLLRU[lookupKey, lookupEntry](capacity, ttl)
}

// LookupApps returns the metadata of the given apps in country's storefront
// (ISO 3166 alpha-2, any case; default "us"). tok may be nil: then the lookup
// is anonymous (no itvt cookie) and cannot see custom B2B apps. An id absent
// from the result is not sold in that storefront (or not visible to the
// token). Ids are asked for in batches of 100; answers, negative ones
// included, are cached for Config.LookupTTL.
func (c *Client) LookupApps(ctx context.Context, tok *Token, country string, adamIDs []string) (map[string]AppMetadata, error) {
	cc := strings.ToLower(strings.TrimSpace(country))
	if cc == "" {
		cc = "us"
	}
	now := c.now()
	out := make(map[string]AppMetadata)
	var missing []string
	seen := make(map[string]bool, len(adamIDs))
	for _, id := range adamIDs {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] || strings.ContainsAny(id, ", &?#") {
			continue
		}
		seen[id] = true
		if e, ok := c.lookup.get(lookupKey{cc, tok.Fingerprint(), id}, now); ok {
			if e.found {
				out[id] = e.meta
			}
			continue
		}
		missing = append(missing, id)
	}
	for batch := range slices.Chunk(missing, maxLookupBatch) {
		found, err := c.lookupBatch(ctx, tok, cc, batch)
		if err != nil {
			return out, err
		}
		stored := c.now()
		for _, id := range batch {
			m, ok := found[id]
			c.lookup.put(lookupKey{cc, tok.Fingerprint(), id}, lookupEntry{meta: m, found: ok}, stored)
			if ok {
				out[id] = m
			}
		}
	}
	return out, nil
}

// Availability reports, for each app, the countries (upper case, in the
// order given) whose storefront sells it — the input of the cross-country rule
// (R11). On error it returns what it found so far together with the error.
func (c *Client) Availability(ctx context.Context, tok *Token, adamIDs []string, countries []string) (map[string][]string, error) {
	out := make(map[string][]string)
	for _, country := range countries {
		found, err := c.LookupApps(ctx, tok, country, adamIDs)
		if err != nil {
			return out, fmt.Errorf("apple: availability in %q: %w", country, err)
		}
		cc := strings.ToUpper(strings.TrimSpace(country))
		for id := range found {
			out[id] = append(out[id], cc)
		}
	}
	return out, nil
}

func (c *Client) lookupBatch(ctx context.Context, tok *Token, cc string, ids []string) (map[string]AppMetadata, error) {
	q := url.Values{}
	q.Set("version", "2")
	q.Set("id", strings.Join(ids, ","))
	q.Set("p", "mdm-lockup")
	q.Set("caller", "MDM")
	q.Set("platform", c.cfg.LookupPlatform)
	q.Set("cc", cc)
	q.Set("l", "en")
	u, err := url.Parse(c.cfg.LookupURL)
	if err != nil {
		return nil, fmt.Errorf("apple: lookup URL: %w", err)
	}
	r := &request{
		method: http.MethodGet, path: "/lookup", url: c.cfg.LookupURL, query: q.Encode(),
		tok: tok, cookie: true, scope: ScopeLookup, holdKey: "lookup", idempotent: true, limiter: c.lookLim,
	}
	if u.RawQuery != "" { // a configured URL with its own parameters keeps them
		r.url = strings.SplitN(c.cfg.LookupURL, "?", 2)[0]
		r.query = u.RawQuery + "&" + r.query
	}
	var res map[string]AppMetadata
	err = c.exchange(ctx, r, func(b []byte) (*wireHeader, error) {
		m, err := decodeLookup(b)
		res = m
		return nil, err
	})
	return res, err
}

// wireLookupApp covers both answer shapes: the MDM lookup of doc/apple-api.md §10.2 (results
// keyed by id) and the public iTunes lookup of doc/apple-api.md §10.1 (results array).
type wireLookupApp struct {
	// doc/apple-api.md §10.2
	ID                               flexString `json:"id"`
	Name                             string     `json:"name"`
	BundleID                         string     `json:"bundleId"`
	Kind                             string     `json:"kind"`
	DeviceFamilies                   []string   `json:"deviceFamilies"`
	IsB2BCustomApp                   bool       `json:"isB2BCustomApp"`
	IsVppDeviceBasedLicensingEnabled bool       `json:"isVppDeviceBasedLicensingEnabled"`
	MinimumOSVersion                 string     `json:"minimumOSVersion"`
	Artwork                          *struct {
		URL string `json:"url"`
	} `json:"artwork"`
	Offers []struct {
		Price   *float64 `json:"price"`
		Version struct {
			Display string `json:"display"`
		} `json:"version"`
	} `json:"offers"`
	Price *float64 `json:"price"`
	// doc/apple-api.md §10.1
	TrackID          flexString `json:"trackId"`
	TrackName        string     `json:"trackName"`
	Version          string     `json:"version"`
	ArtworkURL512    string     `json:"artworkUrl512"`
	ArtworkURL100    string     `json:"artworkUrl100"`
	ArtworkURL60     string     `json:"artworkUrl60"`
	SupportedDevices []string   `json:"supportedDevices"`
	MinimumOsVersion string     `json:"minimumOsVersion"`
}

// decodeLookup decodes a lookup answer into metadata keyed by adamId.
func decodeLookup(b []byte) (map[string]AppMetadata, error) {
	var w struct {
		Results json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	out := make(map[string]AppMetadata)
	r := bytes.TrimSpace(w.Results)
	switch {
	case len(r) == 0 || string(r) == "null":
	case r[0] == '{':
		var m map[string]wireLookupApp
		if err := json.Unmarshal(r, &m); err != nil {
			return nil, err
		}
		for id, a := range m {
			md := a.metadata(id)
			out[md.AdamID] = md
		}
	case r[0] == '[':
		var l []wireLookupApp
		if err := json.Unmarshal(r, &l); err != nil {
			return nil, err
		}
		for _, a := range l {
			if md := a.metadata(""); md.AdamID != "" {
				out[md.AdamID] = md
			}
		}
	default:
		return nil, errors.New("lookup results are neither an object nor an array")
	}
	return out, nil
}

func (a *wireLookupApp) metadata(key string) AppMetadata {
	m := AppMetadata{
		AdamID:               key,
		Name:                 a.Name,
		BundleID:             a.BundleID,
		Kind:                 a.Kind,
		B2B:                  a.IsB2BCustomApp,
		DeviceBasedLicensing: a.IsVppDeviceBasedLicensingEnabled,
		MinimumOSVersion:     a.MinimumOSVersion,
		Version:              a.Version,
	}
	if m.AdamID == "" {
		m.AdamID = string(a.ID)
	}
	if m.AdamID == "" {
		m.AdamID = string(a.TrackID)
	}
	if m.Name == "" {
		m.Name = a.TrackName
	}
	if m.MinimumOSVersion == "" {
		m.MinimumOSVersion = a.MinimumOsVersion
	}
	if len(a.Offers) > 0 && a.Offers[0].Version.Display != "" {
		m.Version = a.Offers[0].Version.Display
	}
	price := a.Price
	if len(a.Offers) > 0 && a.Offers[0].Price != nil {
		price = a.Offers[0].Price
	}
	m.Free = price != nil && *price == 0
	switch {
	case a.Artwork != nil && a.Artwork.URL != "":
		m.IconURL = strings.NewReplacer("{w}", "512", "{h}", "512", "{c}", "bb", "{f}", "png").Replace(a.Artwork.URL)
	case a.ArtworkURL512 != "":
		m.IconURL = a.ArtworkURL512
	case a.ArtworkURL100 != "":
		m.IconURL = a.ArtworkURL100
	default:
		m.IconURL = a.ArtworkURL60
	}
	m.Platforms = platformsOf(a.DeviceFamilies, a.SupportedDevices, a.Kind)
	return m
}

var platformOrder = []string{"iOS", "iPadOS", "macOS", "tvOS", "watchOS", "visionOS"}

// platformsOf derives platforms from deviceFamilies (doc/apple-api.md §10.2: "iphone", "ipad",
// "mac", "tvos", "watch", "realityDevice"), supportedDevices of the public
// lookup ("iPhone15-iPhone15", "iPadPro...", "AppleTV...", "Watch...",
// "AppleVisionPro...") and the kind.
func platformsOf(families, devices []string, kind string) []string {
	set := map[string]bool{}
	for _, f := range families {
		switch strings.ToLower(f) {
		case "iphone", "ipod":
			set["iOS"] = true
		case "ipad":
			set["iPadOS"] = true
		case "mac":
			set["macOS"] = true
		case "tvos", "appletv", "tv":
			set["tvOS"] = true
		case "watch", "watchos":
			set["watchOS"] = true
		case "realitydevice", "vision", "visionos":
			set["visionOS"] = true
		}
	}
	for _, d := range devices {
		l := strings.ToLower(d)
		switch {
		case strings.HasPrefix(l, "iphone"), strings.HasPrefix(l, "ipod"):
			set["iOS"] = true
		case strings.HasPrefix(l, "ipad"):
			set["iPadOS"] = true
		case strings.HasPrefix(l, "mac"):
			set["macOS"] = true
		case strings.HasPrefix(l, "appletv"):
			set["tvOS"] = true
		case strings.HasPrefix(l, "watch"):
			set["watchOS"] = true
		case strings.Contains(l, "vision"):
			set["visionOS"] = true
		}
	}
	if k := strings.ToLower(kind); k == "mac-software" || k == "macsoftware" {
		set["macOS"] = true
	}
	var out []string
	for _, p := range platformOrder {
		if set[p] {
			out = append(out, p)
		}
	}
	return out
}
