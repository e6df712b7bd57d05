package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// clusterConfig is e2eConfig with a Redis Cluster upstream.
const clusterConfig = `
listen: {address: "127.0.0.1:0", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
upstream: {cluster: {addresses: [%s], sharded: %v}, timeout: 2s, health_interval: 100ms}
tenants: {acme: {}, globex: {}}
users:
  alice: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  bob: {tenant: globex, password_hash: "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de"}
`

// clusterNodes starts two pubgate nodes on one Redis Cluster, sharing a
// local CA as nodes behind one load balancer would share a certificate.
func clusterNodes(t *testing.T, c *testutil.RedisCluster, sharded bool) (a, b testNode) {
	dataDir := t.TempDir()
	cfg := fmt.Sprintf(clusterConfig, dataDir, strings.Join(c.Seeds(), ", "), sharded)
	return startGatewayWith(t, cfg, localGateway(dataDir)), startGatewayWith(t, cfg, localGateway(dataDir))
}

// rawSubscriber logs in as user over TLS and subscribes to channel on a
// raw connection: a client library would reconnect and subscribe again on
// its own, hiding a dropped connection.
func (g testNode) rawSubscriber(t *testing.T, user, channel string) *testutil.RESPConn {
	t.Helper()
	conn, err := tls.Dial("tcp", g.addr(), g.tlsConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	sub := testutil.NewRESPConn(t, conn)
	if r := sub.Do("AUTH", user, user+"-secret"); r != "OK" {
		t.Fatal(r)
	}
	if r := sub.Do("SUBSCRIBE", channel); r != `["subscribe" "`+channel+`" :1]` {
		t.Fatal(r)
	}
	return sub
}

func (g testNode) client(t *testing.T, user string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: user, Password: user + "-secret", TLSConfig: g.tlsConfig(t)})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestTwoNodesOnACluster: a message published through one pubgate reaches
// subscribers on the other, through a real 3-master Redis Cluster, for
// channels whose slots live on every master; tenants stay apart; in sharded
// mode SSUBSCRIBE and SUBSCRIBE both work and PSUBSCRIBE is refused clearly.
func TestTwoNodesOnACluster(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 0)
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			a, b := clusterNodes(t, c, sharded)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			channels := []string{"orders", "payments", "shipping", "invoices", "returns", "stock"}
			sub := a.client(t, "alice").Subscribe(ctx, channels...)
			defer sub.Close()
			ssub := a.client(t, "alice").SSubscribe(ctx, "orders")
			defer ssub.Close()
			for _, ps := range []*redis.PubSub{sub, ssub} {
				if _, err := ps.Receive(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for range len(channels) - 1 {
				if _, err := sub.Receive(ctx); err != nil { // the other confirmations
					t.Fatal(err)
				}
			}

			alice, bob := b.client(t, "alice"), b.client(t, "bob")
			if err := bob.Publish(ctx, "orders", "globex's, not acme's").Err(); err != nil {
				t.Fatal(err)
			}
			for _, ch := range channels {
				if err := alice.Publish(ctx, ch, "via node b: "+ch).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := alice.SPublish(ctx, "orders", "sharded via node b").Err(); err != nil {
				t.Fatal(err)
			}
			// Order holds per channel; channels of different slots enter
			// the cluster at different primaries, and arrive in any order.
			// In sharded mode the SPUBLISH reaches SUBSCRIBE too (below).
			expected := len(channels)
			if sharded {
				expected++
			}
			got := make(map[string][]string)
			for range expected {
				m, err := sub.ReceiveMessage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got[m.Channel] = append(got[m.Channel], m.Payload)
			}
			for _, ch := range channels {
				if len(got[ch]) == 0 || got[ch][0] != "via node b: "+ch {
					t.Errorf("node a received %q on %s", got[ch], ch)
				}
			}
			m, err := ssub.ReceiveMessage(ctx)
			want := "sharded via node b"
			if sharded {
				// One upstream subscription carries the name for both of
				// the client's kinds: PUBLISH reaches SSUBSCRIBE too.
				want = "via node b: orders"
			}
			if err != nil || m.Channel != "orders" || m.Payload != want {
				t.Fatalf("SSUBSCRIBE on node a received %+v, %v; want %q", m, err, want)
			}

			err = a.client(t, "alice").Do(ctx, "PSUBSCRIBE", "ord*").Err()
			if sharded && (err == nil || !strings.Contains(err.Error(), "upstream.cluster.sharded")) {
				t.Fatalf("PSUBSCRIBE in sharded mode: %v", err)
			}
			if !sharded && err != nil {
				t.Fatalf("PSUBSCRIBE in classic mode: %v", err)
			}
		})
	}
}

// TestTwoNodesSurviveAPrimaryFailover: the primary owning a channel's slot
// is killed under two pubgate nodes and its replica promoted. Publishes
// fail clearly meanwhile, never falsely succeed; then delivery from one
// node to a subscriber on the other resumes on the same client connection,
// which neither node dropped, in classic and sharded mode.
func TestTwoNodesSurviveAPrimaryFailover(t *testing.T) {
	c := testutil.StartRedisCluster(t, 3, 1)
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			a, b := clusterNodes(t, c, sharded)
			sub := a.rawSubscriber(t, "alice", "orders")
			pub := b.client(t, "alice")
			publishReaches(t, pub, sub, "before")

			killed := c.MasterOf("acme:orders")
			c.KillMaster(t, killed)
			defer c.Restart(t, killed)
			publishReaches(t, pub, sub, "after")
		})
	}
}

// publishReaches publishes payload to "orders" through pub until sub
// receives it. A publish may fail while the cluster fails over, but only
// saying that the upstream is unavailable. (A classic PUBLISH in a cluster
// counts the receivers of the node it entered at, as Redis does, so the
// count cannot tell whether sub was reached.)
func publishReaches(t *testing.T, pub *redis.Client, sub *testutil.RESPConn, payload string) {
	t.Helper()
	want := `["message" "orders" "` + payload + `"]`
	testutil.Eventually(t, payload+": a publish through node b reaches node a's subscriber", func() bool {
		err := pub.Publish(context.Background(), "orders", payload).Err()
		if err != nil && !strings.Contains(err.Error(), "upstream unavailable") {
			t.Fatalf("PUBLISH %s: %v", payload, err)
		}
		for {
			got, err := sub.TryRead(200 * time.Millisecond)
			switch {
			case err != nil:
				return false
			case got == want:
				return true
			case !strings.HasPrefix(got, `["message" "orders" `):
				t.Fatalf("node a's subscriber got %s", got)
			} // a copy of an earlier payload, published again meanwhile
		}
	})
}
