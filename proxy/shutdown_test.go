package proxy

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
	"github.com/redis/go-redis/v9"
)

// TestShutdownDeliversWhatWasAcknowledged: a publisher pipelines PUBLISHes
// while the server shuts down; every message it saw acknowledged reaches
// every subscriber, in order, before the subscriber's connection closes.
func TestShutdownDeliversWhatWasAcknowledged(t *testing.T) {
	onEngines(t, func(t *testing.T, env *testEnv) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		subs := make([]*redis.PubSub, 3)
		for i := range subs {
			subs[i] = env.goRedis(t, "alice").Subscribe(ctx, "orders")
			if _, err := subs[i].Receive(ctx); err != nil {
				t.Fatal(err)
			}
		}
		pub := testutil.StartCountingPublisher(ctx, env.goRedis(t, "alice"), "orders")
		testutil.Eventually(t, "publishes acknowledged", func() bool { return pub.Acked() >= 500 })
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		<-pub.Done()
		acked := pub.Acked()
		for i, sub := range subs {
			got := 0
			for ; ; got++ {
				m, err := sub.ReceiveMessage(ctx)
				if err != nil {
					break
				}
				if m.Payload != strconv.Itoa(got) {
					t.Fatalf("subscriber %d: message %d is %q", i, got, m.Payload)
				}
			}
			if got < acked {
				t.Errorf("subscriber %d received %d messages; %d were acknowledged", i, got, acked)
			}
		}
	})
}

// TestShutdownDeliversWhatOtherNodesPublished: messages that another
// pubgate node (here, a client of the same Redis) had acknowledged when
// shutdown began reach this node's subscribers before they are closed,
// however far behind the upstream connection was.
func TestShutdownDeliversWhatOtherNodesPublished(t *testing.T) {
	srv := testutil.StartRedis(t)
	b, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	env := startProxy(t, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := env.goRedis(t, "alice").Subscribe(ctx, "orders")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	other := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer other.Close()
	const n = 20000
	if _, err := other.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Publish(ctx, "acme:orders", strconv.Itoa(i))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d: %v, %v", i, m, err)
		}
	}
}

// goRedis is a go-redis client logged in as user, one connection at most,
// that does not retry.
func (e *testEnv) goRedis(t *testing.T, user string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr, Username: user, Password: user + "-secret",
		PoolSize: 1, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
