package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscriber owns one go-redis PubSub connection. go-redis re-dials and
// resubscribes it after a failure and pings it when idle; subscriber adds
// waiting for Redis's confirmation of each subscribe.
type subscriber struct {
	ps   *redis.PubSub
	emit func(*redis.Message)
	// dropped, if set, hears of Redis ending a subscription that nobody
	// asked to end: a cluster unsubscribes a shard channel whose slot
	// moved to another shard.
	dropped func(name string)

	mu      sync.Mutex
	waiters map[string][]chan struct{} // "subscribe\x00name" → waiting callers
	leaving map[string]int             // shard channels with an SUNSUBSCRIBE of ours in flight

	// sendMu orders the (un)subscribes written on the connection with
	// held, the names the connection holds or is subscribing (see sync).
	sendMu sync.Mutex
	held   map[string]Kind
}

func newSubscriber(ps *redis.PubSub, emit func(*redis.Message)) *subscriber {
	return &subscriber{ps: ps, emit: emit, waiters: make(map[string][]chan struct{}), leaving: make(map[string]int),
		held: make(map[string]Kind)}
}

func confirmKey(redisKind, name string) string { return redisKind + "\x00" + name }

func subscribeVerb(kind Kind) string {
	switch kind {
	case KindPattern:
		return "psubscribe"
	case KindShard:
		return "ssubscribe"
	}
	return "subscribe"
}

func (s *subscriber) subscribe(ctx context.Context, kind Kind, names []string) error {
	waits, forget := s.send(ctx, kind, names)
	return awaitConfirmations(ctx, subscribeVerb(kind), waits, forget)
}

// send writes the subscribe and returns what to wait for. A failed write is
// not final: go-redis keeps the names and subscribes them again when it
// reconnects, so the caller waits for the confirmation either way.
func (s *subscriber) send(ctx context.Context, kind Kind, names []string) (waits []chan struct{}, forget func()) {
	verb := subscribeVerb(kind)
	waits = s.expect(verb, names)
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.hold(kind, names)
	s.write(ctx, kind, names)
	return waits, func() { s.forget(verb, names, waits) }
}

// hold records names as held; the caller holds sendMu, or is the only one
// who knows s yet.
func (s *subscriber) hold(kind Kind, names []string) {
	for _, n := range names {
		s.held[n] = kind
	}
}

// write sends a subscribe; see send for why its error does not matter.
func (s *subscriber) write(ctx context.Context, kind Kind, names []string) {
	switch kind {
	case KindPattern:
		_ = s.ps.PSubscribe(ctx, names...)
	case KindShard:
		_ = s.ps.SSubscribe(ctx, names...)
	default:
		_ = s.ps.Subscribe(ctx, names...)
	}
}

// sync returns once Redis answered a command written on the connection
// now, so that every message Redis had queued for the connection before
// has been emitted: it subscribes again to a name the connection holds,
// which Redis confirms and otherwise ignores. A connection that holds
// nothing receives nothing, and has nothing to sync.
func (s *subscriber) sync(ctx context.Context) error {
	s.sendMu.Lock()
	name, kind, ok := anyHeld(s.held)
	if !ok {
		s.sendMu.Unlock()
		return nil
	}
	verb, names := subscribeVerb(kind), []string{name}
	waits := s.expect(verb, names)
	s.write(ctx, kind, names)
	s.sendMu.Unlock()
	return awaitConfirmations(ctx, verb, waits, func() { s.forget(verb, names, waits) })
}

func anyHeld(held map[string]Kind) (string, Kind, bool) {
	for name, kind := range held {
		return name, kind, true
	}
	return "", 0, false
}

// awaitConfirmations waits until Redis confirmed every subscription.
func awaitConfirmations(ctx context.Context, verb string, waits []chan struct{}, forget func()) error {
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			forget()
			return fmt.Errorf("upstream: %s not confirmed: %w", verb, ctx.Err())
		}
	}
	return nil
}

func (s *subscriber) unsubscribe(ctx context.Context, kind Kind, names []string) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for _, n := range names {
		delete(s.held, n)
	}
	switch kind {
	case KindPattern:
		return s.ps.PUnsubscribe(ctx, names...)
	case KindShard:
		s.mu.Lock()
		for _, n := range names {
			s.leaving[n]++
		}
		s.mu.Unlock()
		return s.ps.SUnsubscribe(ctx, names...)
	}
	return s.ps.Unsubscribe(ctx, names...)
}

func (s *subscriber) expect(verb string, names []string) []chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	waits := make([]chan struct{}, len(names))
	for i, n := range names {
		w := make(chan struct{})
		k := confirmKey(verb, n)
		s.waiters[k] = append(s.waiters[k], w)
		waits[i] = w
	}
	return waits
}

func (s *subscriber) forget(verb string, names []string, waits []chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range names {
		k := confirmKey(verb, n)
		list := s.waiters[k]
		for j, w := range list {
			if w == waits[i] {
				list = append(list[:j], list[j+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.waiters, k)
		} else {
			s.waiters[k] = list
		}
	}
}

// confirmed handles Redis's answer to a (un)subscribe, or an unsubscribe
// Redis decided on its own.
func (s *subscriber) confirmed(sub *redis.Subscription) {
	s.mu.Lock()
	var dropped bool
	if sub.Kind == "sunsubscribe" {
		if s.leaving[sub.Channel] > 0 {
			s.leaving[sub.Channel]--
			if s.leaving[sub.Channel] == 0 {
				delete(s.leaving, sub.Channel)
			}
		} else {
			dropped = true
		}
	}
	k := confirmKey(sub.Kind, sub.Channel)
	for _, w := range s.waiters[k] {
		close(w)
	}
	delete(s.waiters, k)
	s.mu.Unlock()
	if dropped && s.dropped != nil {
		s.dropped(sub.Channel)
	}
}

// idlePing is how long the receive loop waits for a frame before it pings
// Redis: a connection that answers nothing is found broken and replaced.
const idlePing = 5 * time.Second

// run receives until the connection is closed, on this goroutine: a
// message goes from the socket to the handler without changing hands.
// go-redis reconnects and resubscribes when a receive fails.
func (s *subscriber) run() {
	ctx := context.Background()
	for failures := 0; ; {
		m, err := s.ps.ReceiveTimeout(ctx, idlePing)
		switch {
		case errors.Is(err, redis.ErrClosed):
			return
		case isTimeout(err):
			_ = s.ps.Ping(ctx) // the pong, or its absence, shows on the next receive
			continue
		case err != nil:
			if failures++; failures > 1 {
				time.Sleep(100 * time.Millisecond) // Redis is down: do not spin
			}
			continue
		}
		failures = 0
		switch m := m.(type) {
		case *redis.Subscription:
			s.confirmed(m)
		case *redis.Message:
			s.emit(m)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
