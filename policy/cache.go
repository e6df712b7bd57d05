package policy

import (
	"hash/maphash"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey is everything a cacheable decision may depend on. Upstream
// names follow from tenant and channel; addresses, client names and the
// clock are not in it.
type cacheKey struct {
	subject string
	action  Action
	channel string
}

func (r *Request) cacheKey() cacheKey {
	return cacheKey{subject: r.Subject.key, action: r.Action, channel: r.Channel}
}

// flightKey names a request's decision among those in progress.
func (r *Request) flightKey() string {
	return r.Subject.key + "\x00" + r.Action.String() + "\x00" + r.Channel
}

// cacheShards spreads the decision cache over locks: every PUBLISH reads
// it, and one LRU's lock (a hit moves the entry to the front) would
// serialise the node's publishers.
const cacheShards = 32

// decisionCache is a sharded LRU of one revision's decisions.
type decisionCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	lru  *lru.Cache[cacheKey, Decision]
	hits atomic.Uint32
}

// promoteEvery: one hit in this many moves its entry to the front of its
// shard's LRU; the others only look (a read lock, no list move). Moving on
// every hit took the shard's write lock for every PUBLISH and, with
// thousands of channels, a cache miss to reach the list's nodes. An entry
// used often is still moved often, so what is evicted is what has not
// been used for a while, give or take.
const promoteEvery = 8

// shardSeed hashes channel names to shards (subjects hash once, at login).
var shardSeed = maphash.MakeSeed()

func newDecisionCache(size int) *decisionCache {
	c := &decisionCache{}
	per := max((size+cacheShards-1)/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].lru, _ = lru.New[cacheKey, Decision](per) // fails only for a size below 1
	}
	return c
}

func (c *decisionCache) shard(r *Request) *cacheShard {
	h := maphash.String(shardSeed, r.Channel) ^ r.Subject.hash ^ uint64(r.Action)
	return &c.shards[h%cacheShards]
}

func (c *decisionCache) Get(r *Request) (Decision, bool) {
	sh := c.shard(r)
	if sh.hits.Add(1)%promoteEvery == 0 {
		return sh.lru.Get(r.cacheKey())
	}
	return sh.lru.Peek(r.cacheKey())
}

func (c *decisionCache) Add(r *Request, d Decision) { c.shard(r).lru.Add(r.cacheKey(), d) }
