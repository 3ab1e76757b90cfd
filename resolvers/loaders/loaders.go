// Package loaders holds the per-request dataloaders through which every relation between
// GraphQL types is read, so that a page of any size costs a small, constant number of SQL
// statements: the loads of one level of the query are collected for a short wait and served
// by one statement per relation.
//
// A request gets fresh loaders (Middleware); resolvers reach them with For(ctx). Batches are
// bounded, results come back in key order, and a failed load is not cached, so a retry within
// the same request asks the database again.
package loaders

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"orchard/db"
	"orchard/model"
)

const (
	// wait is how long a loader collects keys before it queries: long enough for the
	// concurrently running resolvers of one query level to join the batch.
	wait = 2 * time.Millisecond
	// maxBatch bounds one statement's IN list or UNION.
	maxBatch = 100
	// maxPrefill bounds the keys one prefill statement serves: a page of 100 items with a
	// nested page of two under each fits, and a nested connection's UNION ALL of one term per
	// parent stays well below SQLite's 500 terms per compound SELECT.
	maxPrefill = 250
)

// Loaders are one request's dataloaders.
type Loaders struct {
	AccountsByID    *Loader[int64, *model.Account]
	AppsByID        *Loader[int64, *model.App]
	PoolsByID       *Loader[int64, *model.LicensePool]
	AssignmentsByID *Loader[int64, *model.LicenseAssignment]
	DevicesByID     *Loader[int64, *model.Device]
	UsersByID       *Loader[int64, *model.User]
	GroupsByID      *Loader[int64, *model.Group]
	AuditEventsByID *Loader[int64, *model.AuditEvent]
	SyncRunsByID    *Loader[int64, *model.SyncRun]
	CommandsByID    *Loader[int64, *model.DeviceCommand]
	APIKeysByID     *Loader[int64, *model.APIKey]
	// AppCountries gives the countries an app is known to be sold in.
	CountriesByApp *Loader[int64, []string]
	// AppleUsersByUserIDs gives a user's Apple registrations, one per account.
	AppleUsersByUserIDs *Loader[int64, []*model.AppleUser]

	// Nested connections: one page of children per parent, and counts per parent.
	AssignmentsByParent      map[db.AssignmentParent]*Loader[ChildKey, *Children[model.LicenseAssignment]]
	CountAssignmentsByParent map[db.AssignmentParent]*Loader[ChildKey, int]
	PoolsByParent            map[db.PoolParent]*Loader[ChildKey, *Children[model.LicensePool]]
	CountPoolsByParent       map[db.PoolParent]*Loader[ChildKey, int]
	DeviceAppsByDevice       *Loader[ChildKey, *Children[model.DeviceApp]]
	CountDeviceAppsByDevice  *Loader[ChildKey, int]
	DevicesByUser            *Loader[ChildKey, *Children[model.Device]]
	CountDevicesByUser       *Loader[ChildKey, int]
	GroupsByUser             *Loader[ChildKey, *Children[model.Group]]
	CountGroupsByUser        *Loader[ChildKey, int]
	MembersByGroup           *Loader[ChildKey, *Children[model.User]]
	CountMembersByGroup      *Loader[ChildKey, int]
	SyncRunsByAccount        *Loader[ChildKey, *Children[model.SyncRun]]
	CountSyncRunsByAccount   *Loader[ChildKey, int]

	// Policy: labels, their groups, accounts and counts, their waiting holders, and the devices
	// of groups. A label's waiting holders are paged by position in the fair order, not by id:
	// a WaitingByLabel key's After is an offset.
	LabelsByID            *Loader[int64, *model.Label]
	LabelGroupIDs         *Loader[int64, []int64]
	LabelAccountIDs       *Loader[int64, []int64]
	CountLabelAssignments *Loader[int64, int]
	WaitingByLabel        *Loader[ChildKey, *Children[model.PolicyWaiting]]
	CountWaitingByLabel   *Loader[ChildKey, int]
	LicenseLabelsByGroup  *Loader[int64, []*model.Label]
	DevicesByGroup        *Loader[ChildKey, *Children[model.Device]]
	CountDevicesByGroup   *Loader[ChildKey, int]
}

// New builds a request's loaders over d.
func New(d *db.DB) *Loaders {
	l := &Loaders{
		AccountsByID:    byID(d.AccountsByID, func(v *model.Account) int64 { return v.ID }),
		AppsByID:        byID(d.AppsByID, func(v *model.App) int64 { return v.ID }),
		PoolsByID:       byID(d.PoolsByID, func(v *model.LicensePool) int64 { return v.ID }),
		AssignmentsByID: byID(d.AssignmentsByID, func(v *model.LicenseAssignment) int64 { return v.ID }),
		DevicesByID:     byID(d.DevicesByID, func(v *model.Device) int64 { return v.ID }),
		UsersByID:       byID(d.UsersByID, func(v *model.User) int64 { return v.ID }),
		GroupsByID:      byID(d.GroupsByID, func(v *model.Group) int64 { return v.ID }),
		AuditEventsByID: byID(d.AuditEventsByID, func(v *model.AuditEvent) int64 { return v.ID }),
		SyncRunsByID:    byID(d.SyncRunsByID, func(v *model.SyncRun) int64 { return v.ID }),
		CommandsByID:    byID(d.CommandsByID, func(v *model.DeviceCommand) int64 { return v.ID }),
		APIKeysByID:     byID(d.APIKeysByID, func(v *model.APIKey) int64 { return v.ID }),
		CountriesByApp:  newLoader(mapped(d.CountriesByApp)),

		AppleUsersByUserIDs: newLoader(mapped(d.AppleUsersByUserIDs)),

		AssignmentsByParent:      map[db.AssignmentParent]*Loader[ChildKey, *Children[model.LicenseAssignment]]{},
		CountAssignmentsByParent: map[db.AssignmentParent]*Loader[ChildKey, int]{},
		PoolsByParent:            map[db.PoolParent]*Loader[ChildKey, *Children[model.LicensePool]]{},
		CountPoolsByParent:       map[db.PoolParent]*Loader[ChildKey, int]{},
	}
	for _, p := range []db.AssignmentParent{db.AssignmentsOfAccount, db.AssignmentsOfPool, db.AssignmentsOfDevice, db.AssignmentsOfUser} {
		l.AssignmentsByParent[p] = children(func(ctx context.Context, filter string, first int, pages []db.ChildPage) (map[int64][]*model.LicenseAssignment, error) {
			return d.AssignmentsByParent(ctx, p, statuses(filter), first, pages)
		})
		l.CountAssignmentsByParent[p] = counts(func(ctx context.Context, filter string, parents []int64) (map[int64]int, error) {
			return d.CountAssignmentsByParent(ctx, p, statuses(filter), parents)
		})
	}
	for _, p := range []db.PoolParent{db.PoolsOfAccount, db.PoolsOfApp} {
		l.PoolsByParent[p] = children(func(ctx context.Context, _ string, first int, pages []db.ChildPage) (map[int64][]*model.LicensePool, error) {
			return d.PoolsByParent(ctx, p, first, pages)
		})
		l.CountPoolsByParent[p] = counts(func(ctx context.Context, _ string, parents []int64) (map[int64]int, error) {
			return d.CountPoolsByParent(ctx, p, parents)
		})
	}
	l.DeviceAppsByDevice = children(unfiltered(d.DeviceAppsByDevice))
	l.CountDeviceAppsByDevice = counts(unfilteredCount(d.CountDeviceAppsByDevice))
	l.DevicesByUser = children(unfiltered(d.DevicesByUser))
	l.CountDevicesByUser = counts(unfilteredCount(d.CountDevicesByUser))
	l.GroupsByUser = children(unfiltered(d.GroupsByUser))
	l.CountGroupsByUser = counts(unfilteredCount(d.CountGroupsByUser))
	l.MembersByGroup = children(unfiltered(d.MembersByGroup))
	l.CountMembersByGroup = counts(unfilteredCount(d.CountMembersByGroup))
	l.SyncRunsByAccount = children(unfiltered(d.SyncRunsByAccount))
	l.CountSyncRunsByAccount = counts(unfilteredCount(d.CountSyncRunsByAccount))
	l.LabelsByID = byID(d.LabelsByID, func(v *model.Label) int64 { return v.ID })
	l.LabelGroupIDs = newLoader(mapped(d.LabelGroupIDs))
	l.LabelAccountIDs = newLoader(mapped(d.LabelAccountIDs))
	l.CountLabelAssignments = newLoader(mapped(d.CountLabelAssignments))
	l.WaitingByLabel = children(unfiltered(d.WaitingByLabel))
	l.CountWaitingByLabel = counts(unfilteredCount(d.CountWaitingByLabel))
	l.LicenseLabelsByGroup = newLoader(mapped(d.LicenseLabelsByGroup))
	l.DevicesByGroup = children(unfiltered(d.DevicesByGroup))
	l.CountDevicesByGroup = counts(unfilteredCount(d.CountDevicesByGroup))
	return l
}

type ctxKey struct{}

// Middleware gives each request its own loaders, so nothing loaded is shared between
// requests (or callers).
func Middleware(d *db.DB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), d)))
	})
}

// NewContext returns ctx carrying fresh loaders (also used by tests).
func NewContext(ctx context.Context, d *db.DB) context.Context {
	return context.WithValue(ctx, ctxKey{}, New(d))
}

// NewLazyContext returns ctx carrying loaders that are made on first use (For), for each
// WebSocket response and subscription event: a subscription's response waits in its context
// for the next event, and an idle subscription then holds no set (New makes ~17 KB of them).
func NewLazyContext(ctx context.Context, d *db.DB) context.Context {
	return context.WithValue(ctx, ctxKey{}, &lazy{d: d})
}

// lazy is a set of loaders made on first use.
type lazy struct {
	once sync.Once
	d    *db.DB
	l    *Loaders
}

func (z *lazy) get() *Loaders {
	z.once.Do(func() { z.l = New(z.d) })
	return z.l
}

// Has reports whether ctx carries loaders.
func Has(ctx context.Context) bool {
	switch ctx.Value(ctxKey{}).(type) {
	case *Loaders, *lazy:
		return true
	}
	return false
}

// For returns the request's loaders.
func For(ctx context.Context) *Loaders {
	switch l := ctx.Value(ctxKey{}).(type) {
	case *Loaders:
		return l
	case *lazy:
		return l.get()
	}
	panic("loaders: no loaders in context; wrap the handler with loaders.Middleware")
}

// Load loads one key (from the primed values, else through the dataloader) and forgets a
// failure, so that errors are not cached.
func Load[K comparable, V any](ctx context.Context, l *Loader[K, V], key K) (V, error) {
	l.mu.RLock()
	v, ok := l.primed[key]
	l.mu.RUnlock()
	if ok {
		return v, nil
	}
	dl := l.dataloader()
	v, err := dl.Load(ctx, key)()
	if err != nil {
		dl.Clear(ctx, key)
	}
	return v, err
}

// LoadMany loads several keys of one parent's relation (a label's groups, its accounts): those
// primed from the cache, the others together, so that they join one batch rather than a batch
// each. It answers the values in key order; on a failure it forgets the failed keys (errors
// are not cached) and answers the first error.
func LoadMany[K comparable, V any](ctx context.Context, l *Loader[K, V], keys []K) ([]V, error) {
	out := make([]V, len(keys))
	var want []K
	var at []int
	l.mu.RLock()
	for i, k := range keys {
		if v, ok := l.primed[k]; ok {
			out[i] = v
		} else {
			want, at = append(want, k), append(at, i)
		}
	}
	l.mu.RUnlock()
	if len(want) == 0 {
		return out, nil
	}
	dl := l.dataloader()
	vs, errs := dl.LoadMany(ctx, want)()
	var first error
	for j, v := range vs {
		if errs != nil && errs[j] != nil {
			dl.Clear(ctx, want[j])
			if first == nil {
				first = errs[j]
			}
			continue
		}
		out[at[j]] = v
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func newLoader[K comparable, V any](fetch func(ctx context.Context, keys []K) []*dataloader.Result[V]) *Loader[K, V] {
	return &Loader[K, V]{batch: fetch}
}

// Prefill loads the keys that are not primed yet through the loader's own batch function, all
// at once (one statement per relation for up to maxPrefill keys), and primes them: the
// resolvers of a page's items then find them cached, however their goroutines are scheduled.
// A failed batch primes nothing, so the resolvers load (and report) on their own. It returns
// the values of all the keys it was given, primed before or now.
func Prefill[K comparable, V any](ctx context.Context, l *Loader[K, V], keys []K) map[K]V {
	out := make(map[K]V, len(keys))
	seen := make(map[K]bool, len(keys))
	var want []K
	l.mu.RLock()
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if v, ok := l.primed[k]; ok {
			out[k] = v
		} else {
			want = append(want, k)
		}
	}
	l.mu.RUnlock()
	for chunk := range slices.Chunk(want, maxPrefill) {
		res := l.batch(ctx, chunk)
		for i, r := range res {
			if r == nil || r.Error != nil {
				continue
			}
			l.Prime(ctx, chunk[i], r.Data)
			out[chunk[i]] = r.Data
		}
	}
	return out
}

// Loader is a dataloader with a second, read-mostly cache for primed values. A page's
// relations are primed in bulk before its fields resolve (see resolvers/prefetch.go); the
// hundreds of field resolvers that then look them up concurrently read that cache under a
// shared lock, instead of queueing on the dataloader's exclusive one.
//
// The dataloader and the cache are made when first needed: a request has a loader for every
// relation of the schema and uses a few, and with the prefetch, most requests never load
// through a dataloader at all (building all of them was half of the allocations of a small
// query).
type Loader[K comparable, V any] struct {
	batch  func(ctx context.Context, keys []K) []*dataloader.Result[V] // for Prefill
	once   sync.Once
	loader *dataloader.Loader[K, V] // made by the first load of a key not primed
	mu     sync.RWMutex
	primed map[K]V
}

// dataloader returns the loader's dataloader, made on the first call.
func (l *Loader[K, V]) dataloader() *dataloader.Loader[K, V] {
	l.once.Do(func() {
		l.loader = dataloader.NewBatchedLoader(l.batch, dataloader.WithWait[K, V](wait), dataloader.WithBatchCapacity[K, V](maxBatch))
	})
	return l.loader
}

// Prime puts a value in the cache.
func (l *Loader[K, V]) Prime(_ context.Context, key K, v V) {
	l.mu.Lock()
	if l.primed == nil {
		l.primed = map[K]V{}
	}
	l.primed[key] = v
	l.mu.Unlock()
}

// Cached reports whether a key was primed.
func (l *Loader[K, V]) Cached(key K) bool {
	l.mu.RLock()
	_, ok := l.primed[key]
	l.mu.RUnlock()
	return ok
}

// byID makes a loader of rows by id. Ids without a row load as nil (a dangling reference reads
// as null, not as an error).
func byID[T any](fetch func(context.Context, []int64) ([]*T, error), id func(*T) int64) *Loader[int64, *T] {
	return newLoader(func(ctx context.Context, keys []int64) []*dataloader.Result[*T] {
		rows, err := fetch(ctx, keys)
		out := make([]*dataloader.Result[*T], len(keys))
		if err != nil {
			for i := range out {
				out[i] = &dataloader.Result[*T]{Error: err}
			}
			return out
		}
		m := make(map[int64]*T, len(rows))
		for _, r := range rows {
			m[id(r)] = r
		}
		for i, k := range keys {
			out[i] = &dataloader.Result[*T]{Data: m[k]}
		}
		return out
	})
}

// mapped makes a batch function from a query that answers with a map by key.
func mapped[V any](fetch func(context.Context, []int64) (map[int64]V, error)) func(context.Context, []int64) []*dataloader.Result[V] {
	return func(ctx context.Context, keys []int64) []*dataloader.Result[V] {
		m, err := fetch(ctx, keys)
		out := make([]*dataloader.Result[V], len(keys))
		for i, k := range keys {
			out[i] = &dataloader.Result[V]{Data: m[k], Error: err}
		}
		return out
	}
}

// ChildKey asks for one parent's page of children: First items after the id After (for a
// label's waiting holders, after the first After of its fair order), among the children that
// pass Filter (for assignments, a sorted comma-separated status list).
type ChildKey struct {
	Parent int64
	First  int
	After  int64
	Filter string
}

// Children is one parent's page of children and whether more follow.
type Children[T any] struct {
	Items []*T
	More  bool
}

// StatusFilter renders an assignment status filter as a ChildKey filter.
func StatusFilter(s []model.AssignmentStatus) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

func statuses(filter string) []model.AssignmentStatus {
	if filter == "" {
		return nil
	}
	var out []model.AssignmentStatus
	for _, s := range strings.Split(filter, ",") {
		out = append(out, model.AssignmentStatus(s))
	}
	return out
}

type childFetch[T any] func(ctx context.Context, filter string, first int, pages []db.ChildPage) (map[int64][]*T, error)

func unfiltered[T any](f func(context.Context, int, []db.ChildPage) (map[int64][]*T, error)) childFetch[T] {
	return func(ctx context.Context, _ string, first int, pages []db.ChildPage) (map[int64][]*T, error) {
		return f(ctx, first, pages)
	}
}

func unfilteredCount(f func(context.Context, []int64) (map[int64]int, error)) func(context.Context, string, []int64) (map[int64]int, error) {
	return func(ctx context.Context, _ string, parents []int64) (map[int64]int, error) { return f(ctx, parents) }
}

// children makes a nested-connection loader: keys that share a page size and filter are
// served by one statement.
func children[T any](fetch childFetch[T]) *Loader[ChildKey, *Children[T]] {
	return newLoader(func(ctx context.Context, keys []ChildKey) []*dataloader.Result[*Children[T]] {
		out := make([]*dataloader.Result[*Children[T]], len(keys))
		type group struct {
			first  int
			filter string
		}
		byGroup := map[group][]int{}
		for i, k := range keys {
			g := group{k.First, k.Filter}
			byGroup[g] = append(byGroup[g], i)
		}
		for g, idx := range byGroup {
			pages := make([]db.ChildPage, len(idx))
			for j, i := range idx {
				pages[j] = db.ChildPage{ParentID: keys[i].Parent, After: keys[i].After}
			}
			m, err := fetch(ctx, g.filter, g.first, pages)
			for _, i := range idx {
				if err != nil {
					out[i] = &dataloader.Result[*Children[T]]{Error: err}
					continue
				}
				items := m[keys[i].Parent]
				c := &Children[T]{Items: items}
				if len(items) > g.first {
					c.Items, c.More = items[:g.first], true
				}
				out[i] = &dataloader.Result[*Children[T]]{Data: c}
			}
		}
		return out
	})
}

// counts makes a loader of child counts per parent; Key.First and Key.After are ignored.
func counts(fetch func(ctx context.Context, filter string, parents []int64) (map[int64]int, error)) *Loader[ChildKey, int] {
	return newLoader(func(ctx context.Context, keys []ChildKey) []*dataloader.Result[int] {
		out := make([]*dataloader.Result[int], len(keys))
		byFilter := map[string][]int{}
		for i, k := range keys {
			byFilter[k.Filter] = append(byFilter[k.Filter], i)
		}
		for f, idx := range byFilter {
			parents := make([]int64, len(idx))
			for j, i := range idx {
				parents[j] = keys[i].Parent
			}
			m, err := fetch(ctx, f, parents)
			for _, i := range idx {
				out[i] = &dataloader.Result[int]{Data: m[keys[i].Parent], Error: err}
			}
		}
		return out
	})
}
