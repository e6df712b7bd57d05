package upstream

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the embedded in-process engine: a single subscriber (the hub)
// whose subscriptions are sets of names, with Redis's glob matching and
// counting. It is what pubgate runs on when no upstream is configured.
type Memory struct {
	mu       sync.RWMutex
	subs     [3]map[string]struct{} // indexed by Kind
	closed   bool
	inflight sync.WaitGroup // publishes that may still send on messages
	received atomic.Uint64
	messages chan Message
	done     chan struct{}
	started  time.Time
}

var _ Broker = (*Memory)(nil)

// memoryQueue bounds the messages waiting for the hub; publishers block
// (back-pressure) rather than drop when it is full.
const memoryQueue = 1024

// NewMemory returns an empty memory engine.
func NewMemory() *Memory {
	m := &Memory{messages: make(chan Message, memoryQueue), done: make(chan struct{}), started: time.Now()}
	for i := range m.subs {
		m.subs[i] = make(map[string]struct{})
	}
	return m
}

func (m *Memory) Publish(ctx context.Context, batch []Publication) error {
	for i := range batch {
		n, err := m.publish(ctx, &batch[i])
		batch[i].Receivers, batch[i].Err = n, err
		if err == ErrClosed {
			return err
		}
	}
	return nil
}

func (m *Memory) publish(ctx context.Context, p *Publication) (int64, error) {
	out, ok := m.deliveries(p)
	if !ok {
		return 0, ErrClosed
	}
	defer m.inflight.Done()
	// The hub reads the payload after Publish returned: copy it once for all
	// of its deliveries, and not at all when there are none.
	if len(out) > 0 {
		payload := bytes.Clone(p.Payload)
		for i := range out {
			out[i].Payload = payload
		}
	}
	for _, msg := range out {
		select {
		case m.messages <- msg:
		case <-m.done:
			return 0, ErrClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return int64(len(out)), nil
}

// deliveries lists the messages one publication produces: one per matching
// subscription, channel subscription first, as Redis orders them. On success
// the caller owns one m.inflight count.
func (m *Memory) deliveries(p *Publication) (out []Message, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, false
	}
	m.inflight.Add(1)
	seq := m.received.Add(1)
	if p.Kind == KindShard {
		if _, ok := m.subs[KindShard][p.Channel]; ok {
			out = append(out, Message{Kind: KindShard, Channel: p.Channel, Payload: p.Payload, Seq: seq})
		}
		return out, true
	}
	if _, ok := m.subs[KindChannel][p.Channel]; ok {
		out = append(out, Message{Kind: KindChannel, Channel: p.Channel, Payload: p.Payload, Seq: seq})
	}
	for pat := range m.subs[KindPattern] {
		if Match(pat, p.Channel) {
			out = append(out, Message{Kind: KindPattern, Pattern: pat, Channel: p.Channel, Payload: p.Payload, Seq: seq})
		}
	}
	return out, true
}

func (m *Memory) Subscribe(_ context.Context, kind Kind, names ...string) error {
	return m.update(kind, names, func(set map[string]struct{}, n string) { set[n] = struct{}{} })
}

func (m *Memory) Unsubscribe(_ context.Context, kind Kind, names ...string) error {
	return m.update(kind, names, func(set map[string]struct{}, n string) { delete(set, n) })
}

func (m *Memory) update(kind Kind, names []string, op func(map[string]struct{}, string)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, n := range names {
		op(m.subs[kind], n)
	}
	return nil
}

func (m *Memory) Messages() <-chan Message { return m.messages }

func (m *Memory) Received() uint64 { return m.received.Load() }

// Sync has nothing to wait for: Publish queues its messages before it
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

// Close stops the engine and closes the message channel once no publisher
// can still send on it.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	m.mu.Unlock()
	m.inflight.Wait()
	close(m.messages)
	return nil
}

// Health is always up: the engine is in the process.
func (m *Memory) Health() Health { return Health{Up: true, Since: m.started} }
