package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
)

// onEngines runs a test with pubgate over the memory engine and over a real
// redis-server.
func onEngines(t *testing.T, test func(t *testing.T, env *testEnv)) {
	t.Run("memory", func(t *testing.T) { test(t, startProxy(t, nil, nil)) })
	t.Run("redis", func(t *testing.T) { onRedis(t, test) })
}

// onRedis runs a test with pubgate over a real redis-server.
func onRedis(t *testing.T, test func(t *testing.T, env *testEnv)) {
	test(t, startProxy(t, startRedisBroker(t), nil))
}

// startRedisBroker is an engine over a redis-server of the test's own.
func startRedisBroker(t *testing.T) upstream.Broker {
	t.Helper()
	srv := testutil.StartRedis(t)
	b, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func expect(t *testing.T, c *testutil.RESPConn, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := c.Read(); got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
}

// expectQuiet checks that nothing but the answer to a PING is pending.
func expectQuiet(t *testing.T, c *testutil.RESPConn) {
	t.Helper()
	if got := c.Do("PING"); got != `["pong" ""]` && got != "PONG" {
		t.Fatalf("unexpected pending reply %s", got)
	}
}

// readSet reads n replies, in any order.
func readSet(t *testing.T, c *testutil.RESPConn, n int) map[string]bool {
	t.Helper()
	got := make(map[string]bool, n)
	for range n {
		got[c.Read()] = true
	}
	return got
}

func TestCrossTenantIsolation(t *testing.T) {
	onEngines(t, func(t *testing.T, env *testEnv) {
		alice := env.login(t, "alice") // tenant acme
		alice.Send("SUBSCRIBE", "orders")
		alice.Send("PSUBSCRIBE", "*")
		expect(t, alice, `["subscribe" "orders" :1]`, `["psubscribe" "*" :2]`)

		bob := env.login(t, "bob") // tenant globex, trying to reach acme
		hostile := []string{"*", "acme:*", "[a-z]*", "*orders*", `\*`}
		bob.Send(append([]string{"PSUBSCRIBE"}, hostile...)...)
		for i, p := range hostile {
			expect(t, bob, fmt.Sprintf(`["psubscribe" %q :%d]`, p, i+1))
		}
		bob2 := env.login(t, "bob")
		if got := bob2.Do("SUBSCRIBE", "acme:orders"); got != `["subscribe" "acme:orders" :1]` {
			t.Fatal(got)
		}

		publisher := env.login(t, "alice")
		if got := publisher.Do("PUBLISH", "orders", "for-acme"); got != ":2" {
			t.Fatalf("acme PUBLISH counted %s, want :2 (alice by channel and by pattern)", got)
		}
		expect(t, alice, `["message" "orders" "for-acme"]`, `["pmessage" "*" "orders" "for-acme"]`)

		// globex's "acme:orders" is globex's own channel, stored upstream as
		// globex:acme:orders: it reaches globex, never acme.
		intruder := env.login(t, "bob")
		if got := intruder.Do("PUBLISH", "acme:orders", "from-globex"); got != ":5" {
			t.Fatalf("globex PUBLISH counted %s, want :5", got)
		}
		expect(t, bob2, `["message" "acme:orders" "from-globex"]`)
		want := map[string]bool{}
		for _, p := range []string{"*", "acme:*", "[a-z]*", "*orders*"} {
			want[fmt.Sprintf(`["pmessage" %q "acme:orders" "from-globex"]`, p)] = true
		}
		if got := readSet(t, bob, 4); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("bob's pattern messages = %v, want %v", got, want)
		}

		checks := []struct {
			c         *testutil.RESPConn
			cmd, want string
		}{
			{publisher, "PUBSUB CHANNELS", `["orders"]`},
			{publisher, "PUBSUB NUMSUB orders acme:orders", `["orders" :1 "acme:orders" :0]`},
			{publisher, "PUBSUB NUMPAT", ":1"},
			{intruder, "PUBSUB CHANNELS", `["acme:orders"]`},
			{intruder, "PUBSUB CHANNELS acme*", `["acme:orders"]`},
			{intruder, "PUBSUB NUMSUB orders", `["orders" :0]`},
			{intruder, "PUBSUB NUMPAT", ":5"},
		}
		for _, c := range checks {
			if got := c.c.Do(strings.Fields(c.cmd)...); got != c.want {
				t.Errorf("%s = %s, want %s", c.cmd, got, c.want)
			}
		}
		expectQuiet(t, alice)
		expectQuiet(t, bob)
	})
}

// TestSharedUpstreamSubscription: many local subscribers cost the engine one
// subscription, yet every count a client sees is the one Redis would give.
func TestSharedUpstreamSubscription(t *testing.T) {
	onEngines(t, func(t *testing.T, env *testEnv) {
		const n = 5
		subs := make([]*testutil.RESPConn, n)
		for i := range subs {
			subs[i] = env.login(t, "alice")
			if got := subs[i].Do("SUBSCRIBE", "news"); got != `["subscribe" "news" :1]` {
				t.Fatal(got)
			}
		}
		psub := env.login(t, "alice")
		if got := psub.Do("PSUBSCRIBE", "n*"); got != `["psubscribe" "n*" :1]` {
			t.Fatal(got)
		}
		ctx := context.Background()
		engine, err := env.broker.NumSub(ctx, upstream.KindChannel, "acme:news")
		if err != nil || engine[0] != 1 {
			t.Fatalf("engine subscriptions for acme:news = %v, %v; want one shared", engine, err)
		}
		pub := env.login(t, "alice")
		if got := pub.Do("PUBLISH", "news", "hi"); got != fmt.Sprintf(":%d", n+1) {
			t.Fatalf("PUBLISH = %s, want :%d", got, n+1)
		}
		for _, c := range subs {
			expect(t, c, `["message" "news" "hi"]`)
		}
		expect(t, psub, `["pmessage" "n*" "news" "hi"]`)
		if got := pub.Do("PUBSUB", "NUMSUB", "news"); got != fmt.Sprintf(`["news" :%d]`, n) {
			t.Fatalf("NUMSUB = %s", got)
		}

		// The last local unsubscribe ends the engine subscription.
		for _, c := range subs {
			if got := c.Do("UNSUBSCRIBE", "news"); got != `["unsubscribe" "news" :0]` {
				t.Fatal(got)
			}
		}
		testutil.Eventually(t, "engine unsubscribed", func() bool {
			engine, err := env.broker.NumSub(ctx, upstream.KindChannel, "acme:news")
			return err == nil && engine[0] == 0
		})
		if got := pub.Do("PUBLISH", "news", "again"); got != ":1" {
			t.Fatalf("PUBLISH after unsubscribe = %s, want :1 (the pattern)", got)
		}
	})
}

// TestPipelinedCommandsAnsweredInOrder sends one write holding publishes
// interleaved with other commands; replies come back in order.
func TestPipelinedCommandsAnsweredInOrder(t *testing.T) {
	onEngines(t, func(t *testing.T, env *testEnv) {
		sub := env.login(t, "alice")
		if got := sub.Do("SUBSCRIBE", "p"); got != `["subscribe" "p" :1]` {
			t.Fatal(got)
		}
		pub := env.login(t, "alice")
		var raw strings.Builder
		var want []string
		for i := range 300 {
			fmt.Fprintf(&raw, "*3\r\n$7\r\nPUBLISH\r\n$1\r\np\r\n$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
			want = append(want, ":1")
			if i%50 == 0 {
				raw.WriteString("ECHO mark\r\n") // an inline command between the publishes
				want = append(want, `"mark"`)
			}
		}
		pub.SendRaw(raw.String())
		for i, w := range want {
			if got := pub.Read(); got != w {
				t.Fatalf("reply %d = %s, want %s", i, got, w)
			}
		}
		for i := range 300 {
			expect(t, sub, fmt.Sprintf(`["message" "p" "%d"]`, i))
		}
	})
}

// TestSlowConsumerDisconnected: a subscriber that never reads is cut off at
// the output limit while a reading subscriber of the same channel gets
// every message, in order.
func TestSlowConsumerDisconnected(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.Limits.ClientOutputBuffer.HardLimit = 1 << 20
		o.Limits.ClientOutputBuffer.SoftLimit = 512 << 10
	})
	slow := env.login(t, "alice")
	// Keep the kernel from absorbing the stream for the client that never reads.
	_ = slow.Conn.(*net.TCPConn).SetReadBuffer(4096)
	slow.Send("SUBSCRIBE", "feed")
	fast := env.login(t, "alice")
	if got := fast.Do("SUBSCRIBE", "feed"); got != `["subscribe" "feed" :1]` {
		t.Fatal(got)
	}
	testutil.Eventually(t, "slow client subscribed", func() bool {
		n, _ := env.broker.NumSub(context.Background(), upstream.KindChannel, "acme:feed")
		return len(n) == 1 && n[0] == 1 && env.srv.hub.NumSub(upstream.KindChannel, "acme:feed", 1) == 2
	})

	const messages = 2000 // 16 MiB: far beyond socket buffers and the limit
	payload := strings.Repeat("x", 8<<10)
	fastDone := make(chan error, 1)
	fastRead := make(chan int, messages)
	go func() {
		for i := range messages {
			fastRead <- i
			got, err := fast.TryRead(30 * time.Second)
			if err == nil && !strings.HasPrefix(got, fmt.Sprintf(`["message" "feed" "%05d`, i)) {
				err = fmt.Errorf("message %d: %.60s", i, got)
			}
			if err != nil {
				fastDone <- err
				return
			}
		}
		fastDone <- nil
	}()
	pub := env.login(t, "alice")
	const window = 16 // the publisher stays this close to the fast reader
	for i := range messages {
		for i >= window && <-fastRead < i-window {
		}
		pub.Send("PUBLISH", "feed", fmt.Sprintf("%05d%s", i, payload))
	}
	if err := <-fastDone; err != nil {
		t.Fatalf("fast subscriber: %v", err)
	}
	testutil.Eventually(t, "slow client disconnected", func() bool { return env.srv.SlowDisconnects() == 1 })
	if !slow.Closed() {
		t.Fatal("slow client still connected")
	}
}
