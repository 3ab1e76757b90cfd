package apple

import (
	"container/list"
	"sync"
	"time"
)

// ttlLRU is a bounded map whose entries expire after a TTL and which evicts
// the least recently used entry when full. It is safe for concurrent use. It
// backs the metadata cache and the notification Deduper: both must stay
// bounded however long the process runs.
type ttlLRU[K comparable, V any] struct {
	mu    sync.Mutex
	cap   int
	ttl   time.Duration
	ll    *list.List // front = most recently used
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
}

func newTTLLRU[K comparable, V any](capacity int, ttl time.Duration) *ttlLRU[K, V] {
	return &ttlLRU[K, V]{cap: max(capacity, 1), ttl: ttl, ll: list.New(), items: make(map[K]*list.Element)}
}

// get returns the live value of k.
func (c *ttlLRU[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el := c.items[k]
	if el == nil {
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// put stores k → v until now+ttl.
func (c *ttlLRU[K, V]) put(k K, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v, now)
}

func (c *ttlLRU[K, V]) putLocked(k K, v V, now time.Time) {
	if el := c.items[k]; el != nil {
		e := el.Value.(*lruEntry[K, V])
		e.val, e.expires = v, now.Add(c.ttl)
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{key: k, val: v, expires: now.Add(c.ttl)})
	for c.ll.Len() > c.cap {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).key)
	}
}

// addIfAbsent stores k → v unless a live entry exists; it reports whether k
// was already present (atomically, for deduplication).
func (c *ttlLRU[K, V]) addIfAbsent(k K, v V, now time.Time) (present bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[k]; el != nil {
		e := el.Value.(*lruEntry[K, V])
		if now.Before(e.expires) {
			c.ll.MoveToFront(el)
			return true
		}
	}
	c.putLocked(k, v, now)
	return false
}

// remove forgets k.
func (c *ttlLRU[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[k]; el != nil {
		c.ll.Remove(el)
		delete(c.items, k)
	}
}

// len returns the number of entries (live or not yet collected).
func (c *ttlLRU[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
