package upstream

import (
	"container/list"
	"time"
)

// lru is a size-capped cache whose entries also expire. Upstream
// connections are keyed per repository, and a client with a wide allow-list
// names as many repositories as it likes: without a cap, every name would
// stay in memory (with its upstream token) for good. Not safe for
// concurrent use; the Pool holds its lock around it.
type lru[V any] struct {
	max       int
	sweepEach time.Duration
	lastSweep time.Time
	order     *list.List // front: most recently used
	items     map[string]*list.Element
}

type lruItem[V any] struct {
	key     string
	val     V
	expires time.Time
}

func newLRU[V any](max int, sweepEach time.Duration) *lru[V] {
	return &lru[V]{max: max, sweepEach: sweepEach, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the live entry for key; an expired one is dropped.
func (c *lru[V]) get(key string, now time.Time) (V, bool) {
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	it := el.Value.(*lruItem[V])
	if !now.Before(it.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return it.val, true
}

// put stores val until expires, sweeping expired entries now and then and
// evicting the least recently used ones beyond the cap.
func (c *lru[V]) put(key string, val V, expires, now time.Time) {
	if now.Sub(c.lastSweep) >= c.sweepEach {
		c.sweep(now)
	}
	if el, ok := c.items[key]; ok {
		it := el.Value.(*lruItem[V])
		it.val, it.expires = val, expires
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[V]{key: key, val: val, expires: expires})
	for c.order.Len() > c.max {
		c.removeElement(c.order.Back())
	}
}

func (c *lru[V]) remove(key string) {
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

func (c *lru[V]) removeElement(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*lruItem[V]).key)
}

func (c *lru[V]) sweep(now time.Time) {
	c.lastSweep = now
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if !now.Before(el.Value.(*lruItem[V]).expires) {
			c.removeElement(el)
		}
		el = next
	}
}

func (c *lru[V]) len() int { return c.order.Len() }
