package proxy

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
)

// denyChannel is the built-in policy, except that one channel is denied to
// everyone.
type denyChannel struct {
	Authorizer
	channel string
}

func (d denyChannel) Authorize(ctx context.Context, r *policy.Request) policy.Decision {
	if r.Channel == d.channel {
		return policy.Decision{Reason: "closed"}
	}
	return d.Authorizer.Authorize(ctx, r)
}

func statsOf(st ServerStats, name string) TenantStats {
	for _, ts := range st.Tenants {
		if ts.Name == name {
			return ts
		}
	}
	return TenantStats{}
}

func decisions(ts TenantStats, action string) DecisionStats {
	for _, d := range ts.Decisions {
		if d.Action == action {
			return d
		}
	}
	return DecisionStats{}
}

// TestServerStats: connections, subscriptions, publishes, deliveries and
// decisions are counted under the tenant they belong to.
func TestServerStats(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.Authorizer = denyChannel{newTestAuthorizer(t, o.Tenants, o.Namespace, policy.Sources{Builtin: policy.Builtin}), "secret"}
	})
	alice := env.login(t, "alice") // acme
	alice.Do("SUBSCRIBE", "orders")
	alice.Do("PSUBSCRIBE", "ord*")
	alice.Do("SSUBSCRIBE", "shard")
	other := env.login(t, "default") // acme too: shares the upstream subscription
	other.Do("SUBSCRIBE", "orders")
	bob := env.login(t, "bob") // globex
	anonymous := testutil.DialRESP(t, env.addr)
	if got := anonymous.Do("PING"); got != "PONG" {
		t.Fatal(got)
	}

	if got := bob.Do("PUBLISH", "orders", "not for acme"); got != ":0" {
		t.Fatal(got)
	}
	if got := bob.Do("PUBLISH", "secret", "x"); !strings.HasPrefix(got, "-NOPERM") {
		t.Fatal(got)
	}
	if got := bob.Do("PUBLISH", "orders", "12345"); got != ":0" {
		t.Fatal(got)
	}
	pub := env.login(t, "alice")
	if got := pub.Do("PUBLISH", "orders", "hello"); got != ":3" { // alice twice (channel, pattern), other once
		t.Fatal(got)
	}

	var st ServerStats
	testutil.Eventually(t, "deliveries counted", func() bool {
		st = env.srv.Stats()
		return statsOf(st, "acme").Delivered == 3
	})
	acme, globex := statsOf(st, "acme"), statsOf(st, "globex")
	if st.Clients != 5 || st.Accepted != 5 || acme.Connections != 3 || globex.Connections != 1 || st.Unauthenticated.Connections != 1 {
		t.Errorf("connections: clients %d accepted %d acme %d globex %d unauthenticated %d",
			st.Clients, st.Accepted, acme.Connections, globex.Connections, st.Unauthenticated.Connections)
	}
	if want := (SubscriptionCounts{Channel: 2, Pattern: 1, Shard: 1}); acme.Subscriptions != want {
		t.Errorf("acme subscriptions %+v, want %+v", acme.Subscriptions, want)
	}
	if want := (SubscriptionCounts{Channel: 1, Pattern: 1, Shard: 1}); st.UpstreamSubscriptions != want {
		t.Errorf("upstream subscriptions %+v, want %+v", st.UpstreamSubscriptions, want)
	}
	if acme.Published != 1 || acme.PublishedBytes != 5 || acme.DeliveredBytes != 15 || acme.PublishFailures != 0 {
		t.Errorf("acme messages %+v", acme)
	}
	if globex.Published != 2 || globex.PublishedBytes != int64(len("not for acme")+5) || globex.Delivered != 0 {
		t.Errorf("globex messages %+v", globex)
	}
	if d := decisions(globex, "publish"); d.Allowed != 2 || d.Denied != 1 {
		t.Errorf("globex publish decisions %+v", d)
	}
	if d := decisions(acme, "connect"); d.Allowed != 3 || d.Denied != 0 {
		t.Errorf("acme connect decisions %+v", d)
	}
	if d := decisions(acme, "subscribe"); d.Allowed != 2 {
		t.Errorf("acme subscribe decisions %+v", d)
	}
	if d := decisions(acme, "psubscribe"); d.Allowed != 1 {
		t.Errorf("acme psubscribe decisions %+v", d)
	}

	// Gauges come back down as clients leave.
	alice.Do("UNSUBSCRIBE")
	other.Conn.Close()
	alice.Do("RESET")
	testutil.Eventually(t, "subscriptions released", func() bool {
		st = env.srv.Stats()
		acme = statsOf(st, "acme")
		return acme.Subscriptions == SubscriptionCounts{} && st.UpstreamSubscriptions == SubscriptionCounts{} &&
			acme.Connections == 1 && st.Unauthenticated.Connections == 2
	})
}

// TestStatsSlowConsumer: a slow-consumer disconnect counts under the
// tenant of the client.
func TestStatsSlowConsumer(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.Limits.ClientOutputBuffer.HardLimit = 64 << 10
		o.Limits.ClientOutputBuffer.SoftLimit = 32 << 10
	})
	slow := env.login(t, "bob")
	_ = slow.Conn.(*net.TCPConn).SetReadBuffer(4096)
	if got := slow.Do("SUBSCRIBE", "feed"); got != `["subscribe" "feed" :1]` {
		t.Fatal(got)
	}
	pub := env.login(t, "bob")
	payload := strings.Repeat("x", 8<<10)
	for i := 0; env.srv.SlowDisconnects() == 0; i++ {
		if i == 10000 { // 80 MiB: far beyond any socket buffer
			t.Fatal("the slow client was never disconnected")
		}
		pub.Do("PUBLISH", "feed", payload)
	}
	testutil.Eventually(t, "slow disconnect counted", func() bool {
		st := env.srv.Stats()
		return statsOf(st, "globex").SlowDisconnects == 1 && statsOf(st, "acme").SlowDisconnects == 0
	})
}

// TestDisconnectsAreCountedByCause: each way a session ends is counted
// under its cause: the client's (QUIT, closing the connection) and
// pubgate's (a protocol error, CLIENT KILL).
func TestDisconnectsAreCountedByCause(t *testing.T) {
	env := startProxy(t, nil, nil)
	quitter := env.login(t, "alice")
	if got := quitter.Do("QUIT"); got != "OK" {
		t.Fatal(got)
	}
	leaver := env.login(t, "alice")
	_ = leaver.Conn.Close()
	broken := testutil.DialRESP(t, env.addr)
	broken.SendRaw("*1\r\n$x\r\n")
	victim := env.login(t, "alice") // CLIENT KILL reaches its own tenant's clients
	killer := env.login(t, "alice")
	if got := killer.Do("CLIENT", "KILL", "ID", clientID(t, victim)); got != ":1" {
		t.Fatal(got)
	}
	want := map[string]int64{"quit": 1, "client_closed": 1, "protocol_error": 1, "killed": 1}
	testutil.Eventually(t, "every end counted", func() bool {
		got := env.srv.Stats().Disconnects
		for cause, n := range want {
			if got[cause] != n {
				return false
			}
		}
		return true
	})
}
