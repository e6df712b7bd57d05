package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the Redis engine.
type RedisOptions struct {
	URL      string        // redis://[user:pass@]host:port/ or rediss://… (the user is a Redis ACL user)
	Timeout  time.Duration // dial/read/write timeout of pooled connections
	PoolSize int           // 0 picks go-redis's default
	// TLS replaces the default TLS configuration of a rediss:// URL: a CA to
	// trust, a client certificate, a server name.
	TLS *tls.Config
}

// Redis is the engine on a standalone Redis server. Publishes go over a
// pooled client; subscriptions live on two dedicated connections, one for
// channels and patterns and one for shard channels, because Redis's reply
// to SUBSCRIBE and SSUBSCRIBE messages look alike on one connection.
type Redis struct {
	client   *redis.Client
	main     *subscriber // channels and patterns
	shard    *subscriber // shard channels
	messages chan Message
	received atomic.Uint64 // Seq of the last message from either connection
	wg       sync.WaitGroup
	close    sync.Once
}

var _ Broker = (*Redis)(nil)

// messageBuffer is how many messages the receive loops may queue for the hub.
const messageBuffer = 4096

// NewRedis connects lazily: it fails only on a malformed URL, and the
// subscriber connections come up (and come back) on their own.
func NewRedis(o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if o.TLS != nil {
		if opt.TLSConfig == nil {
			return nil, fmt.Errorf("upstream: TLS options need a rediss:// URL")
		}
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = opt.TLSConfig.ServerName // the URL's host
		}
		opt.TLSConfig = cfg
	}
	opt.Protocol = 2 // push-free replies; pub/sub needs nothing from RESP3
	opt.ClientName = "pubgate"
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	if o.Timeout > 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	}
	r := &Redis{client: redis.NewClient(opt), messages: make(chan Message, messageBuffer)}
	ctx := context.Background()
	r.main = newSubscriber(r.client.Subscribe(ctx), KindChannel, &r.received)
	r.shard = newSubscriber(r.client.SSubscribe(ctx), KindShard, &r.received)
	for _, s := range []*subscriber{r.main, r.shard} {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			s.run(r.messages)
		}()
	}
	return r, nil
}

func (r *Redis) Publish(ctx context.Context, batch []Publication) error {
	cmds := make([]*redis.IntCmd, len(batch))
	_, batchErr := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range batch {
			if p.Kind == KindShard {
				cmds[i] = pipe.SPublish(ctx, p.Channel, p.Payload)
			} else {
				cmds[i] = pipe.Publish(ctx, p.Channel, p.Payload)
			}
		}
		return nil
	})
	// go-redis leaves commands without an error when the pipeline failed
	// with a Redis error before running them (WRONGPASS from the
	// connection's AUTH): if no command carries an error, none ran.
	noneRan := batchErr != nil && !slices.ContainsFunc(cmds, func(c *redis.IntCmd) bool { return c.Err() != nil })
	for i, c := range cmds {
		if noneRan {
			batch[i].Receivers, batch[i].Err = 0, batchErr
		} else {
			batch[i].Receivers, batch[i].Err = c.Result()
		}
	}
	return nil
}

func (r *Redis) Subscribe(ctx context.Context, kind Kind, names ...string) error {
	return r.subscriberFor(kind).subscribe(ctx, kind, names)
}

func (r *Redis) Unsubscribe(ctx context.Context, kind Kind, names ...string) error {
	return r.subscriberFor(kind).unsubscribe(ctx, kind, names)
}

func (r *Redis) subscriberFor(kind Kind) *subscriber {
	if kind == KindShard {
		return r.shard
	}
	return r.main
}

func (r *Redis) Messages() <-chan Message { return r.messages }

func (r *Redis) Received() uint64 { return r.received.Load() }

func (r *Redis) Channels(ctx context.Context, kind Kind, pattern string) ([]string, error) {
	if pattern == "" {
		pattern = "*"
	}
	if kind == KindShard {
		return r.client.PubSubShardChannels(ctx, pattern).Result()
	}
	return r.client.PubSubChannels(ctx, pattern).Result()
}

func (r *Redis) NumSub(ctx context.Context, kind Kind, channels ...string) ([]int64, error) {
	var counts map[string]int64
	var err error
	if kind == KindShard {
		counts, err = r.client.PubSubShardNumSub(ctx, channels...).Result()
	} else {
		counts, err = r.client.PubSubNumSub(ctx, channels...).Result()
	}
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(channels))
	for i, ch := range channels {
		out[i] = counts[ch]
	}
	return out, nil
}

func (r *Redis) Close() error {
	r.close.Do(func() {
		_ = r.main.ps.Close()
		_ = r.shard.ps.Close()
		r.wg.Wait()
		close(r.messages)
		_ = r.client.Close()
	})
	return nil
}

// subscriber owns one go-redis PubSub connection. go-redis re-dials and
// resubscribes it after a failure and pings it when idle; subscriber adds
// waiting for Redis's confirmation of each subscribe.
type subscriber struct {
	ps       *redis.PubSub
	kind     Kind // KindChannel (with patterns) or KindShard
	received *atomic.Uint64
	mu       sync.Mutex
	waiters  map[string][]chan struct{} // "subscribe\x00name" → waiting callers
}

func newSubscriber(ps *redis.PubSub, kind Kind, received *atomic.Uint64) *subscriber {
	return &subscriber{ps: ps, kind: kind, received: received, waiters: make(map[string][]chan struct{})}
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
	waits := s.expect(subscribeVerb(kind), names)
	var err error
	switch kind {
	case KindPattern:
		err = s.ps.PSubscribe(ctx, names...)
	case KindShard:
		err = s.ps.SSubscribe(ctx, names...)
	default:
		err = s.ps.Subscribe(ctx, names...)
	}
	// A failed write is not final: go-redis keeps the names and subscribes
	// them again when it reconnects, so wait for the confirmation either way.
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			s.forget(subscribeVerb(kind), names, waits)
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("upstream: %s not confirmed: %w", subscribeVerb(kind), err)
		}
	}
	return nil
}

func (s *subscriber) unsubscribe(ctx context.Context, kind Kind, names []string) error {
	switch kind {
	case KindPattern:
		return s.ps.PUnsubscribe(ctx, names...)
	case KindShard:
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

func (s *subscriber) confirm(verb, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := confirmKey(verb, name)
	for _, w := range s.waiters[k] {
		close(w)
	}
	delete(s.waiters, k)
}

// neverDrop is longer than any stall of the hub, which never blocks: go-redis
// drops a message only when its channel stays full this long.
const neverDrop = 24 * time.Hour

func (s *subscriber) run(out chan<- Message) {
	// go-redis's own buffer holds one message: the queue is r.messages,
	// where messages already carry their Seq (see Broker.Received).
	in := s.ps.ChannelWithSubscriptions(
		redis.WithChannelSize(1),
		redis.WithChannelSendTimeout(neverDrop),
	)
	for m := range in {
		switch m := m.(type) {
		case *redis.Subscription:
			s.confirm(m.Kind, m.Channel)
		case *redis.Message:
			out <- s.message(m)
		}
	}
}

func (s *subscriber) message(m *redis.Message) Message {
	msg := Message{Kind: s.kind, Channel: m.Channel, Payload: []byte(m.Payload), Seq: s.received.Add(1)}
	if m.Pattern != "" {
		msg.Kind, msg.Pattern = KindPattern, m.Pattern
	}
	return msg
}
