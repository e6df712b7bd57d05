package upstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the engine on Redis: a standalone server, the primary of a
// Sentinel deployment, or a Redis Cluster. Publishes share one pipelined
// connection per node (pipeline.go); channels and patterns share one
// dedicated subscriber connection, and shard channels have their own (one
// per hash slot in a cluster), because Redis's replies to SUBSCRIBE and
// SSUBSCRIBE look alike on one connection. Those connections speak RESP
// themselves (docs/design.md); go-redis's client does the rest: topology,
// the health probe and PUBSUB introspection.
type Redis struct {
	client   redis.UniversalClient
	cluster  *redis.ClusterClient // set for a Redis Cluster
	sharded  bool                 // cluster mode: channels travel as shard channels
	main     *subscriber          // channels and patterns
	shards   shardSubscriptions   // shard channels
	aliases  *aliases             // sharded mode: the local kinds of each shard channel
	shardMu  sync.Mutex           // orders alias updates with the shard commands they cause
	handler  atomic.Pointer[Handler]
	received atomic.Uint64 // Seq of the last message from any connection
	health   *healthState
	pipes    *pipelines      // the publishing connections
	timeout  time.Duration   // how long Redis may take to confirm a subscribe
	ctx      context.Context // ends with Close
	stop     context.CancelFunc
	wg       sync.WaitGroup
	close    sync.Once
}

var _ Broker = (*Redis)(nil)

// shardSubscriptions hold the SSUBSCRIBE side: one connection on a
// standalone server, one per hash slot in a cluster.
type shardSubscriptions interface {
	send(ctx context.Context, names []string) (waits []chan struct{}, forget func())
	// unconfirmed hears of names whose subscribe Redis did not confirm.
	unconfirmed(names []string)
	unsubscribe(ctx context.Context, names []string) error
	sync(ctx context.Context) error
	close()
}

// NewRedis connects lazily: it fails only on malformed options, and the
// connections come up (and come back) on their own.
func NewRedis(o RedisOptions) (*Redis, error) {
	client, err := newRedisClient(o)
	if err != nil {
		return nil, err
	}
	r := &Redis{client: client, health: newHealthState(o.OnHealthChange), timeout: cmp.Or(o.Timeout, DefaultTimeout)}
	r.SetHandler(func([]Message) {})
	ctx, stop := context.WithCancel(context.Background())
	r.ctx, r.stop = ctx, stop
	if c, ok := client.(*redis.ClusterClient); ok {
		r.cluster, r.sharded = c, o.Cluster.Sharded
		r.main = newSubscriber(r, anyPrimary(c))
		r.shards = newSlotSubscribers(c, r)
		r.pipes = newPipelines(r, nil)
	} else {
		opt := client.(*redis.Client).Options()
		dial := func(ctx context.Context, _ string) (net.Conn, error) { return dialNode(ctx, opt, opt.Addr) }
		r.main = newSubscriber(r, dial)
		s := newSubscriber(r, dial)
		r.start(s)
		r.shards = singleShard{s}
		single := newPipeline(opt, opt.Addr, r.timeout, false)
		if o.Sentinel != nil {
			single.name = "the primary Sentinel names" // opt.Addr is a placeholder: the dialer asks Sentinel
		}
		r.pipes = newPipelines(r, single)
	}
	r.start(r.main)
	if r.sharded {
		r.aliases = newAliases()
	}
	interval := o.HealthInterval
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.health.probeLoop(ctx, interval, r.probe)
	}()
	return r, nil
}

// start runs a subscriber's receive loop until its connection is closed.
func (r *Redis) start(s *subscriber) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.run()
	}()
}

// appendDelivery numbers a message received from Redis and appends it to
// a burst: a shard channel in sharded mode is delivered once per local kind
// that holds it.
func (r *Redis) appendDelivery(burst []Message, m Message) []Message {
	if m.Kind == KindShard && r.aliases != nil {
		for _, k := range r.aliases.kinds(m.Channel) {
			m.Kind, m.Seq = k, r.received.Add(1)
			burst = append(burst, m)
		}
		return burst
	}
	m.Seq = r.received.Add(1)
	return append(burst, m)
}

// anyPrimary dials the cluster's channel and pattern connection: classic
// pub/sub reaches every node, so any primary serves. As go-redis did, it is
// the owner of a held name's slot, where that channel's publishes enter the
// cluster (and count the connection among their receivers), or a random
// one while nothing is held, so that pubgate nodes spread over the
// primaries.
func anyPrimary(c *redis.ClusterClient) dialFunc {
	return func(ctx context.Context, held string) (net.Conn, error) {
		if held == "" {
			held = strconv.Itoa(rand.IntN(1 << 20))
		}
		return dialSlotOwner(ctx, c, held)
	}
}

// dialSlotOwner dials the primary that owns key's slot; a failure re-reads
// the slot map, which may be out of date after a failover.
func dialSlotOwner(ctx context.Context, c *redis.ClusterClient, key string) (net.Conn, error) {
	node, err := c.MasterForKey(ctx, key)
	if err == nil {
		opt := node.Options()
		var nc net.Conn
		if nc, err = dialNode(ctx, opt, opt.Addr); err == nil {
			return nc, nil
		}
	}
	c.ReloadState(ctx)
	return nil, err
}

// probe checks that every node pubgate needs answers; a cluster that fails
// it re-reads its slot map, so that a promoted replica is found at once.
func (r *Redis) probe(ctx context.Context) error {
	if r.cluster == nil {
		return r.client.Ping(ctx).Err()
	}
	err := r.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	})
	if err != nil {
		r.cluster.ReloadState(ctx)
	}
	return err
}

func (r *Redis) Health() Health { return r.health.get() }

// upstreamKind is the kind a subscription or publish of kind travels as.
func (r *Redis) upstreamKind(kind Kind) Kind {
	if r.sharded && kind == KindChannel {
		return KindShard
	}
	return kind
}

func (r *Redis) Subscribe(ctx context.Context, kind Kind, names ...string) error {
	switch {
	case kind == KindPattern && r.sharded:
		return ErrPatternsSharded
	case r.upstreamKind(kind) == KindShard:
		// A name already held sends SSUBSCRIBE again: Redis confirms it
		// anyway, so the caller waits for the engine either way.
		r.shardMu.Lock()
		if r.aliases != nil {
			r.aliases.add(kind, names)
		}
		waits, forget := r.shards.send(ctx, names)
		r.shardMu.Unlock()
		err := awaitConfirmations(ctx, KindShard.SubscribeVerb(), waits, forget)
		if err != nil {
			r.shards.unconfirmed(names)
		}
		return err
	}
	return r.main.subscribe(ctx, kind, names)
}

// SubscribeThen subscribes to channels or patterns like Subscribe, and
// calls at, on the goroutine that hands their messages to the Handler, once
// Redis confirmed every name: the messages handed over before at predate
// the subscription of some name, those after it follow all of them. If
// SubscribeThen fails, at may still run once, even after it returned.
func (r *Redis) SubscribeThen(ctx context.Context, kind Kind, names []string, at func()) error {
	switch {
	case kind == KindPattern && r.sharded:
		return ErrPatternsSharded
	case r.upstreamKind(kind) == KindShard:
		return fmt.Errorf("upstream: SubscribeThen takes channels or patterns, not %s channels", r.upstreamKind(kind))
	}
	return r.main.subscribeThen(ctx, kind, names, at)
}

func (r *Redis) Unsubscribe(ctx context.Context, kind Kind, names ...string) error {
	if r.upstreamKind(kind) != KindShard {
		return r.main.unsubscribe(ctx, kind, names)
	}
	r.shardMu.Lock()
	defer r.shardMu.Unlock()
	if r.aliases != nil {
		names = r.aliases.remove(kind, names)
		if len(names) == 0 {
			return nil
		}
	}
	return r.shards.unsubscribe(ctx, names)
}

func (r *Redis) SetHandler(h Handler) { r.handler.Store(&h) }

func (r *Redis) Received() uint64 { return r.received.Load() }

func (r *Redis) Channels(ctx context.Context, kind Kind, pattern string) ([]string, error) {
	if pattern == "" {
		pattern = "*"
	}
	kind = r.upstreamKind(kind)
	if r.cluster != nil {
		return clusterChannels(ctx, r.cluster, kind, pattern)
	}
	if kind == KindShard {
		return r.client.PubSubShardChannels(ctx, pattern).Result()
	}
	return r.client.PubSubChannels(ctx, pattern).Result()
}

func (r *Redis) NumSub(ctx context.Context, kind Kind, channels ...string) ([]int64, error) {
	kind = r.upstreamKind(kind)
	var counts map[string]int64
	var err error
	switch {
	case r.cluster != nil:
		counts, err = clusterNumSub(ctx, r.cluster, kind, channels)
	case kind == KindShard:
		counts, err = r.client.PubSubShardNumSub(ctx, channels...).Result()
	default:
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
		r.stop()
		r.pipes.close()
		r.main.close()
		r.shards.close()
		r.wg.Wait()
		_ = r.client.Close()
	})
	return nil
}

// singleShard is the SSUBSCRIBE side of a standalone server (or primary):
// one connection holds every shard channel.
type singleShard struct{ s *subscriber }

func (s singleShard) send(ctx context.Context, names []string) ([]chan struct{}, func()) {
	return s.s.send(ctx, KindShard, names)
}

func (s singleShard) unconfirmed([]string) {} // the subscriber resubscribes on its own

func (s singleShard) unsubscribe(ctx context.Context, names []string) error {
	return s.s.unsubscribe(ctx, KindShard, names)
}

func (s singleShard) sync(ctx context.Context) error { return s.s.sync(ctx) }

func (s singleShard) close() { s.s.close() }

// Sync round-trips on every subscriber connection at once. In a cluster in
// classic mode, a message published at another primary reaches the
// subscriber's node over the cluster bus, which Sync cannot wait for.
func (r *Redis) Sync(ctx context.Context) error {
	return errors.Join(r.main.sync(ctx), r.shards.sync(ctx))
}

// syncAll syncs connections concurrently: a cluster may hold one per slot.
func syncAll(ctx context.Context, subs []*subscriber) error {
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { errs[i] = s.sync(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
