package upstream

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// slotSubscribers hold a cluster's shard channels: one connection per hash
// slot in use, on the primary that owns the slot. Redis refuses an
// SSUBSCRIBE whose channels span slots, and a subscriber resubscribes all of
// a connection's channels in one command when it reconnects, so a
// connection never holds channels of two slots.
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
		var w []chan struct{}
		var f func()
		if s.sub == nil {
			s.sub, w, f = ss.connect(s, group)
		} else {
			w, f = s.sub.send(ctx, KindShard, group)
		}
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

// connect opens the slot's connection with its first names: every dial
// goes to the primary that owns the slot then, and the receive loop
// subscribes the connection to the names it holds, these first.
func (ss *slotSubscribers) connect(s *slotSubscriber, names []string) (sub *subscriber, waits []chan struct{}, forget func()) {
	key := names[0] // any name of the slot locates it
	sub = newSubscriber(ss.r, func(ctx context.Context, _ string) (net.Conn, error) { return dialSlotOwner(ctx, ss.cluster, key) })
	waits = sub.expect(KindShard.SubscribeVerb(), names, nil)
	sub.hold(KindShard, names)
	sub.dropped = func(string) { go ss.moved(s, sub) }
	ss.r.start(sub)
	return sub, waits, func() { sub.forget(KindShard.SubscribeVerb(), names, waits) }
}

// moved replaces a slot's connection after Redis unsubscribed it because
// the slot moved to another shard, or after a subscribe went unconfirmed
// or was answered MOVED by the slot's old owner: a fresh
// slot map, a new connection to the slot's owner, every name subscribed
// again there, until Redis confirms them or the engine closes.
func (ss *slotSubscribers) moved(s *slotSubscriber, old *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := ss.r.ctx
	for attempt := 0; !s.closed && s.sub == old && ctx.Err() == nil; attempt++ {
		// go-redis reloads the slot map in the background: give it time.
		ss.cluster.ReloadState(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(250*time.Millisecond<<attempt, 2*time.Second)):
		}
		if old != nil {
			old.close()
		}
		s.sub = nil
		if len(s.names) == 0 {
			return
		}
		sub, waits, forget := ss.connect(s, mapKeys(s.names))
		s.sub = sub
		wctx, cancel := context.WithTimeout(ctx, ss.r.timeout)
		err := awaitConfirmations(wctx, KindShard.SubscribeVerb(), waits, forget)
		cancel()
		if err == nil {
			return
		}
		old = sub
	}
}

// unconfirmed reconnects the slots of names whose subscribe Redis did not
// confirm in time.
func (ss *slotSubscribers) unconfirmed(names []string) {
	for slot := range ss.bySlot(names) {
		ss.mu.Lock()
		s := ss.slots[slot]
		ss.mu.Unlock()
		if s == nil {
			continue
		}
		s.mu.Lock()
		sub := s.sub
		s.mu.Unlock()
		go ss.moved(s, sub)
	}
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
		if s.sub != nil {
			s.sub.close()
		}
		return nil
	}
	return s.sub.unsubscribe(ctx, KindShard, names)
}

// sync syncs every slot's connection (see subscriber.sync).
func (ss *slotSubscribers) sync(ctx context.Context) error {
	ss.mu.Lock()
	var subs []*subscriber
	for _, s := range ss.slots {
		s.mu.Lock()
		if s.sub != nil {
			subs = append(subs, s.sub)
		}
		s.mu.Unlock()
	}
	ss.mu.Unlock()
	return syncAll(ctx, subs)
}

func (ss *slotSubscribers) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.slots {
		s.mu.Lock()
		s.closed = true
		if s.sub != nil {
			s.sub.close()
		}
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
