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

// cacheShards spreads the decision cache over locks: every PUBLISH reads
// it, and one LRU's lock (a hit moves the entry to the front) would
// serialise the node's publishers.
const cacheShards = 32

// decisionCache is a sharded LRU of one revision's decisions.
type decisionCache struct {
	seed   maphash.Seed
	shards [cacheShards]*lru.Cache[cacheKey, Decision]
}

func newDecisionCache(size int) *decisionCache {
	c := &decisionCache{seed: maphash.MakeSeed()}
	per := max((size+cacheShards-1)/cacheShards, 1)
	for i := range c.shards {
		c.shards[i], _ = lru.New[cacheKey, Decision](per) // fails only for a size below 1
	}
	return c
}

func (c *decisionCache) shard(k cacheKey) *lru.Cache[cacheKey, Decision] {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.subject)
	h.WriteByte(byte(k.action))
	h.WriteString(k.channel)
	return c.shards[h.Sum64()%cacheShards]
}

func (c *decisionCache) Get(k cacheKey) (Decision, bool) { return c.shard(k).Get(k) }

func (c *decisionCache) Add(k cacheKey, d Decision) { c.shard(k).Add(k, d) }
