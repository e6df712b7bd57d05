package policy

import (
	"hash/maphash"

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
	shards [cacheShards]*lru.Cache[cacheKey, Decision]
}

// shardSeed hashes channel names to shards (subjects hash once, at login).
var shardSeed = maphash.MakeSeed()

func newDecisionCache(size int) *decisionCache {
	c := &decisionCache{}
	per := max((size+cacheShards-1)/cacheShards, 1)
	for i := range c.shards {
		c.shards[i], _ = lru.New[cacheKey, Decision](per) // fails only for a size below 1
	}
	return c
}

func (c *decisionCache) shard(r *Request) *lru.Cache[cacheKey, Decision] {
	h := maphash.String(shardSeed, r.Channel) ^ r.Subject.hash ^ uint64(r.Action)
	return c.shards[h%cacheShards]
}

func (c *decisionCache) Get(r *Request) (Decision, bool) { return c.shard(r).Get(r.cacheKey()) }

func (c *decisionCache) Add(r *Request, d Decision) { c.shard(r).Add(r.cacheKey(), d) }
