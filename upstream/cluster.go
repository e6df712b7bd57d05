package upstream

import (
	"context"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// slotSubscribers hold a cluster's shard channels: one connection per hash
// slot in use, on the primary that owns the slot. Redis refuses an
// SSUBSCRIBE whose channels span slots, and go-redis resubscribes all of a
// connection's channels in one command when it reconnects, so a connection
// never holds channels of two slots.
type slotSubscribers struct {
	cluster *redis.ClusterClient
	r       *Redis

	mu    sync.Mutex
	slots map[int]*slotSubscriber
}

// slotSubscriber is the connection for one slot and the names it holds.
type slotSubscriber struct {
	mu     sync.Mutex
	sub    *subscriber
	names  map[string]struct{}
	closed bool
}

func newSlotSubscribers(c *redis.ClusterClient, r *Redis) *slotSubscribers {
	return &slotSubscribers{cluster: c, r: r, slots: make(map[int]*slotSubscriber)}
}

func (ss *slotSubscribers) bySlot(names []string) map[int][]string {
	groups := make(map[int][]string)
	for _, n := range names {
		slot := redisSlot(n)
		groups[slot] = append(groups[slot], n)
	}
	return groups
}

func (ss *slotSubscribers) send(ctx context.Context, names []string) ([]chan struct{}, func()) {
	var waits []chan struct{}
	var forgets []func()
	for slot, group := range ss.bySlot(names) {
		s := ss.lockSlot(slot)
		for _, n := range group {
			s.names[n] = struct{}{}
		}
		w, f := s.sub.send(ctx, KindShard, group)
		s.mu.Unlock()
		waits, forgets = append(waits, w...), append(forgets, f)
	}
	return waits, func() {
		for _, f := range forgets {
			f()
		}
	}
}

// lockSlot returns the slot's subscriber, locked, starting one if needed.
func (ss *slotSubscribers) lockSlot(slot int) *slotSubscriber {
	for {
		ss.mu.Lock()
		s := ss.slots[slot]
		if s == nil {
			s = &slotSubscriber{names: make(map[string]struct{})}
			s.sub = ss.newSubscriber(s)
			ss.slots[slot] = s
		}
		ss.mu.Unlock()
		s.mu.Lock()
		if !s.closed {
			return s
		}
		s.mu.Unlock() // emptied and closed meanwhile: start afresh
	}
}

func (ss *slotSubscribers) newSubscriber(s *slotSubscriber) *subscriber {
	sub := newSubscriber(ss.cluster.SSubscribe(context.Background()), ss.r.emitter(KindShard))
	sub.dropped = func(string) { go ss.moved(s, sub) }
	ss.r.start(sub)
	return sub
}

// moved replaces a slot's connection after Redis unsubscribed it because
// the slot moved to another shard: a fresh slot map, a new connection to
// the slot's new owner, every name subscribed again there.
func (ss *slotSubscribers) moved(s *slotSubscriber, old *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.sub != old {
		return // already replaced, for another name of the slot
	}
	ctx := context.Background()
	ss.cluster.ReloadState(ctx)
	s.sub = ss.newSubscriber(s)
	if len(s.names) > 0 {
		_, _ = s.sub.send(ctx, KindShard, mapKeys(s.names))
	}
	_ = old.ps.Close()
}

func (ss *slotSubscribers) unsubscribe(ctx context.Context, names []string) error {
	var firstErr error
	for slot, group := range ss.bySlot(names) {
		if err := ss.unsubscribeSlot(ctx, slot, group); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// unsubscribeSlot leaves names of one slot; a slot left without names
// closes its connection rather than keep it open for nothing.
func (ss *slotSubscribers) unsubscribeSlot(ctx context.Context, slot int, names []string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.slots[slot]
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		delete(s.names, n)
	}
	if len(s.names) == 0 {
		s.closed = true
		delete(ss.slots, slot)
		return s.sub.ps.Close()
	}
	return s.sub.unsubscribe(ctx, KindShard, names)
}

func (ss *slotSubscribers) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.slots {
		s.mu.Lock()
		s.closed = true
		_ = s.sub.ps.Close()
		s.mu.Unlock()
	}
}

func mapKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// clusterChannels lists active channels across the cluster. A classic
// subscription lives on the one node its client connected to, so every
// node is asked; a shard channel lives on the primaries.
func clusterChannels(ctx context.Context, c *redis.ClusterClient, kind Kind, pattern string) ([]string, error) {
	var mu sync.Mutex
	seen := make(map[string]struct{})
	err := forEachNode(ctx, c, kind, func(ctx context.Context, n *redis.Client) error {
		var names []string
		var err error
		if kind == KindShard {
			names, err = n.PubSubShardChannels(ctx, pattern).Result()
		} else {
			names, err = n.PubSubChannels(ctx, pattern).Result()
		}
		mu.Lock()
		defer mu.Unlock()
		for _, name := range names {
			seen[name] = struct{}{}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := mapKeys(seen)
	slices.Sort(out)
	return out, nil
}

// clusterNumSub adds up the subscriptions of every node.
func clusterNumSub(ctx context.Context, c *redis.ClusterClient, kind Kind, channels []string) (map[string]int64, error) {
	var mu sync.Mutex
	total := make(map[string]int64, len(channels))
	err := forEachNode(ctx, c, kind, func(ctx context.Context, n *redis.Client) error {
		var counts map[string]int64
		var err error
		if kind == KindShard {
			counts, err = n.PubSubShardNumSub(ctx, channels...).Result()
		} else {
			counts, err = n.PubSubNumSub(ctx, channels...).Result()
		}
		mu.Lock()
		defer mu.Unlock()
		for ch, k := range counts {
			total[ch] += k
		}
		return err
	})
	return total, err
}

func forEachNode(ctx context.Context, c *redis.ClusterClient, kind Kind, fn func(context.Context, *redis.Client) error) error {
	if kind == KindShard {
		return c.ForEachMaster(ctx, fn)
	}
	return c.ForEachShard(ctx, fn)
}
