// Package fanout shares upstream subscriptions between the clients of one
// node and fans the engine's messages out to them. A Hub holds one engine
// subscription per (kind, upstream name), however many clients hold it, and
// queues each message, encoded once per protocol, to the Outbox of every
// member attached to it, on the engine's goroutine; each outbox's writer
// writes to its client.
//
// A client is, to the hub, its Outbox and the Deliveries its messages are
// counted in: the hub knows nothing else of it.
package fanout

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// Hub shares upstream subscriptions between the clients of one node: one
// engine subscription per (kind, upstream name), however many local clients
// hold it. The engine hands each burst of messages to dispatch, on the
// engine's own goroutine, which fans it out to the outboxes of the members
// attached to it: from the upstream socket to the outboxes without
// changing hands.
type Hub struct {
	broker  upstream.Broker
	timeout time.Duration
	log     *zap.Logger

	mu       sync.RWMutex
	entries  map[subKey]*Entry
	patterns upstream.Patterns[*Entry] // KindPattern entries by upstream pattern, for receiver counting

	// Covering (cover.go): set before use, nil and 0 when off.
	switcher   Switcher
	coverOver  int
	groups     map[string]*coverGroup         // by tenant prefix; guarded by mu
	covers     map[string]*coverGroup         // by cover pattern, for dispatch; guarded by mu
	heldCovers upstream.Patterns[*coverGroup] // covers the engine holds, for counting; guarded by mu
}

type subKey struct {
	kind upstream.Kind
	name string // upstream name
}

// Namespace maps the upstream channel names of a subscription's messages
// back to the names its clients know; ok is false for a channel outside the
// namespace, which must never reach a client. The name returned is a part
// of channel (the engine's buffer), not a copy.
type Namespace interface {
	StripBytes(channel []byte) (name []byte, ok bool)
}

// Subscription names one upstream subscription a client wants.
type Subscription struct {
	Kind       upstream.Kind
	ClientName string    // the name as the clients write it (messages show it)
	Upstream   string    // the name on the engine
	Names      Namespace // maps the channels of messages back
	Owner      string    // whose names these are (the tenant), for logs
}

// Entry is one upstream subscription, shared by the members attached to it.
type Entry struct {
	key        subKey
	clientName string // the name as the tenant's clients write it
	names      Namespace
	owner      string
	group      *coverGroup // the tenant's coverable patterns it is one of, or nil
	// covered says that the engine holds no subscription of the entry's
	// own: its group's cover serves it.
	covered atomic.Bool

	// mu orders fan-out against attach and detach: fan-out holds it for
	// reading while it pushes to every member, so a member sees its
	// subscribe confirmation before any message and no message after its
	// unsubscribe confirmation.
	mu      sync.RWMutex
	members []*Membership
	count   atomic.Int64 // len(members), readable without mu for counting

	// Guarded by Hub.mu.
	refs    int
	closing chan struct{} // set when the last reference is gone

	ready chan struct{} // closed once the engine answered the subscribe
	err   error         // the engine's answer; written before ready closes
}

// Kind is the entry's kind of subscription.
func (e *Entry) Kind() upstream.Kind { return e.key.kind }

// Name is the entry's name on the engine.
func (e *Entry) Name() string { return e.key.name }

// ClientName is the entry's name as its clients write it.
func (e *Entry) ClientName() string { return e.clientName }

// Membership is one client's place in an entry.
type Membership struct {
	out   *Outbox
	e     *Entry
	idx   int    // position in e.members, guarded by e.mu
	since uint64 // engine messages up to this sequence predate the subscribe

	counts *Deliveries // the client's when it subscribed
}

// Entry is the subscription the membership is in.
func (mb *Membership) Entry() *Entry { return mb.e }

// Deliveries count the messages queued to clients (one per receiving
// client) and their payload bytes. A fan-out adds to them once per run of
// members that share one, not per delivery. They are on a cache line of
// their own, so that the fan-out does not contend with other counters.
type Deliveries struct {
	_               [64]byte
	Messages, Bytes atomic.Int64
	_               [64]byte
}

// NewHub fans out the broker's messages: it becomes the broker's handler.
func NewHub(b upstream.Broker, timeout time.Duration, log *zap.Logger) *Hub {
	h := &Hub{
		broker: b, timeout: timeout, log: log,
		entries: make(map[subKey]*Entry),
		groups:  make(map[string]*coverGroup), covers: make(map[string]*coverGroup),
	}
	b.SetHandler(h.dispatch)
	return h
}

// dispatch fans a burst of engine messages out. It may run on several
// goroutines at once (one per upstream connection), never blocks, and holds
// locks only for reading. The whole burst is queued before any writer is
// woken, each once: a subscriber's writer finds the burst queued and
// writes it in one go, instead of waking for its first message and
// writing the rest piecemeal.
func (h *Hub) dispatch(burst []upstream.Message) {
	var k *kickList // from the pool once a kick is owed
	for i := range burst {
		k = h.dispatchOne(&burst[i], k)
	}
	if k == nil {
		return
	}
	for i, o := range k.owed {
		o.kick()
		k.owed[i] = nil
	}
	k.owed = k.owed[:0]
	kickLists.Put(k)
}

// kickList holds the outboxes a dispatch owes a kick, each once.
type kickList struct{ owed []*Outbox }

var kickLists = sync.Pool{New: func() any { return new(kickList) }}

func (h *Hub) dispatchOne(m *upstream.Message, k *kickList) *kickList {
	name := m.Channel
	if m.Kind == upstream.KindPattern {
		name = m.Pattern
	}
	h.mu.RLock()
	e := h.entries[subKey{m.Kind, string(name)}] // does not allocate
	var g *coverGroup
	if e == nil && m.Kind == upstream.KindPattern {
		g = h.covers[string(name)]
	}
	h.mu.RUnlock()
	switch {
	case g != nil:
		return h.dispatchCovered(g, m, k)
	case e == nil:
		return k // unsubscribed while the message was in flight
	case e.group != nil && e.group.covering.Load():
		return k // the cover serves it, not the pattern's own copy
	}
	channel, ok := e.names.StripBytes(m.Channel)
	if !ok {
		h.log.Error("engine delivered a channel outside the subscription's namespace; dropped",
			zap.String("tenant", e.owner), zap.ByteString("channel", m.Channel))
		return k
	}
	return h.fanOut(e, m, channel, k)
}

// fanOut queues a message to the members of e, as its clients name it.
func (h *Hub) fanOut(e *Entry, m *upstream.Message, channel []byte, k *kickList) *kickList {
	frames := messageFrames{kind: m.Kind, pattern: e.clientName, channel: channel, payload: m.Payload}
	counted := counter{payload: int64(len(m.Payload))}
	e.mu.RLock()
	for _, mb := range e.members {
		// A shared subscription may still hold messages received before
		// this member subscribed; Redis would not deliver those to it.
		if m.Seq <= mb.since {
			continue
		}
		kick, ok := mb.out.queueMessage(&frames)
		if kick {
			if k == nil {
				k = kickLists.Get().(*kickList)
			}
			k.owed = append(k.owed, mb.out)
		}
		if ok {
			counted.add(mb.counts)
		}
	}
	e.mu.RUnlock()
	counted.flush()
	return k
}

// counter counts a fan-out's deliveries: members of one entry nearly all
// share their Deliveries (a tenant's; shared channels excepted), so they
// are added to once per run of members sharing them.
type counter struct {
	d       *Deliveries
	n       int64
	payload int64
}

func (c *counter) add(d *Deliveries) {
	if d != c.d {
		c.flush()
		c.d = d
	}
	c.n++
}

func (c *counter) flush() {
	if c.n > 0 && c.d != nil {
		c.d.Messages.Add(c.n)
		c.d.Bytes.Add(c.n * c.payload)
	}
	c.n = 0
}

// Acquire takes one reference on the entry of every subscription, subscribing
// upstream where none exists yet, and returns once the engine confirmed all
// of them. All subscriptions share one kind. On error no reference is kept.
func (h *Hub) Acquire(ctx context.Context, reqs []Subscription) ([]*Entry, error) {
	unlock, err := h.lockGroups(ctx, reqs)
	if err != nil {
		return nil, err
	}
	defer unlock()
	got, created, joined, err := h.reserve(ctx, reqs)
	if err != nil {
		return nil, err
	}
	// A pattern of a covered tenant is served by its cover: it needs no
	// subscription of its own, only the barrier below.
	created, covered := splitCovered(created)
	if len(created) > 0 {
		err := h.subscribe(ctx, created)
		for _, e := range created {
			e.err = err
			close(e.ready)
		}
	}
	for _, e := range slices.Concat(created, joined) { // not covered: no one confirms those yet
		select {
		case <-e.ready:
			err = e.err
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			h.confirmCovered(covered, err)
			h.release(got)
			return nil, err
		}
	}
	// Joining a subscription other clients hold, subscribe it again: the
	// engine confirms once it delivered everything it received before, so
	// that the member, attached after this, gets nothing published before
	// its SUBSCRIBE, as with Redis. (The memory engine has nothing in
	// flight: for it, this costs a map update.) A covered pattern's
	// barrier is its cover.
	if len(joined) > 0 || len(covered) > 0 {
		err := h.subscribe(ctx, slices.Concat(joined, covered))
		h.confirmCovered(covered, err)
		if err != nil {
			h.release(got)
			return nil, err
		}
	}
	h.rebalance(groupsOf(got))
	return got, nil
}

// splitCovered takes, out of created, the entries of covered groups: they
// are served by their group's cover from the start.
func splitCovered(created []*Entry) (own, covered []*Entry) {
	for _, e := range created {
		if e.group != nil && e.group.covering.Load() {
			e.covered.Store(true)
			covered = append(covered, e)
		} else {
			own = append(own, e)
		}
	}
	return own, covered
}

// confirmCovered ends the wait for covered entries the caller created.
func (h *Hub) confirmCovered(covered []*Entry, err error) {
	for _, e := range covered {
		e.err = err
		close(e.ready)
	}
}

// subscribe subscribes upstream, again if need be, what entries of one
// kind are served by: their own names, or their groups' covers (once each).
func (h *Hub) subscribe(ctx context.Context, entries []*Entry) error {
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		name := e.key.name
		if e.covered.Load() {
			if name = e.group.cover; slices.Contains(names, name) {
				continue
			}
		}
		names = append(names, name)
	}
	sctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	return h.broker.Subscribe(sctx, entries[0].key.kind, names...)
}

// reserve takes the references under the hub lock, waiting out entries whose
// upstream unsubscribe is still in flight so that the engine sees subscribe
// and unsubscribe of one name in the order they were decided. Of got,
// created are the entries it made, joined those that others held.
func (h *Hub) reserve(ctx context.Context, reqs []Subscription) (got, created, joined []*Entry, err error) {
	keys := make([]subKey, len(reqs))
	for i, r := range reqs {
		keys[i] = subKey{r.Kind, r.Upstream}
	}
	for {
		h.mu.Lock()
		if closing := h.closingEntry(keys); closing != nil {
			h.mu.Unlock()
			select {
			case <-closing:
				continue
			case <-ctx.Done():
				return nil, nil, nil, ctx.Err()
			}
		}
		got = make([]*Entry, len(reqs))
		seen := make(map[*Entry]bool, len(reqs)) // a name given twice is created or joined once
		for i, r := range reqs {
			k := keys[i]
			e := h.entries[k]
			switch {
			case e == nil:
				e = &Entry{key: k, clientName: r.ClientName, names: r.Names, owner: r.Owner, ready: make(chan struct{})}
				h.entries[k] = e
				if k.kind == upstream.KindPattern {
					h.patterns.Set(k.name, e)
				}
				if e.group = h.groupOf(r); e.group != nil {
					e.group.n++
				}
				created = append(created, e)
			case !seen[e]:
				joined = append(joined, e)
			}
			seen[e] = true
			e.refs++
			got[i] = e
		}
		h.mu.Unlock()
		return got, created, joined, nil
	}
}

func (h *Hub) closingEntry(keys []subKey) chan struct{} {
	for _, k := range keys {
		if e := h.entries[k]; e != nil && e.closing != nil {
			return e.closing
		}
	}
	return nil
}

// Release drops one reference on each entry; entries left without any are
// unsubscribed upstream and forgotten. A tenant's patterns that fall well
// below the covering threshold are subscribed one by one again.
func (h *Hub) Release(entries []*Entry) {
	groups := groupsOf(entries)
	unlock, _ := lockInOrder(context.Background(), groups)
	defer unlock()
	h.release(entries)
	h.rebalance(groups)
}

// release is Release for a caller that holds the turns of the entries'
// groups.
func (h *Hub) release(entries []*Entry) {
	var drop []*Entry
	h.mu.Lock()
	for _, e := range entries {
		e.refs--
		if e.refs == 0 {
			e.closing = make(chan struct{})
			drop = append(drop, e)
		}
	}
	h.mu.Unlock()
	if len(drop) == 0 {
		return
	}
	byKind := make(map[upstream.Kind][]string)
	for _, e := range drop {
		if !e.covered.Load() { // a covered pattern has nothing upstream
			byKind[e.key.kind] = append(byKind[e.key.kind], e.key.name)
		}
	}
	for kind, names := range byKind {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		if err := h.broker.Unsubscribe(ctx, kind, names...); err != nil {
			h.log.Warn("upstream unsubscribe failed", zap.Stringer("kind", kind), zap.Strings("names", names), zap.Error(err))
		}
		cancel()
	}
	h.mu.Lock()
	for _, e := range drop {
		delete(h.entries, e.key)
		if e.key.kind == upstream.KindPattern {
			h.patterns.Delete(e.key.name)
		}
		if e.group != nil {
			e.group.n--
		}
		close(e.closing)
	}
	h.mu.Unlock()
}

// Attach adds a client, its outbox and the deliveries its messages count
// in, to an entry's fan-out. before runs under the entry lock, so that what
// it queues (the subscribe confirmation) precedes every message the client
// receives from the entry, and messages the engine received before are not
// delivered to it. It runs after the member is counted: a client that saw
// its confirmation must find itself in every count (PUBLISH receivers)
// another client asks for next.
func (h *Hub) Attach(e *Entry, out *Outbox, counts *Deliveries, before func()) *Membership {
	e.mu.Lock()
	defer e.mu.Unlock()
	mb := &Membership{out: out, counts: counts, e: e, idx: len(e.members), since: h.broker.Received()}
	e.members = append(e.members, mb)
	e.count.Store(int64(len(e.members)))
	before()
	return mb
}

// Detach removes a client from the fan-out: once it returns, no message of
// the entry is queued for the client any more.
func (mb *Membership) Detach() {
	e := mb.e
	e.mu.Lock()
	defer e.mu.Unlock()
	last := len(e.members) - 1
	moved := e.members[last]
	e.members[mb.idx] = moved
	moved.idx = mb.idx
	e.members[last] = nil
	e.members = e.members[:last]
	e.count.Store(int64(last))
}

// Receivers converts the engine's count for a publish into the count Redis
// would report if every local client were subscribed to Redis directly:
// this node's engine subscriptions are replaced by the clients behind them.
// An engine that reached nobody reached no local client either: right after
// an upstream restart, this node's subscriptions may not be restored yet.
func (h *Hub) Receivers(kind upstream.Kind, channel string, engine int64) int64 {
	if engine == 0 {
		return 0
	}
	return h.clientCount(kind, channel, engine, kind == upstream.KindChannel)
}

// NumSub is Receivers for one channel without patterns (PUBSUB NUMSUB).
func (h *Hub) NumSub(kind upstream.Kind, channel string, engine int64) int64 {
	return h.clientCount(kind, channel, engine, false)
}

// clientCount replaces, in the engine's count for channel, this node's
// subscriptions by the clients behind them: the channel's own and, with
// patterns, those of the patterns that match it.
func (h *Hub) clientCount(kind upstream.Kind, channel string, engine int64, patterns bool) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	mine, clients := h.entries[subKey{kind, channel}].local()
	if patterns {
		h.patterns.Matching(channel, func(_ string, e *Entry) {
			m, c := e.local()
			mine, clients = mine+m, clients+c
		})
		h.heldCovers.Matching(channel, func(string, *coverGroup) { mine++ })
	}
	return max(engine-mine, 0) + clients
}

// local is what this node contributes to a count through e: the engine
// sees one subscription (mine), standing for clients local subscribers;
// none for a covered pattern, whose cover the caller counts once.
// A nil or unconfirmed entry contributes nothing.
func (e *Entry) local() (mine, clients int64) {
	if e == nil || !e.confirmed() {
		return 0, 0
	}
	if e.covered.Load() {
		return 0, e.count.Load()
	}
	return 1, e.count.Load()
}

// HeldPatterns lists the distinct patterns this node's clients hold
// (for PUBSUB NUMPAT). Patterns of other nodes are not visible: Redis has
// no per-prefix pattern count.
func (h *Hub) HeldPatterns() []*Entry {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var held []*Entry
	h.patterns.All(func(_ string, e *Entry) {
		if e.confirmed() && e.count.Load() > 0 {
			held = append(held, e)
		}
	})
	return held
}

func (e *Entry) confirmed() bool {
	select {
	case <-e.ready:
		return e.err == nil
	default:
		return false
	}
}

// Held counts the engine subscriptions the hub holds, indexed by kind.
func (h *Hub) Held() (counts [upstream.KindShard + 1]int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for k, e := range h.entries {
		if !e.covered.Load() {
			counts[k.kind]++
		}
	}
	counts[upstream.KindPattern] += int64(h.heldCovers.Len())
	return counts
}

// References is how many references (Acquire calls not yet released) the
// hub holds on a subscription: 0 when it holds none.
func (h *Hub) References(kind upstream.Kind, name string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if e := h.entries[subKey{kind, name}]; e != nil {
		return e.refs
	}
	return 0
}
