package fanout

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// Covering patterns. Redis matches every PUBLISH, whoever's, against every
// pattern subscribed on the server, so one tenant holding thousands of
// patterns would slow every tenant's publishes. Once a tenant's clients on
// this node hold more than a threshold of distinct patterns, the hub
// subscribes one covering pattern upstream for the tenant (every channel
// under its prefix) instead, and matches the messages it brings against
// the tenant's patterns here, with the literal-prefix index: each pattern
// a message matches is delivered to its clients as a pmessage of that
// pattern, as if it were subscribed upstream. Redis then matches one
// pattern per covered tenant.
//
// Switching between the two is exact: the new subscriptions are made
// first, and the hub switches on the engine's goroutine at the point of
// the stream where Redis confirmed the last of them (SubscribeThen), so
// every message before that point is served by the old subscriptions and
// every message after it by the new ones, which already hold; then the old
// ones are unsubscribed, and their copies meanwhile are dropped.

// Switcher is the part of an engine covering needs (the Redis engine has
// it; the memory engine indexes patterns itself and needs no covering).
type Switcher interface {
	SubscribeThen(ctx context.Context, kind upstream.Kind, names []string, at func()) error
}

// PrefixedNames is a Namespace whose tenant's names carry one upstream
// prefix: the patterns that start with it can be covered.
type PrefixedNames interface {
	UpstreamPrefix() string // "" when names are not rewritten
}

// coverGroup is one tenant's coverable patterns on this node.
type coverGroup struct {
	prefix string // the tenant's upstream prefix
	cover  string // the covering pattern as subscribed upstream
	// held is the cover as a pattern matching what it matches (the
	// prefix escaped, then *), under which Hub.heldCovers counts it.
	held  string
	owner string
	names Namespace

	// sem is held while the group's patterns are subscribed, released or
	// switched: a tenant's pattern subscriptions on one node take their
	// turn.
	sem chan struct{}
	// covering says that the cover serves the group: the patterns'
	// own copies are dropped. It flips on the engine's goroutine.
	covering atomic.Bool
	n        int // the group's entries; guarded by Hub.mu
}

// coverPattern is the covering pattern of a prefix: every channel that
// starts with it. Its first byte is written as a set ("[\a]cme:*" for
// "acme:"), which the tenant's own patterns, always written with the
// prefix escaped (EscapeGlob), never are: a client's pattern is never the
// cover, and the two never share an upstream subscription.
func coverPattern(prefix string) string {
	return "[\\" + prefix[:1] + "]" + upstream.EscapeGlob(prefix[1:]) + "*"
}

// CoverPatternsOver sets the threshold: once a tenant's clients on this node
// hold more than n distinct patterns, one covering pattern upstream serves
// them all. 0 never covers. It is set before the hub is used, and applies
// only to an engine that can switch (Switcher).
func (h *Hub) CoverPatternsOver(n int) {
	if s, ok := h.broker.(Switcher); ok && n > 0 {
		h.switcher, h.coverOver = s, n
	}
}

// groupOf is the cover group a subscription belongs to, made on first use;
// nil for a name that is not a pattern under its tenant's prefix. It is
// called with h.mu held. A tenant's prefix is fixed while the node runs.
func (h *Hub) groupOf(r Subscription) *coverGroup {
	if h.switcher == nil || r.Kind != upstream.KindPattern {
		return nil
	}
	p, ok := r.Names.(PrefixedNames)
	if !ok {
		return nil
	}
	prefix := p.UpstreamPrefix()
	if prefix == "" || !strings.HasPrefix(upstream.LiteralPrefix(r.Upstream), prefix) {
		return nil
	}
	g := h.groups[prefix]
	if g == nil {
		g = &coverGroup{prefix: prefix, cover: coverPattern(prefix), held: upstream.EscapeGlob(prefix) + "*",
			owner: r.Owner, names: r.Names, sem: make(chan struct{}, 1)}
		h.groups[prefix] = g
		h.covers[g.cover] = g // its messages are dropped while it does not serve
	}
	return g
}

// lockGroups takes the turn of every group among reqs, in prefix order.
func (h *Hub) lockGroups(ctx context.Context, reqs []Subscription) (unlock func(), err error) {
	if h.switcher == nil || len(reqs) == 0 || reqs[0].Kind != upstream.KindPattern { // one kind each
		return func() {}, nil
	}
	h.mu.Lock()
	var groups []*coverGroup
	for _, r := range reqs {
		if g := h.groupOf(r); g != nil && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	h.mu.Unlock()
	return lockInOrder(ctx, groups)
}

func lockInOrder(ctx context.Context, groups []*coverGroup) (unlock func(), err error) {
	if len(groups) == 0 {
		return func() {}, nil // channels, most releases: nothing to sort or allocate
	}
	slices.SortFunc(groups, func(a, b *coverGroup) int { return cmp.Compare(a.prefix, b.prefix) })
	for i, g := range groups {
		select {
		case g.sem <- struct{}{}:
		case <-ctx.Done():
			unlockAll(groups[:i])
			return nil, ctx.Err()
		}
	}
	return func() { unlockAll(groups) }, nil
}

func unlockAll(groups []*coverGroup) {
	for _, g := range groups {
		<-g.sem
	}
}

// groupsOf lists the groups of entries, once each.
func groupsOf(entries []*Entry) []*coverGroup {
	var groups []*coverGroup
	for _, e := range entries {
		if e.group != nil && !slices.Contains(groups, e.group) {
			groups = append(groups, e.group)
		}
	}
	return groups
}

// rebalance switches the groups whose size crossed a threshold; the caller
// holds their turns. Switching in happens over the threshold, switching
// out at half of it or less, so that a count hovering at the threshold
// does not switch back and forth.
func (h *Hub) rebalance(groups []*coverGroup) {
	for _, g := range groups {
		h.mu.RLock()
		n := g.n
		h.mu.RUnlock()
		covering := g.covering.Load()
		switch {
		case !covering && n > h.coverOver:
			h.switchIn(g)
		case covering && n <= h.coverOver/2:
			h.switchOut(g)
		}
	}
}

// flip switches a group at the point of the engine's stream where Redis
// confirmed the new subscriptions, unless the switch was given up first.
type flip struct {
	mu              sync.Mutex
	g               *coverGroup
	to              bool // covering after the flip
	done, abandoned bool
}

func (f *flip) at() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.abandoned {
		f.done = true
		f.g.covering.Store(f.to)
	}
}

// settle reports whether the flip happened, and gives it up if not.
func (f *flip) settle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandoned = !f.done
	return f.done
}

// switchIn subscribes the group's cover, switches to it, then unsubscribes
// the patterns it covers. On failure the patterns keep serving.
func (h *Hub) switchIn(g *coverGroup) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	f := &flip{g: g, to: true}
	err := h.switcher.SubscribeThen(ctx, upstream.KindPattern, []string{g.cover}, f.at)
	if !f.settle() {
		h.log.Warn("covering a tenant's patterns failed; they stay subscribed one by one",
			zap.String("tenant", g.owner), zap.Error(err))
		h.unsubscribe(upstream.KindPattern, []string{g.cover})
		return
	}
	h.mu.Lock()
	h.heldCovers.Set(g.held, g)
	covered := h.groupEntries(g)
	h.mu.Unlock()
	h.unsubscribe(upstream.KindPattern, entryNames(covered)) // none was covered: covering was false
	for _, e := range covered {
		e.covered.Store(true)
	}
	h.log.Info("covering a tenant's patterns with one upstream pattern",
		zap.String("tenant", g.owner), zap.Int("patterns", len(covered)))
}

// switchOut subscribes the group's patterns one by one again, switches to
// them, then unsubscribes the cover. On failure the cover keeps serving.
func (h *Hub) switchOut(g *coverGroup) {
	h.mu.RLock()
	covered := h.groupEntries(g)
	h.mu.RUnlock()
	names := entryNames(covered)
	f := &flip{g: g, to: false}
	var err error
	if len(names) == 0 {
		f.at() // nothing to serve: the cover's messages match nothing
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		err = h.switcher.SubscribeThen(ctx, upstream.KindPattern, names, f.at)
		cancel()
	}
	if !f.settle() {
		h.log.Warn("uncovering a tenant's patterns failed; the covering pattern stays",
			zap.String("tenant", g.owner), zap.Error(err))
		h.unsubscribe(upstream.KindPattern, names)
		return
	}
	for _, e := range covered {
		e.covered.Store(false)
	}
	h.unsubscribe(upstream.KindPattern, []string{g.cover})
	h.mu.Lock()
	h.heldCovers.Delete(g.held)
	h.mu.Unlock()
	h.log.Info("a tenant's patterns are subscribed one by one again",
		zap.String("tenant", g.owner), zap.Int("patterns", len(covered)))
}

// entryNames are the entries' own upstream names.
func entryNames(entries []*Entry) []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.key.name
	}
	return names
}

// groupEntries lists the entries of a group; the caller holds h.mu.
func (h *Hub) groupEntries(g *coverGroup) []*Entry {
	var list []*Entry
	h.patterns.All(func(_ string, e *Entry) {
		if e.group == g {
			list = append(list, e)
		}
	})
	return list
}

// unsubscribe unsubscribes names upstream, logging a failure: the engine
// keeps a name it could not unsubscribe, and its copies are dropped.
func (h *Hub) unsubscribe(kind upstream.Kind, names []string) {
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := h.broker.Unsubscribe(ctx, kind, names...); err != nil {
		h.log.Warn("upstream unsubscribe failed", zap.Stringer("kind", kind), zap.Strings("names", names), zap.Error(err))
	}
}

// dispatchCovered fans a message of a group's cover out to the group's
// patterns that match its channel, each as a pmessage of that pattern.
func (h *Hub) dispatchCovered(g *coverGroup, m *upstream.Message, k *kickList) *kickList {
	if !g.covering.Load() {
		return k // switching in: the patterns still serve
	}
	channel, ok := g.names.StripBytes(m.Channel)
	if !ok {
		h.log.Error("engine delivered a channel outside the covered namespace; dropped",
			zap.String("tenant", g.owner), zap.ByteString("channel", m.Channel))
		return k
	}
	matched := matchLists.Get().(*matchList)
	h.mu.RLock()
	h.patterns.Matching(viewString(m.Channel), matched.collect(g))
	h.mu.RUnlock()
	for i, e := range matched.entries {
		k = h.fanOut(e, m, channel, k)
		matched.entries[i] = nil
	}
	matched.entries = matched.entries[:0]
	matchLists.Put(matched)
	return k
}

// matchList gathers the entries a covered message matches, so that the
// fan-out runs without the hub lock.
type matchList struct {
	entries []*Entry
	g       *coverGroup
	add     func(string, *Entry) // collects into entries; made once per list
}

var matchLists = sync.Pool{New: func() any {
	l := new(matchList)
	l.add = func(_ string, e *Entry) {
		if e.group == l.g {
			l.entries = append(l.entries, e)
		}
	}
	return l
}}

func (l *matchList) collect(g *coverGroup) func(string, *Entry) {
	l.g = g
	return l.add
}

// viewString views the engine's bytes as a string for a lookup that does
// not keep it.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
