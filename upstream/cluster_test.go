package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

func clusterBroker(t *testing.T, c *testutil.RedisCluster, sharded bool) *Redis {
	t.Helper()
	b, err := NewRedis(RedisOptions{Cluster: &ClusterOptions{Addrs: c.Seeds(), Sharded: sharded},
		Timeout: 2 * time.Second, HealthInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	testutil.Eventually(t, "cluster engine up", func() bool { return b.Health().Up })
	return collect(b)
}

// spread returns n channel names whose slots cover every master of c.
func spread(t *testing.T, c *testutil.RedisCluster, n int) []string {
	names := make([]string, n)
	owners := make(map[string]bool)
	for i := range names {
		names[i] = fmt.Sprintf("acme:ch%d", i)
		owners[c.MasterOf(names[i]).Addr()] = true
	}
	if len(owners) != len(c.Masters()) {
		t.Fatalf("%d names reach %d of %d masters", n, len(owners), len(c.Masters()))
	}
	return names
}

func receiveAll(t *testing.T, b Broker, n int) map[string][]Message {
	t.Helper()
	got := make(map[string][]Message)
	for range n {
		m := receive(t, b)
		got[string(m.Channel)] = append(got[string(m.Channel)], m)
	}
	return got
}

func TestSlotMatchesRedis(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	node := redis.NewClient(&redis.Options{Addr: c.Seeds()[0]})
	defer node.Close()
	for _, key := range []string{"", "a", "acme:orders", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "x{}", "{", "}{tag}", "\xff\x00é"} {
		want, err := node.ClusterKeySlot(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redisSlot(key); int64(got) != want {
			t.Errorf("slot(%q) = %d, Redis says %d", key, got, want)
		}
	}
}

// TestClusterClassicAcrossNodes: two engines (two pubgate nodes) on one
// cluster; classic pub/sub reaches the other engine's subscriptions
// whichever node either is connected to, and the counts add up the nodes.
func TestClusterClassicAcrossNodes(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	pub, sub := clusterBroker(t, c, false), clusterBroker(t, c, false)
	names := spread(t, c, 12)
	if err := sub.Subscribe(ctx(t), KindChannel, names...); err != nil {
		t.Fatal(err)
	}
	if err := sub.Subscribe(ctx(t), KindPattern, "acme:ch1*"); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		publish(t, pub, KindChannel, n, "hi "+n)
	}
	got := receiveAll(t, sub, len(names)+3) // ch1, ch10, ch11 also match the pattern
	for _, n := range names {
		if len(got[n]) == 0 || string(got[n][0].Payload) != "hi "+n {
			t.Errorf("%s: got %+v", n, got[n])
		}
	}
	if p := got["acme:ch10"]; len(p) != 2 || p[1].Kind != KindPattern {
		t.Errorf("pattern delivery: %+v", p)
	}
	listed, err := pub.Channels(ctx(t), KindChannel, "acme:*")
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(names))
	if err != nil || !slices.Equal(listed, want) {
		t.Errorf("Channels = %q, %v", listed, err)
	}
	counts, err := pub.NumSub(ctx(t), KindChannel, names[0], "nobody")
	if err != nil || !slices.Equal(counts, []int64{1, 0}) {
		t.Errorf("NumSub = %v, %v", counts, err)
	}
}

// TestClusterShardedAcrossNodes: in sharded mode a client's SUBSCRIBE and
// SSUBSCRIBE both become SSUBSCRIBE on the owning shard, for names of many
// slots at once; each local kind gets its own delivery, and patterns are
// refused.
func TestClusterShardedAcrossNodes(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	pub, sub := clusterBroker(t, c, true), clusterBroker(t, c, true)
	names := spread(t, c, 12)
	if err := sub.Subscribe(ctx(t), KindChannel, names...); err != nil {
		t.Fatal(err)
	}
	if err := sub.Subscribe(ctx(t), KindShard, names[0]); err != nil {
		t.Fatal(err)
	}
	if err := sub.Subscribe(ctx(t), KindPattern, "acme:*"); err != ErrPatternsSharded {
		t.Fatalf("pattern subscribe in sharded mode: %v", err)
	}
	for _, n := range names {
		if r := publish(t, pub, KindChannel, n, "hi "+n); r != 1 {
			t.Errorf("SPUBLISH %s reached %d subscriptions, want 1", n, r)
		}
	}
	got := receiveAll(t, sub, len(names)+1)
	for _, n := range names {
		if len(got[n]) == 0 || string(got[n][0].Payload) != "hi "+n {
			t.Errorf("%s: got %+v", n, got[n])
		}
	}
	if both := got[names[0]]; len(both) != 2 || both[0].Kind != KindChannel || both[1].Kind != KindShard {
		t.Errorf("%s held as channel and shard channel: %+v", names[0], both)
	}
	publish(t, pub, KindChannel, names[1], "synced")
	if err := sub.Sync(ctx(t)); err != nil || len(inbox(sub)) != 1 {
		t.Fatalf("after Sync, %d messages queued (%v), want 1", len(inbox(sub)), err)
	}
	receive(t, sub)
	shardChannels, err := pub.Channels(ctx(t), KindShard, "")
	if err != nil || len(shardChannels) != len(names) {
		t.Errorf("shard Channels = %q, %v", shardChannels, err)
	}

	// Dropping one kind keeps the other; dropping both leaves Redis.
	if err := sub.Unsubscribe(ctx(t), KindChannel, names...); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, KindShard, names[0], "shard only")
	if m := receive(t, sub); m.Kind != KindShard || string(m.Payload) != "shard only" {
		t.Fatalf("after dropping the channel kind: %+v", m)
	}
	testutil.Eventually(t, "unsubscribed names leave the cluster", func() bool {
		counts, err := pub.NumSub(ctx(t), KindShard, names...)
		return err == nil && counts[0] == 1 && slices.Max(counts[1:]) == 0
	})
	if err := sub.Unsubscribe(ctx(t), KindShard, names[0]); err != nil {
		t.Fatal(err)
	}
	sub.shards.(*slotSubscribers).mu.Lock()
	open := len(sub.shards.(*slotSubscribers).slots)
	sub.shards.(*slotSubscribers).mu.Unlock()
	if open != 0 {
		t.Errorf("%d slot connections still open with nothing subscribed", open)
	}
}

// TestClusterSlotMoveResubscribes moves a subscribed channel's slot to
// another primary: Redis ends the subscription, and the engine subscribes
// again on the new owner.
func TestClusterSlotMoveResubscribes(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	pub, sub := clusterBroker(t, c, true), clusterBroker(t, c, true)
	const name = "acme:moving"
	if err := sub.Subscribe(ctx(t), KindChannel, name); err != nil {
		t.Fatal(err)
	}
	from := c.MasterOf(name)
	var to *testutil.RedisServer
	for _, m := range c.Masters() {
		if m != from {
			to = m
			break
		}
	}
	moveSlot(t, redisSlot(name), from, to, c.Masters())
	testutil.Eventually(t, "the slot's new owner serves the subscription", func() bool {
		if c.MasterOf(name) != to {
			return false
		}
		n, err := nodeClient(t, to).PubSubShardNumSub(ctx(t), name).Result()
		return err == nil && n[name] == 1
	})
	publish(t, pub, KindChannel, name, "after the move")
	if m := receive(t, sub); string(m.Payload) != "after the move" {
		t.Fatalf("got %+v", m)
	}
}

func nodeClient(t *testing.T, n *testutil.RedisServer) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: n.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// moveSlot reassigns an empty slot from one master to another the way
// redis-cli --cluster reshard does. IMPORTING matters: the NODE that ends an
// import raises the new owner's configEpoch above every other, while a bare
// NODE leaves it as it was, possibly below the old owner's. A heartbeat the
// old owner sent before it heard then hands the slot back to it on the
// nodes already told, and once the old owner lets go too, nobody claims the
// slot: the nodes disagree for good, each redirecting to another.
func moveSlot(t *testing.T, slot int, from, to *testutil.RedisServer, masters []*testutil.RedisServer) {
	fromID, toID := nodeID(t, from), nodeID(t, to)
	setSlot(t, to, slot, "importing", fromID)
	setSlot(t, from, slot, "migrating", toID)
	// The new owner first, so that the old one never hands the slot to
	// nobody.
	setSlot(t, to, slot, "node", toID)
	setSlot(t, from, slot, "node", toID)
	for _, m := range masters {
		if m != from && m != to {
			setSlot(t, m, slot, "node", toID)
		}
	}
}

func nodeID(t *testing.T, n *testutil.RedisServer) string {
	id, err := nodeClient(t, n).Do(ctx(t), "cluster", "myid").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func setSlot(t *testing.T, n *testutil.RedisServer, slot int, state, id string) {
	if err := nodeClient(t, n).Do(ctx(t), "cluster", "setslot", slot, state, id).Err(); err != nil {
		t.Fatalf("CLUSTER SETSLOT %d %s on %s: %v", slot, state, n.Addr(), err)
	}
}

// TestClusterFailoverKeepsSubscriptions kills the primary that holds the
// subscription: the owner of a shard channel's slot, or for classic pub/sub
// the node the subscriber connected to (any node: go-redis picks one at
// random; a replica holding it is stopped instead). After a replica takes
// over, delivery resumes without subscribing again, and the killed node
// rejoins as a replica.
func TestClusterFailoverKeepsSubscriptions(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 1)
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			pub, sub := clusterBroker(t, c, sharded), clusterBroker(t, c, sharded)
			name := fmt.Sprintf("acme:failover-%v", sharded)
			if err := sub.Subscribe(ctx(t), KindChannel, name); err != nil {
				t.Fatal(err)
			}
			publish(t, pub, KindChannel, name, "before")
			receive(t, sub)

			killed := c.MasterOf(name)
			if !sharded {
				killed = classicHolder(t, c, name)
			}
			if slices.Contains(c.Masters(), killed) {
				c.KillMaster(t, killed)
			} else {
				killed.Stop()
			}
			defer c.Restart(t, killed)
			testutil.Eventually(t, "delivery resumes after the failover", func() bool {
				batch := []Publication{{Kind: KindChannel, Channel: name, Payload: []byte("after")}}
				_ = pub.Publish(ctx(t), batch)
				return batch[0].Err == nil && batch[0].Receivers == 1
			})
			if m := receive(t, sub); string(m.Payload) != "after" {
				t.Fatalf("got %+v", m)
			}
			testutil.Eventually(t, "engines healthy again", func() bool { return pub.Health().Up && sub.Health().Up })
		})
	}
}

// classicHolder is the node where a classic subscription to name lives.
func classicHolder(t *testing.T, c *testutil.RedisCluster, name string) *testutil.RedisServer {
	for _, addr := range c.Seeds() {
		if n, err := nodeClient(t, c.Node(addr)).PubSubNumSub(ctx(t), name).Result(); err == nil && n[name] == 1 {
			return c.Node(addr)
		}
	}
	t.Fatalf("no node holds the subscription to %s", name)
	return nil
}

// TestClusterClassicKeepsOrder: a channel's messages enter the cluster at
// one node, so a subscriber elsewhere gets them in publish order.
func TestClusterClassicKeepsOrder(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	pub, sub := clusterBroker(t, c, false), clusterBroker(t, c, false)
	if err := sub.Subscribe(ctx(t), KindChannel, "seq"); err != nil {
		t.Fatal(err)
	}
	const n = 300
	batch := make([]Publication, n)
	for i := range batch {
		batch[i] = Publication{Kind: KindChannel, Channel: "seq", Payload: []byte{byte(i), byte(i >> 8)}}
	}
	if err := pub.Publish(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := receive(t, sub)
		if got := int(m.Payload[0]) | int(m.Payload[1])<<8; got != i {
			t.Fatalf("message %d arrived as %d", i, got)
		}
	}
}

// TestClusterPublishesDuringSlotMove publishes without pause while the
// channel's slot moves to another primary: the publisher's pipeline is
// answered MOVED and follows it. Every publication counted as delivered is
// delivered, once and in order; the others get an error or a count of 0
// (the subscription moving too), never a false count.
func TestClusterPublishesDuringSlotMove(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	pub, sub := clusterBroker(t, c, true), clusterBroker(t, c, true)
	const name = "acme:moving"
	if err := sub.Subscribe(ctx(t), KindChannel, name); err != nil {
		t.Fatal(err)
	}
	counted := map[uint32]bool{}
	var failed int
	var next uint32
	publishSome := func() {
		batch := make([]Publication, 8)
		for i := range batch {
			batch[i] = Publication{Kind: KindChannel, Channel: name, Payload: binary.BigEndian.AppendUint32(nil, next)}
			next++
		}
		if err := pub.Publish(ctx(t), batch); err != nil {
			t.Fatal(err)
		}
		for _, p := range batch {
			switch {
			case p.Err != nil:
				failed++
			case p.Receivers == 1:
				counted[binary.BigEndian.Uint32(p.Payload)] = true
			case p.Receivers != 0:
				t.Fatalf("publish counted %d receivers", p.Receivers)
			}
		}
	}
	for range 20 {
		publishSome()
	}
	from := c.MasterOf(name)
	to := c.Masters()[0]
	if to == from {
		to = c.Masters()[1]
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // publishes right through the move
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				publishSome()
			}
		}
	}()
	moveSlot(t, redisSlot(name), from, to, c.Masters())
	close(stop)
	<-stopped
	testutil.Eventually(t, "publishes reach the subscriber on the new owner", func() bool {
		before := len(counted)
		publishSome()
		return len(counted) == before+8
	})
	for range 20 {
		publishSome()
	}
	last := int64(-1)
	for seen := 0; seen < len(counted); {
		m := receive(t, sub)
		seq := binary.BigEndian.Uint32(m.Payload)
		if int64(seq) <= last {
			t.Fatalf("message %d after %d", seq, last)
		}
		last = int64(seq)
		if counted[seq] {
			seen++
		}
	}
	t.Logf("%d of %d publications counted and delivered, %d failed", len(counted), next, failed)
}
