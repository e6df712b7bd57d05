package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
)

// TestMalformedInput: each bad request gets an error and a closed
// connection; the server keeps serving everyone else.
func TestMalformedInput(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.Limits.MaxPayloadBytes = 1024 })
	cases := map[string]struct{ raw, want string }{
		"bad multibulk length": {"*x\r\n", "-ERR Protocol error: invalid multibulk length"},
		"bad bulk length":      {"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length"},
		"not a bulk":           {"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'"},
		"overflowing length":   {"*1\r\n$9223372036854775806\r\nab\r\n", "-ERR Protocol error: invalid bulk length"},
		"unbalanced quotes":    {"ECHO \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request"},
		"oversized bulk":       {"*2\r\n$4\r\nECHO\r\n$999999\r\n" + strings.Repeat("x", 200<<10), "-ERR Protocol error: unauthenticated bulk length"},
		"endless inline line":  {strings.Repeat("y", 200<<10), "-ERR Protocol error: too big inline request"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			conn := testutil.DialRESP(t, env.addr)
			conn.SendRaw(c.raw)
			if got := conn.Read(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if !conn.Closed() {
				t.Fatal("connection left open after a protocol error")
			}
		})
	}
	if got := env.login(t, "alice").Do("PING"); got != "PONG" {
		t.Fatalf("server unhealthy after bad input: %s", got)
	}
}

// TestCommandsBeforeMalformedOneAreAnswered: as in Redis, what a client sent
// before a malformed request in the same packet is still executed.
func TestCommandsBeforeMalformedOneAreAnswered(t *testing.T) {
	env := startProxy(t, nil, nil)
	sub := env.login(t, "alice")
	if got := sub.Do("SUBSCRIBE", "ch"); got != `["subscribe" "ch" :1]` {
		t.Fatal(got)
	}
	c := env.login(t, "alice")
	c.SendRaw("PING\r\n*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\nkept\r\n*x\r\n")
	expect(t, c, "PONG", ":1", "-ERR Protocol error: invalid multibulk length")
	expect(t, sub, `["message" "ch" "kept"]`)
}

func TestLimits(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.Limits.MaxClients = 3
		o.Limits.MaxSubscriptionsPerClient = 2
		o.Limits.MaxPayloadBytes = 10
		o.Limits.MaxChannelBytes = 8
	})
	c := env.login(t, "alice")
	if got := c.Do("PUBLISH", "ch", strings.Repeat("z", 11)); got != "-ERR pubgate: message of 11 bytes exceeds limits.max_payload_bytes (10)" {
		t.Fatalf("oversized publish: %s", got)
	}
	if got := c.Do("PUBLISH", "ch", strings.Repeat("z", 10)); got != ":0" {
		t.Fatalf("publish at the limit: %s", got)
	}
	const tooLong = "-ERR pubgate: channel name of 9 bytes exceeds limits.max_channel_bytes (8)"
	for _, cmd := range [][]string{{"PUBLISH", "123456789", "x"}, {"SUBSCRIBE", "ok", "123456789"}, {"PSUBSCRIBE", "12345678*"}} {
		if got := c.Do(cmd...); got != tooLong {
			t.Fatalf("%v: %s", cmd, got)
		}
	}
	if got := c.Do("SUBSCRIBE", "a", "b", "c"); got != "-ERR pubgate: a client may hold at most 2 subscriptions (limits.max_subscriptions_per_client)" {
		t.Fatalf("over subscription limit: %s", got)
	}
	c.Send("SUBSCRIBE", "a", "b")
	expect(t, c, `["subscribe" "a" :1]`, `["subscribe" "b" :2]`)
	if got := c.Do("SUBSCRIBE", "a"); got != `["subscribe" "a" :2]` {
		t.Fatalf("re-subscribing a held channel: %s", got)
	}

	testutil.DialRESP(t, env.addr)
	testutil.DialRESP(t, env.addr)
	testutil.Eventually(t, "3 clients connected", func() bool { return env.srv.Clients() == 3 })
	over := testutil.DialRESP(t, env.addr)
	if got := over.Read(); got != "-ERR max number of clients reached" {
		t.Fatalf("client over max_clients: %s", got)
	}
	if !over.Closed() {
		t.Fatal("client over max_clients left connected")
	}
}

func TestCannotSwitchTenantWhileSubscribed(t *testing.T) {
	env := startProxy(t, nil, nil)
	c := env.login(t, "alice")
	c.Send("HELLO", "3")
	c.Read()
	if got := c.Do("SUBSCRIBE", "a"); got != `>["subscribe" "a" :1]` {
		t.Fatal(got)
	}
	if got := c.Do("AUTH", "bob", "bob-secret"); got != "-ERR pubgate: cannot switch to another tenant while subscribed; UNSUBSCRIBE or RESET first" {
		t.Fatalf("tenant switch: %s", got)
	}
	if got := c.Do("AUTH", "default", "alice-secret"); got != "OK" {
		t.Fatalf("same-tenant re-AUTH: %s", got)
	}
}

func TestDefaultUserBindsUnauthenticatedClients(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.DefaultUser = &authIdentityAlice
	})
	c := testutil.DialRESP(t, env.addr)
	if got := c.Do("SUBSCRIBE", "open"); got != `["subscribe" "open" :1]` {
		t.Fatalf("default user subscribe: %s", got)
	}
	c.Send("RESET")
	if got := c.Read(); got != "RESET" {
		t.Fatal(got)
	}
	if got := c.Do("ECHO", "still bound"); got != `"still bound"` {
		t.Fatalf("after RESET the default user applies again: %s", got)
	}
}

// TestRedisRestartUnderSubscribers: subscribers connected to pubgate keep
// their connections while Redis restarts; publishes during the outage fail
// with an error; delivery resumes when Redis is back.
func TestRedisRestartUnderSubscribers(t *testing.T) {
	srv := testutil.StartRedis(t)
	b, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	env := startProxy(t, b, func(o *Options) { o.UpstreamTimeout = 2 * time.Second })
	sub := env.login(t, "alice")
	sub.Send("SUBSCRIBE", "live")
	sub.Send("PSUBSCRIBE", "li*")
	expect(t, sub, `["subscribe" "live" :1]`, `["psubscribe" "li*" :2]`)
	pub := env.login(t, "alice")

	srv.Stop()
	if got := pub.Do("PUBLISH", "live", "lost"); got != "-"+errUpstream {
		t.Fatalf("publish during outage: %s", got)
	}
	srv.Start()
	testutil.Eventually(t, "subscriptions restored in Redis", func() bool {
		n, err := b.NumSub(context.Background(), upstream.KindChannel, "acme:live")
		return err == nil && n[0] == 1
	})
	if got := pub.Do("PUBLISH", "live", "back"); got != ":2" {
		t.Fatalf("publish after restart: %s", got)
	}
	expect(t, sub, `["message" "live" "back"]`, `["pmessage" "li*" "live" "back"]`)
	expectQuiet(t, sub)
}

// TestManySessionsChurn subscribes and unsubscribes one channel from many
// sessions at once while messages flow: the shared upstream subscription
// must end exactly when the last session leaves.
func TestManySessionsChurn(t *testing.T) {
	onEngines(t, func(t *testing.T, env *testEnv) {
		const sessions, rounds = 8, 20
		errs := make(chan error, sessions)
		for range sessions {
			c := env.login(t, "alice")
			go func() {
				for r := range rounds {
					c.Send("SUBSCRIBE", "churn")
					c.Send("UNSUBSCRIBE", "churn")
					c.Send("ECHO", fmt.Sprint(r))
					for {
						got, err := c.TryRead(30 * time.Second)
						if err != nil {
							errs <- err
							return
						}
						if got == fmt.Sprintf(`"%d"`, r) {
							break
						}
					}
				}
				errs <- nil
			}()
		}
		pub := env.login(t, "alice")
		for range sessions {
			pub.Do("PUBLISH", "churn", "x")
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		testutil.Eventually(t, "engine subscription released", func() bool {
			n, err := env.broker.NumSub(context.Background(), upstream.KindChannel, "acme:churn")
			return err == nil && n[0] == 0
		})
	})
}

// TestLargePayloads: payloads up to the limit pass through intact, and the
// connection keeps working after its request buffer grew and shrank.
func TestLargePayloads(t *testing.T) {
	env := startProxy(t, nil, nil)
	sub := env.login(t, "alice")
	if got := sub.Do("SUBSCRIBE", "big"); got != `["subscribe" "big" :1]` {
		t.Fatal(got)
	}
	pub := env.login(t, "alice")
	for _, size := range []int{100 << 10, 1 << 20, 10, 300 << 10} {
		payload := strings.Repeat("p", size)
		if got := pub.Do("PUBLISH", "big", payload); got != ":1" {
			t.Fatalf("PUBLISH of %d bytes: %.80s", size, got)
		}
		if got := sub.Read(); got != fmt.Sprintf(`["message" "big" %q]`, payload) {
			t.Fatalf("message of %d bytes arrived as %d bytes", size, len(got))
		}
		if got := pub.Do("PING"); got != "PONG" {
			t.Fatal(got)
		}
	}
}

// TestHelloSwitchesProtocolInOrder: while messages flow, HELLO 2 turns a
// RESP3 subscriber into a RESP2 one (the other direction is refused in RESP2
// subscribe mode, as in Redis). Messages queued before the HELLO reply are
// pushes, those after it arrays: the client can always parse its stream.
func TestHelloSwitchesProtocolInOrder(t *testing.T) {
	env := startProxy(t, nil, nil)
	pub := env.login(t, "alice")
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for {
			select {
			case <-stop:
				return
			default:
				pub.Do("PUBLISH", "flood", "m")
			}
		}
	}()
	defer func() { close(stop); <-published }()
	for round := range 10 {
		c := env.login(t, "alice")
		c.Send("HELLO", "3")
		c.Read()
		if got := c.Do("SUBSCRIBE", "flood"); got != `>["subscribe" "flood" :1]` {
			t.Fatal(got)
		}
		c.Read() // at least one message in flight
		c.Send("HELLO", "2")
		for got := c.Read(); !strings.Contains(got, `"proto"`); got = c.Read() {
			if got != `>["message" "flood" "m"]` {
				t.Fatalf("round %d: before the HELLO reply got %s", round, got)
			}
		}
		if got := c.Read(); got != `["message" "flood" "m"]` {
			t.Fatalf("round %d: after the HELLO reply got %s", round, got)
		}
		c.Conn.Close()
	}
}

// TestNoMessagesFromBeforeSubscribe: a session joining a shared subscription
// receives nothing published before its SUBSCRIBE, even while older
// messages of that channel still wait, upstream, for fan-out. The test
// stalls the fan-out on another channel so that a backlog certainly
// exists, sends the SUBSCRIBE, then lets the fan-out go on. (The memory
// engine fans out within the PUBLISH, so it has no backlog to test.)
func TestNoMessagesFromBeforeSubscribe(t *testing.T) {
	stall := &stallingBroker{Broker: startRedisBroker(t), channel: "acme:blocker", release: make(chan struct{})}
	func(t *testing.T, env *testEnv) {
		blocker := env.login(t, "alice")
		first := env.login(t, "alice")
		for c, ch := range map[*testutil.RESPConn]string{blocker: "blocker", first: "seq"} {
			if got := c.Do("SUBSCRIBE", ch); got != fmt.Sprintf(`["subscribe" %q :1]`, ch) {
				t.Fatal(got)
			}
		}

		pub := env.login(t, "alice")
		pub.Do("PUBLISH", "blocker", "stall")
		for i := range 500 {
			pub.Send("PUBLISH", "seq", fmt.Sprint("old-", i))
		}
		for range 500 {
			pub.Read()
		}
		late := env.login(t, "alice")
		late.Send("SUBSCRIBE", "seq")
		testutil.Eventually(t, "the SUBSCRIBE joined the subscription", func() bool {
			return env.srv.hub.References(upstream.KindChannel, "acme:seq") == 2
		})
		close(stall.release)
		if got := late.Read(); got != `["subscribe" "seq" :1]` {
			t.Fatal(got)
		}
		if got := pub.Do("PUBLISH", "seq", "new"); got != ":2" {
			t.Fatalf("PUBLISH new = %s", got)
		}
		if got := late.Read(); got != `["message" "seq" "new"]` {
			t.Fatalf("late subscriber first received %s, published before it subscribed", got)
		}
	}(t, startProxy(t, stall, nil))
}

// stallingBroker stops the fan-out at the first message of one channel
// until release is closed: the messages of the burst before it are
// dispatched, the rest wait with it.
type stallingBroker struct {
	upstream.Broker
	channel string
	release chan struct{}
}

func (b *stallingBroker) SetHandler(h upstream.Handler) {
	b.Broker.SetHandler(func(burst []upstream.Message) {
		for i := range burst {
			if string(burst[i].Channel) == b.channel {
				h(burst[:i])
				<-b.release
				h(burst[i:])
				return
			}
		}
		h(burst)
	})
}

// TestRepliesToAClientThatDoesNotReadStayBounded: a client that pipelines
// commands with large replies and never reads is disconnected once its
// output passes the hard limit, without pubgate first building every reply.
// net.Pipe hands the server a whole write per read, the worst case (TCP
// delivers less per read).
func TestRepliesToAClientThatDoesNotReadStayBounded(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.DefaultUser = &authIdentityAlice
		o.Limits.ClientOutputBuffer.HardLimit = 256 << 10
		o.Limits.ClientOutputBuffer.SoftLimit = 128 << 10
	})
	client, server := net.Pipe()
	defer client.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	env.srv.accept(server)
	// A request that fills the request buffer to 4 bytes short of its full
	// size (max payload + 64 KiB) grows it and gets a small reply (the payload
	// is over the limit); the flood right behind it keeps the buffer grown, so
	// the next read brings 1 MiB of COMMAND, whose replies (about 2 KB each)
	// would take 250 MB.
	const header = len("*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$1114072\r\n") + len("\r\n")
	payload := strings.Repeat("x", env.srv.maxQueryBytes-4-header)
	flood := fmt.Sprintf("*3\r\n$7\r\nPUBLISH\r\n$1\r\nx\r\n$%d\r\n%s\r\n%s", len(payload), payload, strings.Repeat("COMMAND\n", 1<<17))
	go func() { _, _ = client.Write([]byte(flood)) }()
	testutil.Eventually(t, "client disconnected", func() bool { return env.srv.SlowDisconnects() == 1 })
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 64<<20 {
		t.Fatalf("answering a client that does not read allocated %d MiB", allocated>>20)
	}
}

// TestMaxClientsRefusalNeverWaitsOnASilentClient: over TLS, turning a
// client away at max_clients means a handshake first; one that sends
// nothing must not hold the accept loop (or anything else), so the next
// client over the limit is still told why.
func TestMaxClientsRefusalNeverWaitsOnASilentClient(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	pair := ca.IssuePair(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	env := startProxyTLS(t, nil, &tls.Config{Certificates: []tls.Certificate{pair}}, func(o *Options) { o.Limits.MaxClients = 1 })
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	dial := func() *testutil.RESPConn {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", env.addr, clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		return testutil.NewRESPConn(t, c)
	}
	if r := dial().Do("AUTH", "alice", "alice-secret"); r != "OK" {
		t.Fatal(r)
	}
	silent, err := net.Dial("tcp", env.addr) // never starts its handshake
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := dial().Read(); got != "-ERR max number of clients reached" {
		t.Fatalf("the client after a silent one: %s", got)
	}
}
