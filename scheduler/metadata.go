package scheduler

import (
	"context"
	"strings"
	"sync"
	"time"

	"orchard/db"
	"orchard/model"
)

// App metadata (doc/design.md §2.3): after a successful pass, the apps of the account's pools whose
// metadata is missing or older than Config.MetadataRefresh are looked up in the account's
// storefront (name, icon, bundle id, platforms, B2B, free, minimum OS, version), and their
// availability in every country in use (devices' and accounts' countries) is recorded for the
// cross-country rule (R11). Apps whose availability in a newly used country is unknown are
// looked up at the next pass. The lookup uses the account's token, so the account's custom
// (B2B) apps are visible. A failed lookup changes nothing and is tried again at the next pass;
// it never fails the pass, and it is never made for a held account.

// metadataBatch bounds the apps one pass looks up (the rest follow at the next passes).
const metadataBatch = 1000

// refreshMetadata runs after a pass; perr is the pass's outcome (nothing is done after a
// failed pass). After a pass that brought no new pool, it looks only if the account's last
// look found nothing to do more than metadataRecheck ago, or the countries in use changed
// since: the two reads of what is missing cost as much as the rest of a quiet pass's reads.
func (s *Scheduler) refreshMetadata(ctx context.Context, acct *model.Account, res passResult, perr error) {
	if perr != nil || ctx.Err() != nil {
		return
	}
	countries, err := s.countriesInUse(ctx)
	if err != nil {
		s.log.Warn("app metadata lookup failed; it is tried again at the next pass", "account", acct.ID, "error", err)
		return
	}
	inUse := strings.Join(countries, ",")
	if !res.newPools && s.metadataComplete(acct.ID, inUse) {
		return
	}
	complete, err := s.lookupMetadata(ctx, acct.ID)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("app metadata lookup failed; it is tried again at the next pass", "account", acct.ID, "error", err)
	}
	s.metadataLooked(acct.ID, inUse, complete && err == nil)
}

// metadataRecheck is how long after a look that found nothing missing the next pass looks
// again (a part of Config.MetadataRefresh, the age at which metadata is looked up anew).
func (s *Scheduler) metadataRecheck() time.Duration {
	return min(time.Hour, s.cfg.MetadataRefresh/24)
}

// metadataCheck is when an account's last look found nothing missing, and for which countries.
type metadataCheck struct {
	at        time.Time
	countries string
}

// metadataComplete reports whether the account's apps were found complete, for the countries
// inUse, less than metadataRecheck ago.
func (s *Scheduler) metadataComplete(accountID int64, inUse string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.metaChecked[accountID]
	return ok && c.countries == inUse && time.Since(c.at) < s.metadataRecheck()
}

// metadataLooked remembers the outcome of an account's look (complete: nothing was missing).
func (s *Scheduler) metadataLooked(accountID int64, inUse string, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if complete {
		s.metaChecked[accountID] = metadataCheck{at: time.Now(), countries: inUse}
	} else {
		delete(s.metaChecked, accountID)
	}
}

// RefreshMetadata looks up, now, what an account's apps are missing (as after a pass): metadata
// missing or older than Config.MetadataRefresh, and availability in countries in use. It does
// nothing for a held, removed or unusable account.
func (s *Scheduler) RefreshMetadata(ctx context.Context, accountID int64) error {
	_, err := s.lookupMetadata(ctx, accountID)
	return err
}

// lookupMetadata looks up what the account's apps are missing, and reports whether nothing
// was (no app needed a lookup).
func (s *Scheduler) lookupMetadata(ctx context.Context, accountID int64) (bool, error) {
	a, err := s.db.AccountByID(ctx, accountID) // fresh: the pass may have learnt its country
	if err != nil {
		return false, err
	}
	now, err := s.db.ClockNow(ctx)
	if err != nil {
		return false, err
	}
	if a.RemovedAt != nil || a.HeldAt(now) || !a.EffectiveHealth(now).Usable() {
		return false, nil
	}
	tok, err := s.token(a)
	if err != nil {
		return false, err
	}
	stale, err := s.db.AppsNeedingMetadata(ctx, a.ID, now.Add(-s.cfg.MetadataRefresh), metadataBatch)
	if err != nil {
		return false, err
	}
	countries, err := s.countriesInUse(ctx)
	if err != nil {
		return false, err
	}
	unknown, err := s.db.AppsMissingAvailability(ctx, a.ID, countries, metadataBatch)
	if err != nil {
		return false, err
	}
	if len(stale) == 0 && len(unknown) == 0 {
		return true, nil
	}
	if len(stale) > 0 {
		ids := make([]string, len(stale))
		for i, app := range stale {
			ids[i] = app.AdamID
		}
		found, err := s.api.LookupApps(ctx, tok, a.CountryCode, ids)
		if err != nil {
			return false, err
		}
		rows := make([]db.AppMetadata, 0, len(stale))
		for _, app := range stale {
			m, ok := found[app.AdamID]
			r := db.AppMetadata{AppID: app.ID, Found: ok}
			if ok {
				r.Name, r.BundleID, r.IconURL = m.Name, m.BundleID, m.IconURL
				r.MinimumOSVersion, r.Version = m.MinimumOSVersion, m.Version
				r.IsB2B, r.IsFree = m.B2B, m.Free
				r.Platforms = model.JoinPlatforms(platforms(m.Platforms))
			}
			rows = append(rows, r)
		}
		if err := s.db.SetAppMetadata(ctx, rows, now); err != nil {
			return false, err
		}
	}
	if len(countries) == 0 {
		return false, nil
	}
	// Availability: the refreshed apps in every country, and the apps not known yet in some.
	byAdam := map[string]int64{}
	var ids []string
	for _, app := range append(stale, unknown...) {
		if _, dup := byAdam[app.AdamID]; !dup {
			byAdam[app.AdamID] = app.ID
			ids = append(ids, app.AdamID)
		}
	}
	sold, err := s.api.Availability(ctx, tok, ids, countries)
	if err != nil {
		// Record nothing rather than a partial answer that would read as "not sold".
		return false, err
	}
	rows := make([]model.AppCountry, 0, len(ids)*len(countries))
	for _, adam := range ids {
		in := map[string]bool{}
		for _, c := range sold[adam] {
			in[strings.ToUpper(c)] = true
		}
		for _, c := range countries {
			rows = append(rows, model.AppCountry{AppID: byAdam[adam], CountryCode: c, Available: in[c], CheckedAt: now})
		}
	}
	return false, s.db.SetAvailability(ctx, rows)
}

// countriesRead is how long the countries in use are kept between reads (never longer than
// Config.MetadataRefresh, how old metadata may get).
const countriesRead = time.Minute

// countries is the last read of the countries in use.
type countries struct {
	mu   sync.Mutex
	list []string
	at   time.Time
}

// countriesInUse is db.CountriesInUse, read at most once every countriesRead: the read looks
// at every live account and active device, and after every pass it would cost more with each
// account added. A country that comes into use is looked up at the passes after the next read.
func (s *Scheduler) countriesInUse(ctx context.Context) ([]string, error) {
	c := &s.countries
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && time.Since(c.at) < min(countriesRead, s.cfg.MetadataRefresh) {
		return c.list, nil
	}
	list, err := s.db.CountriesInUse(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []string{}
	}
	c.list, c.at = list, time.Now()
	return list, nil
}
