package applesim

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
)

// The metadata lookup (doc/apple-api.md §10.2), served at GET /lookup (and at Apple's own path,
// appleLookupPath) and advertised as contentMetadataLookup in service config:
//
//	GET /lookup?version=2&p=mdm-lockup&caller=MDM&platform=enterprisestore&cc=us&l=en&id=1,2,3
//
// An app is returned only if it is sold in storefront cc (not in its NotSoldIn). B2B (custom)
// apps are returned only when the request carries the cookie itvt=<token file> of a token that
// owns the app. With platform=macappstore only apps that support macOS are returned.
// isAuthenticated is always false, as at Apple. Unknown ids are simply missing from results.

// appleLookupPath is the path of Apple's legacy contentMetadataLookup URL; the simulator answers
// it too, so a client configured with a host alone finds it.
const appleLookupPath = "/WebObjects/MZStorePlatform.woa/wa/lookup"

// catalogEntry is what /lookup knows of an adamId: its description (the last one added) and
// the tokens that own it.
type catalogEntry struct {
	meta   Asset
	owners map[*token]bool
}

func (s *Sim) addToCatalog(t *token, a Asset) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	e := s.catalog[a.AdamID]
	if e == nil {
		e = &catalogEntry{owners: make(map[*token]bool)}
		s.catalog[a.AdamID] = e
	}
	e.meta = a
	e.owners[t] = true
}

// storefronts maps country codes to Apple storefront ids, for meta.storefront.id.
var storefronts = map[string]string{
	"us": "143441", "fr": "143442", "de": "143443", "gb": "143444", "at": "143445", "be": "143446",
	"ie": "143449", "it": "143450", "nl": "143452", "es": "143454", "ca": "143455", "se": "143456",
	"ch": "143459", "au": "143460", "nz": "143461", "jp": "143462", "in": "143467", "mx": "143468",
	"br": "143503", "dk": "143458", "no": "143457", "fi": "143447", "pl": "143478", "pt": "143453",
}

type lookupArtwork struct {
	URL    string `json:"url"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

type lookupVersion struct {
	Display    string `json:"display"`
	ExternalID uint32 `json:"externalId"`
}

type lookupOffer struct {
	Price          float64       `json:"price"`
	PriceFormatted string        `json:"priceFormatted"`
	Type           string        `json:"type"`
	Version        lookupVersion `json:"version"`
}

type lookupResult struct {
	ID                               string        `json:"id"`
	Name                             string        `json:"name"`
	BundleID                         string        `json:"bundleId,omitempty"`
	Artwork                          lookupArtwork `json:"artwork"`
	DeviceFamilies                   []string      `json:"deviceFamilies"`
	Kind                             string        `json:"kind"`
	IsB2BCustomApp                   bool          `json:"isB2BCustomApp"`
	IsVppDeviceBasedLicensingEnabled bool          `json:"isVppDeviceBasedLicensingEnabled"`
	Offers                           []lookupOffer `json:"offers"`
	MinimumOSVersion                 string        `json:"minimumOSVersion,omitempty"`
}

type lookupResponse struct {
	Results         map[string]lookupResult `json:"results"`
	IsAuthenticated bool                    `json:"isAuthenticated"`
	Meta            struct {
		Storefront struct {
			CC string `json:"cc"`
			ID string `json:"id,omitempty"`
		} `json:"storefront"`
	} `json:"meta"`
	Version int `json:"version"`
}

func lookupEntry(a Asset) lookupResult {
	r := lookupResult{
		ID: a.AdamID, Name: a.Name, BundleID: a.BundleID,
		Artwork:                          lookupArtwork{URL: "https://is1-ssl.mzstatic.com/image/thumb/Purple/v4/sim/" + a.AdamID + "/AppIcon-0-0-1x_U007emarketing.png/{w}x{h}bb.{f}", Width: 1024, Height: 1024},
		IsB2BCustomApp:                   a.B2B,
		IsVppDeviceBasedLicensingEnabled: a.DeviceAssignable,
		MinimumOSVersion:                 a.MinimumOSVersion,
	}
	h := fnv.New32a()
	h.Write([]byte(a.AdamID + "/" + a.Version))
	r.Offers = []lookupOffer{{Price: a.Price, PriceFormatted: formatPrice(a.Price), Type: "buy", Version: lookupVersion{Display: a.Version, ExternalID: h.Sum32() >> 1}}}
	if a.ProductType == "Book" {
		r.Kind = "ebook"
		r.BundleID = ""
		r.DeviceFamilies = []string{"iphone", "ipad", "mac"}
		return r
	}
	r.Kind = "iosSoftware"
	if !slices.Contains(a.Platforms, "iOS") && slices.Contains(a.Platforms, "macOS") {
		r.Kind = "macSoftware"
	}
	for _, p := range a.Platforms {
		switch p {
		case "iOS":
			r.DeviceFamilies = append(r.DeviceFamilies, "iphone", "ipad")
		case "macOS":
			r.DeviceFamilies = append(r.DeviceFamilies, "mac")
		case "tvOS":
			r.DeviceFamilies = append(r.DeviceFamilies, "tvos")
		case "watchOS":
			r.DeviceFamilies = append(r.DeviceFamilies, "watch")
		case "visionOS":
			r.DeviceFamilies = append(r.DeviceFamilies, "realityDevice")
		}
	}
	return r
}

func formatPrice(p float64) string {
	if p == 0 {
		return "Free"
	}
	return fmt.Sprintf("$%.2f", p)
}

// serveLookup answers GET /lookup; it returns the uId of the token of the itvt cookie, if any,
// for the request log.
func (s *Sim) serveLookup(w *respWriter, r *http.Request) (uid string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, errUnsupportedMethod, nil)
		return ""
	}
	var t *token
	if ck, err := r.Cookie("itvt"); err == nil && ck.Value != "" {
		if t = s.tokenByFile(ck.Value); t != nil {
			uid = t.uid
		}
	}
	q := r.URL.Query()
	cc := strings.ToLower(q.Get("cc"))
	if cc == "" {
		cc = "us"
	}
	macOnly := q.Get("platform") == "macappstore"
	var resp lookupResponse
	resp.Version = 2
	resp.Meta.Storefront.CC = cc
	resp.Meta.Storefront.ID = storefronts[cc]
	resp.Results = map[string]lookupResult{}
	s.catMu.RLock()
	for _, id := range strings.Split(q.Get("id"), ",") {
		id = strings.TrimSpace(id)
		e := s.catalog[id]
		if e == nil {
			continue
		}
		a := e.meta
		switch {
		case slices.Contains(a.NotSoldIn, strings.ToUpper(cc)),
			a.B2B && (t == nil || !e.owners[t]),
			macOnly && !slices.Contains(a.Platforms, "macOS"):
			continue
		}
		resp.Results[id] = lookupEntry(a)
	}
	s.catMu.RUnlock()
	writeJSON(w, 200, resp)
	return uid
}
