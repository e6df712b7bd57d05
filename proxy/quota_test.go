package proxy

import (
	"strings"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// startQuotaProxy serves pubgate with acme's quotas set, and whatever
// else adjust sets.
func startQuotaProxy(t *testing.T, q Quotas, adjust func(*Options)) *testEnv {
	t.Helper()
	tenants := map[string]TenantOptions{"acme": {Prefix: "acme:", Quotas: q}, "globex": {Prefix: "globex:"}}
	return startProxy(t, nil, func(o *Options) {
		o.Tenants = tenants
		if adjust != nil {
			adjust(o)
		}
	})
}

func TestTenantConnectionQuota(t *testing.T) {
	env := startQuotaProxy(t, Quotas{MaxConnections: 2}, nil)
	first, _ := env.login(t, "alice"), env.login(t, "alice")
	third := testutil.DialRESP(t, env.addr)
	if r := third.Do("AUTH", "alice", "alice-secret"); r != "-ERR pubgate: tenant acme has its maximum of 2 connections (tenants.acme.quotas.max_connections)" {
		t.Fatalf("third connection: %s", r)
	}
	env.login(t, "bob") // other tenants are not affected
	// A connection that leaves (or logs out with RESET) frees its place.
	first.Do("RESET")
	if r := third.Do("AUTH", "alice", "alice-secret"); r != "OK" {
		t.Fatalf("after RESET of another connection: %s", r)
	}
}

func TestTenantSubscriptionQuota(t *testing.T) {
	env := startQuotaProxy(t, Quotas{MaxSubscriptions: 3}, nil)
	a, b := env.login(t, "alice"), env.login(t, "alice")
	a.Do("SUBSCRIBE", "x", "y")
	a.Read()
	if r := b.Do("SUBSCRIBE", "p", "q"); !strings.HasPrefix(r, "-ERR pubgate: tenant acme holds its maximum of 3 subscriptions") {
		t.Fatalf("over the quota: %s", r)
	}
	if r := b.Do("SUBSCRIBE", "p"); r != `["subscribe" "p" :1]` {
		t.Fatalf("within the quota: %s", r)
	}
	a.Do("UNSUBSCRIBE", "x")
	if r := b.Do("SUBSCRIBE", "q"); r != `["subscribe" "q" :2]` {
		t.Fatalf("after an UNSUBSCRIBE freed one: %s", r)
	}
}

func TestTenantPayloadAndRateQuotas(t *testing.T) {
	env := startQuotaProxy(t, Quotas{MaxPayloadBytes: 10, PublishRate: PublishRate{Messages: 1}}, nil)
	alice := env.login(t, "alice")
	if r := alice.Do("PUBLISH", "x", "more than ten bytes"); r != "-ERR pubgate: message of 19 bytes exceeds tenants.acme.quotas.max_payload_bytes (10)" {
		t.Fatalf("payload quota: %s", r)
	}
	// The bucket holds one second of the rate: of a pipeline of five, the
	// first passes and the rest are refused (unless seconds pass between).
	for range 5 {
		alice.Send("PUBLISH", "x", "m")
	}
	refused := 0
	for range 5 {
		if r := alice.Read(); strings.Contains(r, "over its publish rate of 1 messages/s") {
			refused++
		} else if r != ":0" {
			t.Fatalf("unexpected reply %s", r)
		}
	}
	if refused == 0 {
		t.Fatal("publish rate not enforced")
	}
	if r := env.login(t, "bob").Do("PUBLISH", "x", "more than ten bytes"); r != ":0" {
		t.Fatalf("another tenant is limited too: %s", r)
	}
}

func TestTenantByteRateQuota(t *testing.T) {
	env := startQuotaProxy(t, Quotas{PublishRate: PublishRate{Bytes: 100}}, nil)
	alice := env.login(t, "alice")
	payload := strings.Repeat("b", 60)
	alice.Send("PUBLISH", "x", payload)
	alice.Send("PUBLISH", "x", payload)
	expect(t, alice, ":0", "-ERR pubgate: tenant acme is over its publish rate of 100 B/s (tenants.acme.quotas.publish_rate.bytes); retry later")
}

// TestUnsubscribeReleasesBeforeConfirming: once a client has read the
// confirmations of an UNSUBSCRIBE or PUNSUBSCRIBE, with or without names,
// what it held is gone everywhere: another client's PUBLISH does not count
// it, and the tenant's quota has room for it again (as Redis guarantees
// for PUBLISH; the quota follows the same order). Repeated, because the
// old order (confirm, then release) failed only some of the time.
func TestUnsubscribeReleasesBeforeConfirming(t *testing.T) {
	for _, engine := range []string{"memory", "redis"} {
		t.Run(engine, func(t *testing.T) {
			env := startQuotaProxy(t, Quotas{MaxSubscriptions: 2}, func(o *Options) {
				if engine == "redis" {
					o.Broker = startRedisBroker(t)
				}
			})
			a, b, pub := env.login(t, "alice"), env.login(t, "alice"), env.login(t, "alice")
			for i := range 100 {
				sub, unsub, names := "SUBSCRIBE", "UNSUBSCRIBE", []string{"chan1", "chan2"}
				if i%2 == 1 {
					sub, unsub, names = "PSUBSCRIBE", "PUNSUBSCRIBE", []string{"chan1*", "chan2*"}
				}
				a.Send(append([]string{sub}, names...)...)
				readSet(t, a, 2)
				if i%4 < 2 {
					a.Send(unsub) // without arguments: everything of that kind
				} else {
					a.Send(append([]string{unsub}, names...)...)
				}
				readSet(t, a, 2)
				if r := pub.Do("PUBLISH", "chan1", "hello"); r != ":0" {
					t.Fatalf("round %d: PUBLISH after %s reached %s", i, unsub, r)
				}
				if r := b.Do("SUBSCRIBE", "other1", "other2"); !strings.HasPrefix(r, `["subscribe" "other1"`) {
					t.Fatalf("round %d: the quota after %s: %s", i, unsub, r)
				}
				b.Read()
				b.Do("UNSUBSCRIBE")
				b.Read()
			}
		})
	}
}
