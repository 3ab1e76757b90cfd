package applesim

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// GenSpec describes generated data: Tokens tokens, each with AppsPerToken assets and
// AssignmentsPerToken assignments spread over devices and users.
type GenSpec struct {
	Tokens              int      `json:"tokens"`
	AppsPerToken        int      `json:"appsPerToken"`
	AssignmentsPerToken int      `json:"assignmentsPerToken"`
	Seed                int64    `json:"seed"`
	Countries           []string `json:"countries,omitempty"`
	// UsersFraction is the share of user (vs device) assignments; 0 means the default 0.25,
	// a negative value means devices only.
	UsersFraction float64 `json:"usersFraction,omitempty"`
}

// GeneratedToken describes one generated token.
type GeneratedToken struct {
	TokenFile         string    `json:"tokenFile"`
	UID               string    `json:"uId"`
	OrgName           string    `json:"orgName"`
	LocationName      string    `json:"locationName"`
	Country           string    `json:"country"`
	ExpiresAt         time.Time `json:"expiresAt"`
	Assets            int       `json:"assets"`
	Assignments       int       `json:"assignments"`
	DeviceAssignments int       `json:"deviceAssignments"`
	UserAssignments   int       `json:"userAssignments"`
	Devices           int       `json:"devices"`
	Users             int       `json:"users"`
}

// Generated is the result of Generate.
type Generated struct {
	TokenFiles []string         `json:"tokenFiles"`
	Tokens     []GeneratedToken `json:"tokens"`
}

// Generation catalogue. Every adamId has fixed properties derived from its catalogue index and
// the seed, so an app shared by two tokens (neighbouring tokens share half their apps, as an
// app bought in two accounts would be) is described the same way in both.
var (
	genOrgPrefixes = []string{"Maple Grove", "Cedar Ridge", "Riverside", "Summit", "Harbor View", "Lakeside", "Oakridge", "Westfield", "Brighton", "Granite Falls", "Pinecrest", "Silver Lake"}
	genOrgSuffixes = []string{"School District", "Academy", "Health", "Logistics", "College", "Retail Group", "Engineering", "Public Schools"}
	genLocations   = []string{"Main Campus", "North Campus", "Head Office", "East Wing", "Downtown", "Warehouse", "Elementary", "High School"}
	genNameFirst   = []string{"Math", "Pocket", "Smart", "Bright", "Swift", "Story", "Pixel", "Word", "Note", "Sky", "Ocean", "Field", "Spark", "Clever", "Happy", "Global", "Rapid", "Quiet"}
	genNameSecond  = []string{"Quest", "Atlas", "Lab", "Notes", "Studio", "Reader", "Planner", "Tutor", "Scanner", "Board", "Tracker", "Maps", "Words", "Coder", "Sketch", "Keys"}
	genNameExtra   = []string{"", " Pro", " HD", " for Schools"}
	genBookFirst   = []string{"The Art of", "A History of", "Introduction to", "Essentials of", "The Science of", "Adventures in", "Foundations of", "The Little Book of"}
	genBookSecond  = []string{"Algebra", "the Oceans", "Chemistry", "Poetry", "Ancient Rome", "Robotics", "Music", "Geography", "Biology", "Design", "Economics", "Astronomy"}
	genVendors     = []string{"acme", "brightlabs", "northwind", "contoso", "fabrikam", "globex", "initech", "tailspin", "wingtip", "adventureworks"}
	genPlatforms   = [][]string{{"iOS"}, {"iOS"}, {"iOS"}, {"iOS", "macOS"}, {"iOS", "macOS", "visionOS"}, {"macOS"}, {"iOS", "tvOS"}, {"iOS", "watchOS"}}
	genCountries   = []string{"US", "GB", "DE", "FR", "CA", "AU", "JP", "ES", "IT", "NL"}
)

// asset categories of the generator, by share of the catalogue
const (
	catPaid = iota
	catFree
	catBook
	catB2B
	catUserOnly // an app that is not device-assignable
)

// genAsset describes catalogue entry j.
func genAsset(seed int64, j int, countries []string) (Asset, int) {
	r := rand.New(rand.NewPCG(uint64(seed)^0xA5A5A5A5, uint64(j)*0x9E3779B97F4A7C15+7))
	a := Asset{AdamID: strconv.Itoa(284417350 + j*1009), PricingParam: "STDQ", ProductType: "App", DeviceAssignable: true, Revocable: true}
	var cat int
	switch p := r.IntN(100); {
	case p < 8:
		cat = catBook
	case p < 28:
		cat = catFree
	case p < 33:
		cat = catB2B
	case p < 38:
		cat = catUserOnly
	default:
		cat = catPaid
	}
	combos := len(genNameFirst) * len(genNameSecond)
	vendor := genVendors[r.IntN(len(genVendors))]
	a.Version = fmt.Sprintf("%d.%d.%d", 1+r.IntN(12), r.IntN(10), r.IntN(5))
	a.MinimumOSVersion = fmt.Sprintf("%d.0", 15+r.IntN(4))
	a.Platforms = genPlatforms[r.IntN(len(genPlatforms))]
	switch cat {
	case catBook:
		a.ProductType = "Book"
		if j%2 == 1 {
			a.PricingParam = "PLUS"
		}
		a.Name = genBookFirst[r.IntN(len(genBookFirst))] + " " + genBookSecond[r.IntN(len(genBookSecond))]
		a.Platforms = []string{"iOS", "macOS"}
		a.Price = float64(4+r.IntN(11)) + 0.99
		return normalizeAsset(a), cat
	case catB2B:
		a.B2B = true
		a.Name = genNameFirst[j%len(genNameFirst)] + " " + genNameSecond[(j/len(genNameFirst))%len(genNameSecond)] + " (Custom)"
		a.BundleID = "com." + vendor + ".custom." + strings.ToLower(strings.ReplaceAll(a.Name[:strings.Index(a.Name, " (")], " ", ""))
	default:
		a.Name = genNameFirst[j%len(genNameFirst)] + " " + genNameSecond[(j/len(genNameFirst))%len(genNameSecond)] + genNameExtra[(j/combos)%len(genNameExtra)]
		if n := j / (combos * len(genNameExtra)); n > 0 {
			a.Name += " " + strconv.Itoa(n+1)
		}
		a.BundleID = "com." + vendor + "." + strings.ToLower(strings.NewReplacer(" ", "", "for", "").Replace(a.Name))
	}
	switch cat {
	case catFree:
		a.Unlimited = true
	case catUserOnly:
		a.DeviceAssignable = false
	case catPaid:
		a.Price = float64(r.IntN(20)) + 0.99
	}
	if cat != catB2B && r.IntN(10) == 0 && len(countries) > 1 {
		a.NotSoldIn = []string{countries[r.IntN(len(countries))]}
	}
	return normalizeAsset(a), cat
}

// Generate adds deterministic data: for the same spec (and a simulator without earlier tokens)
// the same token files, assets, assignments and users. Every token gets paid apps with finite
// totals and some licenses left, free (unlimited) apps, books (user-only, not revocable,
// STDQ or PLUS), B2B apps, apps that are not device-assignable and apps not sold in some
// countries. Device serial numbers are "SIM" + 9 digits, users "user-N" (registered: about
// two thirds Associated, the rest Registered). 100,000 assignments take well under a second.
func (s *Sim) Generate(spec GenSpec) Generated {
	if spec.Tokens <= 0 {
		spec.Tokens = 1
	}
	if spec.AppsPerToken <= 0 {
		spec.AppsPerToken = 20
	}
	if spec.AssignmentsPerToken < 0 {
		spec.AssignmentsPerToken = 0
	}
	if len(spec.Countries) == 0 {
		spec.Countries = genCountries
	}
	uf := spec.UsersFraction
	switch {
	case uf == 0:
		uf = 0.25
	case uf < 0:
		uf = 0
	case uf > 1:
		uf = 1
	}
	var out Generated
	exp := time.Date(s.now().Year()+1, 12, 31, 23, 59, 59, 0, time.UTC)
	for ti := 0; ti < spec.Tokens; ti++ {
		g := s.generateToken(spec, ti, uf, exp)
		out.TokenFiles = append(out.TokenFiles, g.TokenFile)
		out.Tokens = append(out.Tokens, g)
	}
	return out
}

func (s *Sim) generateToken(spec GenSpec, ti int, uf float64, exp time.Time) GeneratedToken {
	r := rand.New(rand.NewPCG(uint64(spec.Seed), uint64(ti)+1))
	org := genOrgPrefixes[(ti+int(uint64(spec.Seed)%7))%len(genOrgPrefixes)] + " " + genOrgSuffixes[(ti/len(genOrgPrefixes)+int(uint64(spec.Seed)%5))%len(genOrgSuffixes)]
	if ti >= len(genOrgPrefixes)*len(genOrgSuffixes) {
		org += " " + strconv.Itoa(ti+1)
	}
	platform := "enterprisestore"
	if strings.Contains(org, "School") || strings.Contains(org, "Academy") || strings.Contains(org, "College") {
		platform = "volumestore"
	}
	country := strings.ToUpper(spec.Countries[ti%len(spec.Countries)])
	secretBytes := make([]byte, 48)
	for i := range secretBytes {
		secretBytes[i] = byte(r.Uint32())
	}
	file := s.addToken(TokenSpec{
		OrgName: org, LocationName: genLocations[ti%len(genLocations)], Country: country,
		UID: fmt.Sprintf("2049%012d", r.Uint64()%1e12), ExpiresAt: exp, DefaultPlatform: platform,
	}, base64.RawStdEncoding.EncodeToString(secretBytes))
	t := s.mustToken(file)
	g := GeneratedToken{TokenFile: file, UID: t.uid, OrgName: org, LocationName: t.location, Country: country, ExpiresAt: exp}

	// Assets: catalogue entries [ti*M/2, ti*M/2+M).
	M, K := spec.AppsPerToken, spec.AssignmentsPerToken
	assets := make([]*asset, M)
	cats := make([]int, M)
	for i := range M {
		meta, cat := genAsset(spec.Seed, ti*M/2+i, spec.Countries)
		assets[i], cats[i] = &asset{meta: meta}, cat
	}

	// Split the assignments: users get round(K*uf), devices the rest, each spread over the
	// eligible assets by random weights.
	U := int(math.Round(float64(K) * uf))
	var devEligible, userEligible []int
	for i, a := range assets {
		userEligible = append(userEligible, i)
		if a.meta.DeviceAssignable {
			devEligible = append(devEligible, i)
		}
	}
	if len(devEligible) == 0 {
		U = K
	}
	D := K - U
	weights := make([]float64, M)
	for i := range weights {
		weights[i] = 0.2 + r.ExpFloat64()
	}
	devQuota := spread(D, devEligible, weights, M)
	userQuota := spread(U, userEligible, weights, M)
	nDevices := max(ceilDiv(D, 8), maxOf(devQuota))
	nUsers := max(ceilDiv(U, 4), maxOf(userQuota))

	serials := make([]string, nDevices)
	for i := range serials {
		serials[i] = fmt.Sprintf("SIM%09d", i+1)
	}
	userIDs := make([]string, nUsers)
	for i := range userIDs {
		userIDs[i] = "user-" + strconv.Itoa(i+1)
	}

	t.mu.Lock()
	v := t.bump()
	recs := make([]assignRec, 0, K)
	devCursor, userCursor := 0, 0
	for i, a := range assets {
		k := a.key()
		for q := range userQuota[i] {
			recs = append(recs, assignRec{assignKey: assignKey{adamID: k.adamID, pricing: k.pricing, user: userIDs[(userCursor+q)%nUsers]}, version: v})
		}
		userCursor = (userCursor + userQuota[i]) % max(nUsers, 1)
		for q := range devQuota[i] {
			recs = append(recs, assignRec{assignKey: assignKey{adamID: k.adamID, pricing: k.pricing, serial: serials[(devCursor+q)%nDevices]}, version: v})
		}
		devCursor = (devCursor + devQuota[i]) % max(nDevices, 1)
		a.assigned = userQuota[i] + devQuota[i]
		if !a.meta.Unlimited {
			a.total = a.assigned + 1 + a.assigned/10 + r.IntN(5) // always some licenses left
		}
		a.meta.Total = a.total
		t.assets.put(a, v)
	}
	st := &t.assigns
	for i := range recs {
		st.insert(&recs[i])
	}
	for i, id := range userIDs {
		managed := ""
		if i%3 != 2 {
			managed = id + "@" + strings.ToLower(strings.ReplaceAll(org, " ", "")) + ".appleid.example"
		}
		t.newUserRow(s, id, id+"@"+strings.ToLower(strings.ReplaceAll(org, " ", ""))+".example", managed, v)
	}
	t.mu.Unlock()
	for _, a := range assets {
		s.addToCatalog(t, a.meta)
	}
	g.Assets, g.Assignments, g.DeviceAssignments, g.UserAssignments = M, len(recs), D, U
	g.Devices, g.Users = nDevices, nUsers
	if D == 0 {
		g.Devices = 0
	}
	return g
}

// spread distributes n over the eligible indexes in proportion to their weights (largest
// remainders get the rest); the result is indexed like weights.
func spread(n int, eligible []int, weights []float64, size int) []int {
	q := make([]int, size)
	if n <= 0 || len(eligible) == 0 {
		return q
	}
	var sum float64
	for _, i := range eligible {
		sum += weights[i]
	}
	given := 0
	for _, i := range eligible {
		q[i] = int(float64(n) * weights[i] / sum)
		given += q[i]
	}
	for k := 0; given < n; k++ {
		q[eligible[k%len(eligible)]]++
		given++
	}
	return q
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func maxOf(list []int) int {
	m := 0
	for _, v := range list {
		m = max(m, v)
	}
	return m
}
