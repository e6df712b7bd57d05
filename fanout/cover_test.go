package fanout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// tenantNames is a rewrite-mode namespace: its patterns can be covered.
type tenantNames string

func (p tenantNames) StripBytes(channel []byte) ([]byte, bool) {
	return bytes.CutPrefix(channel, []byte(p))
}

func (p tenantNames) UpstreamPrefix() string { return string(p) }

// coverEnv is a hub on a real redis-server, with a plain client to publish
// and to ask Redis what it holds.
type coverEnv struct {
	t      *testing.T
	hub    *Hub
	broker *upstream.Redis
	redis  *redis.Client
	srv    *testutil.RedisServer
	// numPat asks Redis how many patterns it holds (every node of a cluster)
	numPat func() (int64, error)
}

func newCoverEnv(t *testing.T, threshold int) *coverEnv {
	t.Helper()
	srv := testutil.StartRedis(t)
	b, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	env := hubOn(t, b, threshold)
	env.redis, env.srv = c, srv
	env.numPat = func() (int64, error) { return c.PubSubNumPat(t.Context()).Result() }
	return env
}

func hubOn(t *testing.T, b *upstream.Redis, threshold int) *coverEnv {
	t.Cleanup(func() { b.Close() })
	h := NewHub(b, 5*time.Second, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	h.CoverPatternsOver(threshold)
	return &coverEnv{t: t, hub: h, broker: b}
}

// client is one subscriber: its outbox, what it received, its patterns.
type client struct {
	env    *coverEnv
	tenant tenantNames
	rec    *recorder
	out    *Outbox
	held   map[string]*Membership
}

func (env *coverEnv) client(tenant string) *client {
	r := &recorder{}
	return &client{env: env, tenant: tenantNames(tenant), rec: r,
		out: newTestOutbox(env.t, r, unlimited, nil, nil), held: make(map[string]*Membership)}
}

// psubscribe subscribes the client to patterns, as the proxy does.
func (c *client) psubscribe(patterns ...string) {
	c.env.t.Helper()
	reqs := make([]Subscription, len(patterns))
	for i, p := range patterns {
		reqs[i] = Subscription{Kind: upstream.KindPattern, ClientName: p,
			Upstream: upstream.EscapeGlob(string(c.tenant)) + p, Names: c.tenant, Owner: string(c.tenant)}
	}
	got, err := c.env.hub.Acquire(c.env.t.Context(), reqs)
	if err != nil {
		c.env.t.Fatal(err)
	}
	for i, e := range got {
		c.held[patterns[i]] = c.env.hub.Attach(e, c.out, new(Deliveries), func() {
			c.out.Push([]byte("+psubscribed "+patterns[i]+"\r\n"), RESP2)
		})
	}
}

func (c *client) punsubscribe(patterns ...string) {
	var entries []*Entry
	for _, p := range patterns {
		mb := c.held[p]
		delete(c.held, p)
		mb.Detach()
		entries = append(entries, mb.Entry())
	}
	c.env.hub.Release(entries)
}

// delivery is one pmessage a client received.
type delivery struct{ pattern, channel, payload string }

// deliveries parses what the client received; confirmations are skipped.
func (c *client) deliveries() []delivery {
	data, _ := c.rec.snapshot()
	var got []delivery
	for b := []byte(data); len(b) > 0; {
		n, frame := redcon.ReadNextRESP(b)
		if n == 0 {
			break // a frame still being written
		}
		b = b[n:]
		if frame.Type != redcon.Array {
			continue
		}
		var parts []string
		frame.ForEach(func(r redcon.RESP) bool { parts = append(parts, string(r.Data)); return true })
		if len(parts) != 4 || parts[0] != "pmessage" {
			c.env.t.Fatalf("not a pmessage: %q", parts)
		}
		got = append(got, delivery{parts[1], parts[2], parts[3]})
	}
	return got
}

// upstreamPatterns is how many patterns Redis holds (PUBSUB NUMPAT).
func (env *coverEnv) upstreamPatterns() int64 {
	n, err := env.numPat()
	if err != nil {
		env.t.Fatal(err)
	}
	return n
}

func (env *coverEnv) publish(channel, payload string) int64 {
	batch := []upstream.Publication{{Kind: upstream.KindChannel, Channel: channel, Payload: []byte(payload)}}
	if err := env.broker.Publish(env.t.Context(), batch); err != nil || batch[0].Err != nil {
		env.t.Fatal(err, batch[0].Err)
	}
	return env.hub.Receivers(upstream.KindChannel, channel, batch[0].Receivers)
}

var acmePatterns = []string{"news.*", "news.sport.?", "a[bc]", "x*", "*", "news.[^s]*", `lit\*`, "news.sport.*"}

var acmeChannels = []string{"news.sport.1", "news.weather", "ab", "ac", "xylophone", "lit*", "litx", "other", "news.sport.12"}

// TestCoverOneUpstreamPatternPerTenant: over the threshold a tenant's
// patterns cost Redis one pattern; every client pattern gets exactly the
// messages it matches, under its own name, nothing of another tenant, and
// PUBLISH counts every matching client pattern; back under half the
// threshold they are subscribed one by one again, with the same results.
func TestCoverOneUpstreamPatternPerTenant(t *testing.T) {
	env := newCoverEnv(t, 4)
	acme, globex := env.client("acme:"), env.client("globex:")
	globex.psubscribe("news.*", "*")
	acme.psubscribe(acmePatterns[:3]...)
	if n := env.upstreamPatterns(); n != 5 {
		t.Fatalf("under the threshold Redis holds %d patterns, want 5 (one each)", n)
	}
	check := func(round string, patterns []string) {
		t.Helper()
		before := len(acme.deliveries())
		want := map[delivery]bool{}
		for i, ch := range acmeChannels {
			payload := fmt.Sprint(round, i)
			matching := 0
			for _, p := range patterns {
				if upstream.Match(p, ch) {
					want[delivery{p, ch, payload}] = true
					matching++
				}
			}
			if n := env.publish("acme:"+ch, payload); n != int64(matching) {
				t.Fatalf("%s: PUBLISH %s counts %d receivers, want %d", round, ch, n, matching)
			}
		}
		env.publish("globex:news.x", round) // globex's, never acme's
		testutil.Eventually(t, "acme received its messages", func() bool { return len(acme.deliveries())-before >= len(want) })
		time.Sleep(20 * time.Millisecond) // time for a duplicate to show
		got := acme.deliveries()[before:]
		if len(got) != len(want) {
			t.Fatalf("%s: %d deliveries, want %d: %q", round, len(got), len(want), got)
		}
		for _, d := range got {
			if !want[d] {
				t.Fatalf("%s: unexpected delivery %q", round, d)
			}
		}
	}
	check("individual", acmePatterns[:3])

	acme.psubscribe(acmePatterns[3:]...) // 8 > 4: covered
	if n := env.upstreamPatterns(); n != 3 {
		t.Fatalf("covered, Redis holds %d patterns, want 3 (acme's cover and globex's two)", n)
	}
	check("covered", acmePatterns)
	if held := env.hub.Held()[upstream.KindPattern]; held != 3 {
		t.Fatalf("Held counts %d upstream patterns, want 3", held)
	}

	acme.punsubscribe(acmePatterns[2:7]...) // 3 left: 3 > 4/2, still covered
	if n := env.upstreamPatterns(); n != 3 {
		t.Fatalf("at 3 patterns Redis holds %d, want 3 (still covered)", n)
	}
	acme.punsubscribe(acmePatterns[7]) // 2 ≤ 4/2: one by one again
	if n := env.upstreamPatterns(); n != 4 {
		t.Fatalf("uncovered, Redis holds %d patterns, want 4", n)
	}
	check("uncovered", acmePatterns[:2])
	if g := globex.deliveries(); len(g) != 6 {
		t.Fatalf("globex received %d messages, want 6 (its own 3 publishes, two patterns each): %q", len(g), g)
	}
}

// TestCoverSwitchLosesAndRepeatsNothing: a client that stays subscribed
// receives every message of running publishers exactly once, in order,
// while its tenant's patterns switch into covering and out again, over
// and over.
func TestCoverSwitchLosesAndRepeatsNothing(t *testing.T) {
	env := newCoverEnv(t, 6)
	// The hub takes the engine's messages one at a time, yielding between
	// them, so that a switch made anywhere but between two publishes (the
	// point Redis confirmed it) would split one publish's copies.
	env.broker.SetHandler(func(burst []upstream.Message) {
		for i := range burst {
			env.hub.dispatch(burst[i : i+1])
			runtime.Gosched()
		}
	})
	stay := env.client("acme:")
	patterns := []string{"feed.*", "feed.?", "f*"}
	stay.psubscribe(patterns...)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	channels := []string{"feed.1", "feed.2", "feed.3"}
	var pubs []*testutil.CountingPublisher
	for _, ch := range channels {
		pubs = append(pubs, testutil.StartPacedPublisher(ctx, env.redis, "acme:"+ch, time.Millisecond))
	}
	others := env.client("acme:")
	extra := []string{"a*", "b*", "c*", "d*"}
	for round := range 40 {
		others.psubscribe(extra...) // 7 > 6: in
		if n := env.upstreamPatterns(); n != 1 {
			t.Fatalf("round %d: covered, Redis holds %d patterns", round, n)
		}
		others.punsubscribe(extra...) // 3 ≤ 6/2: out
		if n := env.upstreamPatterns(); n != 3 {
			t.Fatalf("round %d: uncovered, Redis holds %d patterns", round, n)
		}
	}
	others.psubscribe(extra...) // end covered: the last messages come by the cover
	stop()
	acked := 0
	for _, p := range pubs {
		<-p.Done()
		if p.Acked() < 100 {
			t.Fatalf("a publisher published only %d messages", p.Acked())
		}
		acked += p.Acked()
	}
	want := acked * len(patterns)
	testutil.Eventually(t, "every message arrived", func() bool { return len(stay.deliveries()) >= want })
	time.Sleep(20 * time.Millisecond)
	next := map[delivery]int{} // by pattern and channel
	for _, d := range stay.deliveries() {
		k := delivery{pattern: d.pattern, channel: d.channel}
		if d.payload != strconv.Itoa(next[k]) {
			t.Fatalf("pattern %s, channel %s: got message %s, want %d (lost, repeated or reordered)", d.pattern, d.channel, d.payload, next[k])
		}
		next[k]++
	}
	if got := len(stay.deliveries()); got != want {
		t.Fatalf("%d deliveries, want %d", got, want)
	}
	if len(others.deliveries()) != 0 {
		t.Fatal("patterns that match nothing received messages")
	}
}

// TestCoverBarrier: a pattern subscribed while its tenant is covered
// receives nothing published before its subscribe returned, and everything
// after it, in order.
func TestCoverBarrier(t *testing.T) {
	env := newCoverEnv(t, 2)
	env.client("acme:").psubscribe("a*", "b*", "c*") // covered
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	pub := testutil.StartPacedPublisher(ctx, env.redis, "acme:feed", time.Millisecond)
	testutil.Eventually(t, "the publisher runs", func() bool { return pub.Acked() > 50 })
	var late []*client
	var before []int
	for range 5 {
		c := env.client("acme:")
		before = append(before, pub.Acked())
		c.psubscribe("feed*")
		late = append(late, c)
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	<-pub.Done()
	acked := pub.Acked()
	for i, c := range late {
		testutil.Eventually(t, "the last message arrived", func() bool {
			got := c.deliveries()
			return len(got) > 0 && got[len(got)-1].payload == strconv.Itoa(acked-1)
		})
		got := c.deliveries()
		first, _ := strconv.Atoi(got[0].payload)
		if first < before[i] {
			t.Fatalf("client %d subscribed after message %d was acknowledged, and received it", i, first)
		}
		for j, d := range got {
			if d.payload != strconv.Itoa(first+j) || d.pattern != "feed*" {
				t.Fatalf("client %d: delivery %d is %q, want message %d", i, j, d, first+j)
			}
		}
	}
}

// TestCoverNotForOtherNames: patterns outside the tenant's prefix (shared
// ones), tenants without a prefix and engines that cannot switch are never
// covered.
func TestCoverNotForOtherNames(t *testing.T) {
	env := newCoverEnv(t, 1)
	shared := env.client("acme:")
	var reqs []Subscription
	for _, p := range []string{"shared.a*", "shared.b*", "shared.c*"} {
		reqs = append(reqs, Subscription{Kind: upstream.KindPattern, ClientName: p, Upstream: p, Names: shared.tenant, Owner: "acme"})
	}
	if _, err := env.hub.Acquire(t.Context(), reqs); err != nil {
		t.Fatal(err)
	}
	enforce := env.client("")
	enforce.psubscribe("x*", "y*")
	if n := env.upstreamPatterns(); n != 5 {
		t.Fatalf("Redis holds %d patterns, want 5: none of them can be covered", n)
	}

	mem := NewHub(upstream.NewMemory(), time.Second, zap.NewNop())
	mem.CoverPatternsOver(1)
	if mem.switcher != nil {
		t.Fatal("the memory engine cannot switch: no covering")
	}
}

// TestCoverDispatchAllocations: a covered message allocates its frame
// only, as any other.
func TestCoverDispatchAllocations(t *testing.T) {
	env := newCoverEnv(t, 1)
	c := env.client("acme:")
	c.psubscribe("a*", "b*", "feed*")
	g := env.hub.groups["acme:"]
	if !g.covering.Load() {
		t.Fatal("not covered")
	}
	var seq atomic.Uint64
	seq.Store(1 << 40) // after every member's barrier
	burst := []upstream.Message{{Kind: upstream.KindPattern, Pattern: []byte(g.cover), Channel: []byte("acme:feed"), Payload: []byte("x")}}
	env.hub.dispatch(burst)
	allocs := testing.AllocsPerRun(100, func() {
		burst[0].Seq = seq.Add(1)
		env.hub.dispatch(burst)
	})
	if allocs > 1.5 && !raceEnabled { // the race detector drops pooled lists at random
		t.Fatalf("a covered dispatch allocates %.1f times", allocs)
	}
	testutil.Eventually(t, "the covered messages arrived", func() bool { return len(c.deliveries()) == 101 })
}

// TestCoverSurvivesUpstreamRestart: after Redis restarts, the engine
// subscribes the cover again, and the covered patterns get each message
// once, by the cover alone.
func TestCoverSurvivesUpstreamRestart(t *testing.T) {
	env := newCoverEnv(t, 2)
	c := env.client("acme:")
	c.psubscribe("a*", "ab*", "abc*")
	env.srv.Shutdown()
	env.srv.Start()
	testutil.Eventually(t, "the cover is subscribed again", func() bool {
		n, err := env.numPat()
		return err == nil && n == 1
	})
	if n := env.publish("acme:abc", "after"); n != 3 {
		t.Fatalf("PUBLISH counts %d receivers, want 3", n)
	}
	testutil.Eventually(t, "the message arrived", func() bool { return len(c.deliveries()) >= 3 })
	time.Sleep(20 * time.Millisecond)
	if got := c.deliveries(); len(got) != 3 {
		t.Fatalf("deliveries %q, want one per pattern", got)
	}
}

// TestCoverOnACluster: in a Redis Cluster (classic mode) the cover, on the
// one channel-and-pattern connection, hears every node's publishes.
func TestCoverOnACluster(t *testing.T) {
	cl := testutil.StartRedisCluster(t, 3, 0)
	b, err := upstream.NewRedis(upstream.RedisOptions{Cluster: &upstream.ClusterOptions{Addrs: cl.Seeds()},
		Timeout: 2 * time.Second, HealthInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "cluster engine up", func() bool { return b.Health().Up })
	env := hubOn(t, b, 2)
	env.numPat = func() (n int64, err error) {
		for _, m := range cl.Masters() {
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			k, e := c.PubSubNumPat(t.Context()).Result()
			c.Close()
			n, err = n+k, errors.Join(err, e)
		}
		return n, err
	}
	c := env.client("acme:")
	c.psubscribe("ch.*", "ch.1*", "*")
	if n := env.upstreamPatterns(); n != 1 {
		t.Fatalf("the cluster holds %d patterns, want 1", n)
	}
	want := 0
	for i := range 30 { // channels of many slots, entering at every primary
		ch := fmt.Sprint("ch.", i)
		env.publish("acme:"+ch, "x")
		for _, p := range []string{"ch.*", "ch.1*", "*"} {
			if upstream.Match(p, ch) {
				want++
			}
		}
	}
	testutil.Eventually(t, "every message arrived", func() bool { return len(c.deliveries()) >= want })
	time.Sleep(50 * time.Millisecond)
	if got := len(c.deliveries()); got != want {
		t.Fatalf("%d deliveries, want %d", got, want)
	}
}
