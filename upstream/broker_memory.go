package upstream

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the embedded in-process engine: a single subscriber (the hub)
// whose subscriptions are sets of names, with Redis's glob matching and
// counting. It is what pubgate runs on when no upstream is configured.
// A publish hands its messages to the handler on the publisher's goroutine.
type Memory struct {
	mu       sync.RWMutex
	subs     [3]map[string]struct{} // channels and shard channels, indexed by Kind
	patterns Patterns[struct{}]     // the pattern subscriptions
	closed   bool
	inflight sync.WaitGroup // publishes that may still call the handler
	received atomic.Uint64
	handler  Handler
	started  time.Time
}

var _ Broker = (*Memory)(nil)

// NewMemory returns an empty memory engine.
func NewMemory() *Memory {
	m := &Memory{started: time.Now(), handler: func([]Message) {}}
	m.subs[KindChannel], m.subs[KindShard] = make(map[string]struct{}), make(map[string]struct{})
	return m
}

func (m *Memory) Publish(_ context.Context, batch []Publication) error {
	for i := range batch {
		n, err := m.publish(&batch[i])
		batch[i].Receivers, batch[i].Err = n, err
		if err == ErrClosed {
			return err
		}
	}
	return nil
}

func (m *Memory) publish(p *Publication) (int64, error) {
	burst := bursts.Get().(*[]Message)
	defer bursts.Put(burst)
	out, ok := m.deliveries(p, (*burst)[:0])
	if !ok {
		return 0, ErrClosed
	}
	defer m.inflight.Done()
	// The handler copies what it keeps: the deliveries share the
	// publisher's payload for the length of the call.
	if len(out) > 0 {
		for i := range out {
			out[i].Payload = p.Payload
		}
		m.handler(out)
		clear(out)
	}
	*burst = out[:0]
	return int64(len(out)), nil
}

// bursts are the memory engine's reusable delivery lists.
var bursts = sync.Pool{New: func() any { return new([]Message) }}

// deliveries appends to out the messages one publication produces: one per
// matching subscription, channel subscription first, as Redis orders them.
// On success the caller owns one m.inflight count.
func (m *Memory) deliveries(p *Publication, out []Message) (_ []Message, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return out, false
	}
	m.inflight.Add(1)
	seq := m.received.Add(1)
	channel := bytesOf(p.Channel)
	if p.Kind == KindShard {
		if _, ok := m.subs[KindShard][p.Channel]; ok {
			out = append(out, Message{Kind: KindShard, Channel: channel, Seq: seq})
		}
		return out, true
	}
	if _, ok := m.subs[KindChannel][p.Channel]; ok {
		out = append(out, Message{Kind: KindChannel, Channel: channel, Seq: seq})
	}
	m.patterns.Matching(p.Channel, func(pat string, _ struct{}) {
		out = append(out, Message{Kind: KindPattern, Pattern: bytesOf(pat), Channel: channel, Seq: seq})
	})
	return out, true
}

func (m *Memory) Subscribe(_ context.Context, kind Kind, names ...string) error {
	return m.update(kind, names, true)
}

func (m *Memory) Unsubscribe(_ context.Context, kind Kind, names ...string) error {
	return m.update(kind, names, false)
}

func (m *Memory) update(kind Kind, names []string, subscribe bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, n := range names {
		switch {
		case kind == KindPattern && subscribe:
			m.patterns.Set(n, struct{}{})
		case kind == KindPattern:
			m.patterns.Delete(n)
		case subscribe:
			m.subs[kind][n] = struct{}{}
		default:
			delete(m.subs[kind], n)
		}
	}
	return nil
}

func (m *Memory) SetHandler(h Handler) { m.handler = h }

func (m *Memory) Received() uint64 { return m.received.Load() }

// Sync has nothing to wait for: Publish hands its messages over before it
// returns.
func (m *Memory) Sync(context.Context) error { return nil }

func (m *Memory) Channels(_ context.Context, kind Kind, pattern string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for ch := range m.subs[kind] {
		if pattern == "" || Match(pattern, ch) {
			out = append(out, ch)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *Memory) NumSub(_ context.Context, kind Kind, channels ...string) ([]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]int64, len(channels))
	for i, ch := range channels {
		if _, ok := m.subs[kind][ch]; ok {
			out[i] = 1
		}
	}
	return out, nil
}

// Close stops the engine once no publisher can still call the handler.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.inflight.Wait()
	return nil
}

// Health is always up: the engine is in the process.
func (m *Memory) Health() Health { return Health{Up: true, Since: m.started} }
