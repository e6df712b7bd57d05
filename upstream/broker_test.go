package upstream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// engines runs a test against every Broker implementation.
func engines(t *testing.T, test func(t *testing.T, b Broker)) {
	t.Run("memory", func(t *testing.T) {
		b := collect(NewMemory())
		defer b.Close()
		test(t, b)
	})
	t.Run("redis", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		b, err := NewRedis(RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		collect(b)
		defer b.Close()
		test(t, b)
	})
}

// inboxes hold each test broker's messages, for receive.
var inboxes sync.Map // Broker → chan Message

// collect makes b deliver its messages to an inbox that receive reads.
func collect[B Broker](b B) B {
	in := make(chan Message, 1<<16)
	b.SetHandler(func(burst []Message) {
		for _, m := range burst {
			in <- m.Clone()
		}
	})
	inboxes.Store(Broker(b), in)
	return b
}

func inbox(b Broker) chan Message {
	in, _ := inboxes.Load(b)
	return in.(chan Message)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func publish(t *testing.T, b Broker, kind Kind, channel, payload string) int64 {
	t.Helper()
	batch := []Publication{{Kind: kind, Channel: channel, Payload: []byte(payload)}}
	if err := b.Publish(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Err != nil {
		t.Fatal(batch[0].Err)
	}
	return batch[0].Receivers
}

func receive(t *testing.T, b Broker) Message {
	t.Helper()
	select {
	case m := <-inbox(b):
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message received")
	}
	return Message{}
}

func expectNoMessage(t *testing.T, b Broker) {
	t.Helper()
	// A sentinel published after the unwanted message must arrive first.
	if err := b.Subscribe(ctx(t), KindChannel, "sentinel"); err != nil {
		t.Fatal(err)
	}
	publish(t, b, KindChannel, "sentinel", "s")
	if m := receive(t, b); string(m.Channel) != "sentinel" {
		t.Fatalf("unexpected message %+v", m)
	}
	if err := b.Unsubscribe(ctx(t), KindChannel, "sentinel"); err != nil {
		t.Fatal(err)
	}
}

func TestBrokerChannelsPatternsShards(t *testing.T) {
	engines(t, func(t *testing.T, b Broker) {
		c := ctx(t)
		if err := b.Subscribe(c, KindChannel, "acme:orders", "acme:other"); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(c, KindPattern, `acme:o*`); err != nil {
			t.Fatal(err)
		}
		if n := publish(t, b, KindChannel, "acme:orders", "hello"); n != 2 {
			t.Fatalf("PUBLISH receivers = %d, want 2 (channel + pattern)", n)
		}
		got := []Message{receive(t, b), receive(t, b)}
		want := []Message{
			{Kind: KindChannel, Channel: []byte("acme:orders"), Payload: []byte("hello")},
			{Kind: KindPattern, Pattern: []byte("acme:o*"), Channel: []byte("acme:orders"), Payload: []byte("hello")},
		}
		for i := range want {
			if got[i].Kind != want[i].Kind || string(got[i].Pattern) != string(want[i].Pattern) ||
				string(got[i].Channel) != string(want[i].Channel) || string(got[i].Payload) != string(want[i].Payload) {
				t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
			}
		}

		if err := b.Subscribe(c, KindShard, "acme:s1"); err != nil {
			t.Fatal(err)
		}
		if n := publish(t, b, KindShard, "acme:s1", "sharded"); n != 1 {
			t.Fatalf("SPUBLISH receivers = %d, want 1", n)
		}
		if m := receive(t, b); m.Kind != KindShard || string(m.Channel) != "acme:s1" {
			t.Fatalf("shard message = %+v", m)
		}

		chans, err := b.Channels(c, KindChannel, "acme:*")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(chans)
		if !slices.Equal(chans, []string{"acme:orders", "acme:other"}) {
			t.Errorf("Channels = %q", chans)
		}
		counts, err := b.NumSub(c, KindChannel, "acme:orders", "nobody")
		if err != nil || !slices.Equal(counts, []int64{1, 0}) {
			t.Errorf("NumSub = %v, %v", counts, err)
		}
		shards, err := b.Channels(c, KindShard, "")
		if err != nil || !slices.Equal(shards, []string{"acme:s1"}) {
			t.Errorf("shard Channels = %q, %v", shards, err)
		}

		if err := b.Unsubscribe(c, KindChannel, "acme:orders"); err != nil {
			t.Fatal(err)
		}
		if err := b.Unsubscribe(c, KindPattern, "acme:o*"); err != nil {
			t.Fatal(err)
		}
		publish(t, b, KindChannel, "acme:orders", "after unsubscribe")
		expectNoMessage(t, b)
	})
}

func TestBrokerOrderPerChannel(t *testing.T) {
	engines(t, func(t *testing.T, b Broker) {
		if err := b.Subscribe(ctx(t), KindChannel, "seq"); err != nil {
			t.Fatal(err)
		}
		const n = 500
		batch := make([]Publication, n)
		for i := range batch {
			batch[i] = Publication{Kind: KindChannel, Channel: "seq", Payload: []byte{byte(i), byte(i >> 8)}}
		}
		go func() { _ = b.Publish(context.Background(), batch) }()
		for i := 0; i < n; i++ {
			m := receive(t, b)
			if got := int(m.Payload[0]) | int(m.Payload[1])<<8; got != i {
				t.Fatalf("message %d arrived as %d", i, got)
			}
		}
	})
}

// TestRedisRestartResubscribes restarts redis-server under a live
// subscription: delivery resumes without the caller subscribing again,
// publishes during the outage fail rather than report success, and Health
// follows the outage.
func TestRedisRestartResubscribes(t *testing.T) {
	srv := testutil.StartRedis(t)
	b, changes := watchedEngine(t, srv.URL())
	collect(b)
	testutil.Eventually(t, "engine up", func() bool { return b.Health().Up })
	if err := b.Subscribe(ctx(t), KindChannel, "live"); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx(t), KindPattern, "li*"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	batch := []Publication{{Kind: KindChannel, Channel: "live", Payload: []byte("lost")}}
	_ = b.Publish(ctx(t), batch)
	if batch[0].Err == nil {
		t.Fatal("publish during outage reported success")
	}
	testutil.Eventually(t, "engine down", func() bool { h := b.Health(); return !h.Up && h.Err != nil })
	srv.Start()
	testutil.Eventually(t, "engine up again", func() bool { return b.Health().Up })
	for _, want := range []bool{true, false, true} {
		if h := <-changes; h.Up != want {
			t.Fatalf("health change Up=%v, want %v", h.Up, want)
		}
	}
	testutil.Eventually(t, "subscriptions restored upstream", func() bool {
		n, err := b.NumSub(ctx(t), KindChannel, "live")
		return err == nil && n[0] == 1
	})
	if n := publish(t, b, KindChannel, "live", "back"); n != 2 {
		t.Fatalf("receivers after restart = %d, want 2", n)
	}
	for range 2 {
		if m := receive(t, b); string(m.Payload) != "back" {
			t.Fatalf("after restart got %+v", m)
		}
	}
}

// TestBrokerDoesNotRetainPayload: callers reuse their buffers once Publish
// returned, and subscribers must still get what was published.
// TestSyncQueuesAcknowledgedMessages: once Sync returns, every message
// whose publish was acknowledged before it waits on Messages, for channels,
// patterns and shard channels alike; a draining pubgate relies on it to
// deliver them before it closes its subscribers.
func TestSyncQueuesAcknowledgedMessages(t *testing.T) {
	engines(t, func(t *testing.T, b Broker) {
		if err := b.Sync(ctx(t)); err != nil { // nothing held: nothing to wait for
			t.Fatal(err)
		}
		subscribeAll(t, b)
		const n = 200
		for i := range n {
			publish(t, b, KindChannel, "acme:sync", fmt.Sprint(i))
			publish(t, b, KindShard, "acme:sync", fmt.Sprint(i))
		}
		if err := b.Sync(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if got := len(inbox(b)); got != 3*n { // the channel's messages match the pattern too
			t.Fatalf("%d messages handed over after Sync, want %d", got, 3*n)
		}
	})
}

func subscribeAll(t *testing.T, b Broker) {
	t.Helper()
	for kind, name := range map[Kind]string{KindChannel: "acme:sync", KindPattern: "acme:sy*", KindShard: "acme:sync"} {
		if err := b.Subscribe(ctx(t), kind, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBrokerDoesNotRetainPayload(t *testing.T) {
	engines(t, func(t *testing.T, b Broker) {
		if err := b.Subscribe(ctx(t), KindChannel, "reuse"); err != nil {
			t.Fatal(err)
		}
		buf := []byte("first")
		if err := b.Publish(ctx(t), []Publication{{Kind: KindChannel, Channel: "reuse", Payload: buf}}); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXX")
		if m := receive(t, b); string(m.Payload) != "first" {
			t.Fatalf("delivered %q after the caller reused its buffer", m.Payload)
		}
	})
}

// TestRedisOverTLSWithACL: pubgate reaches a Redis that speaks only TLS,
// requires a client certificate, and has no default user, only an ACL user.
func TestRedisOverTLSWithACL(t *testing.T) {
	serverCA, clientCA := testutil.NewCA(t, "redis CA"), testutil.NewCA(t, "redis client CA")
	srv := testutil.StartRedisTLS(t, serverCA, clientCA,
		"--user", "default", "off", "--user", "gate", "on", ">gate-secret", "~*", "&*", "+@all")
	url := "rediss://gate:gate-secret@" + srv.Addr() + "/"
	b, err := NewRedis(RedisOptions{URL: url, Timeout: 5 * time.Second, TLS: srv.TLS})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	collect(b)
	if err := b.Subscribe(ctx(t), KindChannel, "secure"); err != nil {
		t.Fatal(err)
	}
	if n := publish(t, b, KindChannel, "secure", "over tls"); n != 1 {
		t.Fatalf("receivers = %d", n)
	}
	if m := receive(t, b); string(m.Payload) != "over tls" {
		t.Fatalf("received %+v", m)
	}

	wrong, err := NewRedis(RedisOptions{URL: "rediss://gate:wrong@" + srv.Addr() + "/", Timeout: time.Second, TLS: srv.TLS})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	batch := []Publication{{Kind: KindChannel, Channel: "secure", Payload: []byte("x")}}
	_ = wrong.Publish(ctx(t), batch)
	if batch[0].Err == nil {
		t.Fatalf("publish with a wrong ACL password succeeded: %+v", batch[0])
	}
	if _, err := NewRedis(RedisOptions{URL: "redis://" + srv.Addr() + "/", TLS: srv.TLS}); err == nil {
		t.Fatal("TLS options accepted with a redis:// URL")
	}
}
