package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// Hub shares upstream subscriptions between the sessions of one node: one
// engine subscription per (kind, upstream name), however many local clients
// hold it. The engine hands each message to dispatch, on the engine's own
// goroutine, which fans it out to the outboxes of the sessions attached to
// it: from the upstream socket to the outboxes without changing hands.
type Hub struct {
	broker  upstream.Broker
	timeout time.Duration
	log     *zap.Logger

	mu       sync.RWMutex
	entries  map[subKey]*entry
	patterns upstream.Patterns[*entry] // KindPattern entries by upstream pattern, for receiver counting

}

type subKey struct {
	kind upstream.Kind
	name string // upstream name
}

// entry is one upstream subscription.
type entry struct {
	key        subKey
	clientName string // the name as the tenant's clients write it
	ns         *Namespace

	// mu orders fan-out against attach and detach: fan-out holds it for
	// reading while it pushes to every member, so a member sees its
	// subscribe confirmation before any message and no message after its
	// unsubscribe confirmation.
	mu      sync.RWMutex
	members []*membership
	count   atomic.Int64 // len(members), readable without mu for counting

	// Guarded by Hub.mu.
	refs    int
	closing chan struct{} // set when the last reference is gone

	ready chan struct{} // closed once the engine answered the subscribe
	err   error         // the engine's answer; written before ready closes
}

// membership is one session's place in an entry.
type membership struct {
	s     *session
	e     *entry
	idx   int    // position in e.members, guarded by e.mu
	since uint64 // engine messages up to this sequence predate the subscribe

	tenant *tenant // the session's when it subscribed, for delivery counts
}

// NewHub fans out the broker's messages.
func NewHub(b upstream.Broker, timeout time.Duration, log *zap.Logger) *Hub {
	h := &Hub{
		broker: b, timeout: timeout, log: log,
		entries: make(map[subKey]*entry),
	}
	b.SetHandler(h.dispatch)
	return h
}

// dispatch fans a burst of engine messages out. It may run on several
// goroutines at once (one per upstream connection), never blocks, and holds
// locks only for reading.
func (h *Hub) dispatch(burst []upstream.Message) {
	for i := range burst {
		h.dispatchOne(&burst[i])
	}
}

func (h *Hub) dispatchOne(m *upstream.Message) {
	name := m.Channel
	if m.Kind == upstream.KindPattern {
		name = m.Pattern
	}
	h.mu.RLock()
	e := h.entries[subKey{m.Kind, string(name)}]
	h.mu.RUnlock()
	if e == nil {
		return // unsubscribed while the message was in flight
	}
	channel, ok := e.ns.StripBytes(m.Channel)
	if !ok {
		h.log.Error("engine delivered a channel outside the subscription's namespace; dropped",
			zap.String("tenant", e.ns.Tenant), zap.ByteString("channel", m.Channel))
		return
	}
	frames := messageFrames{kind: m.Kind, pattern: e.clientName, channel: channel, payload: m.Payload}
	counted := deliveries{payload: int64(len(m.Payload))}
	e.mu.RLock()
	for _, mb := range e.members {
		// A shared subscription may still hold messages received before
		// this member subscribed; Redis would not deliver those to it.
		if m.Seq > mb.since && mb.s.out.pushMessage(&frames) {
			counted.add(mb.tenant)
		}
	}
	e.mu.RUnlock()
	counted.flush()
}

// subscription names one entry a session wants.
type subscription struct {
	kind       upstream.Kind
	clientName string
	ns         *Namespace
}

func (r subscription) key() subKey {
	return subKey{r.kind, r.ns.Upstream(r.kind, r.clientName)}
}

// acquire takes one reference on the entry of every request, subscribing
// upstream where none exists yet, and returns once the engine confirmed all
// of them. All requests share one kind. On error no reference is kept.
func (h *Hub) acquire(ctx context.Context, reqs []subscription) ([]*entry, error) {
	got, created, joined, err := h.reserve(ctx, reqs)
	if err != nil {
		return nil, err
	}
	if len(created) > 0 {
		err := h.subscribe(ctx, created)
		for _, e := range created {
			e.err = err
			close(e.ready)
		}
	}
	for _, e := range got {
		select {
		case <-e.ready:
			err = e.err
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			h.release(got)
			return nil, err
		}
	}
	// Joining a subscription other sessions hold, subscribe it again: the
	// engine confirms once it delivered everything it received before, so
	// that the member, attached after this, gets nothing published before
	// its SUBSCRIBE, as with Redis. (The memory engine has nothing in
	// flight: for it, this costs a map update.)
	if len(joined) > 0 {
		if err := h.subscribe(ctx, joined); err != nil {
			h.release(got)
			return nil, err
		}
	}
	return got, nil
}

// subscribe subscribes entries of one kind upstream.
func (h *Hub) subscribe(ctx context.Context, entries []*entry) error {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.key.name
	}
	sctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	return h.broker.Subscribe(sctx, entries[0].key.kind, names...)
}

// reserve takes the references under the hub lock, waiting out entries whose
// upstream unsubscribe is still in flight so that the engine sees subscribe
// and unsubscribe of one name in the order they were decided. Of got,
// created are the entries it made, joined those that others held.
func (h *Hub) reserve(ctx context.Context, reqs []subscription) (got, created, joined []*entry, err error) {
	keys := make([]subKey, len(reqs))
	for i, r := range reqs {
		keys[i] = r.key()
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
		got = make([]*entry, len(reqs))
		seen := make(map[*entry]bool, len(reqs)) // a name given twice is created or joined once
		for i, r := range reqs {
			k := keys[i]
			e := h.entries[k]
			switch {
			case e == nil:
				e = &entry{key: k, clientName: r.clientName, ns: r.ns, ready: make(chan struct{})}
				h.entries[k] = e
				if k.kind == upstream.KindPattern {
					h.patterns.Set(k.name, e)
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

// release drops one reference on each entry; entries left without any are
// unsubscribed upstream and forgotten.
func (h *Hub) release(entries []*entry) {
	var drop []*entry
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
		byKind[e.key.kind] = append(byKind[e.key.kind], e.key.name)
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
		close(e.closing)
	}
	h.mu.Unlock()
}

// attach adds a session to an entry's fan-out. before runs under the entry
// lock, so that what it queues (the subscribe confirmation) precedes every
// message the session receives from the entry, and messages the engine
// received before are not delivered to it. It runs after the member is
// counted: a client that saw its confirmation must find itself in every
// count (PUBLISH receivers) another client asks for next.
func (h *Hub) attach(e *entry, s *session, before func()) *membership {
	e.mu.Lock()
	defer e.mu.Unlock()
	mb := &membership{s: s, tenant: s.tenant, e: e, idx: len(e.members), since: h.broker.Received()}
	e.members = append(e.members, mb)
	e.count.Store(int64(len(e.members)))
	before()
	return mb
}

// detach removes a session from the fan-out: once it returns, no message of
// the entry is queued for the session any more.
func (mb *membership) detach() {
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

// receivers converts the engine's count for a publish into the count Redis
// would report if every local client were subscribed to Redis directly:
// this node's engine subscriptions are replaced by the clients behind them.
// An engine that reached nobody reached no local client either: right after
// an upstream restart, this node's subscriptions may not be restored yet.
func (h *Hub) receivers(kind upstream.Kind, channel string, engine int64) int64 {
	if engine == 0 {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	mine, clients := h.entries[subKey{kind, channel}].local()
	if kind == upstream.KindChannel {
		h.patterns.Matching(channel, func(_ string, e *entry) {
			m, c := e.local()
			mine, clients = mine+m, clients+c
		})
	}
	return max(engine-mine, 0) + clients
}

// numSub is receivers for one channel without patterns (PUBSUB NUMSUB).
func (h *Hub) numSub(kind upstream.Kind, channel string, engine int64) int64 {
	h.mu.RLock()
	mine, clients := h.entries[subKey{kind, channel}].local()
	h.mu.RUnlock()
	return max(engine-mine, 0) + clients
}

// local is what this node contributes to a count through e: the engine
// sees one subscription (mine), standing for clients local subscribers.
// A nil or unconfirmed entry contributes nothing.
func (e *entry) local() (mine, clients int64) {
	if e == nil || !e.confirmed() {
		return 0, 0
	}
	return 1, e.count.Load()
}

// heldPatterns lists the distinct patterns this node's clients hold
// (for PUBSUB NUMPAT). Patterns of other nodes are not visible: Redis has
// no per-prefix pattern count.
func (h *Hub) heldPatterns() []*entry {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var held []*entry
	h.patterns.All(func(_ string, e *entry) {
		if e.confirmed() && e.count.Load() > 0 {
			held = append(held, e)
		}
	})
	return held
}

func (e *entry) confirmed() bool {
	select {
	case <-e.ready:
		return e.err == nil
	default:
		return false
	}
}
