package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

const sentinelConfig = `
listen: {address: "127.0.0.1:0", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
upstream: {sentinel: {master_name: %s, addresses: [%s]}, timeout: 2s, health_interval: 100ms}
tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
`

// TestSentinelFailover: pubgate finds the primary through Sentinel; when the
// primary dies and Sentinel promotes the replica, the client's subscription
// (never re-sent by the client) delivers again, and publishes succeed.
func TestSentinelFailover(t *testing.T) {
	s := testutil.StartSentinel(t)
	dataDir := t.TempDir()
	g := startGatewayWith(t, fmt.Sprintf(sentinelConfig, dataDir, s.MasterName(), strings.Join(s.SentinelAddrs(), ", ")), localGateway(dataDir))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := g.client(t, "alice").Subscribe(ctx, "orders")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	pub := g.client(t, "alice")
	if err := pub.Publish(ctx, "orders", "before").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != "before" {
		t.Fatalf("before the failover: %v %v", m, err)
	}

	old := s.Primary()
	promoted := s.Failover(t)
	if promoted == old {
		t.Fatal("Sentinel kept the stopped primary")
	}
	// Publishes may fail while pubgate follows the failover; the first
	// that reaches a subscriber is delivered.
	testutil.Eventually(t, "a publish reaches the subscriber after the failover", func() bool {
		n, err := pub.Publish(ctx, "orders", "after").Result()
		return err == nil && n == 1
	})
	if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != "after" {
		t.Fatalf("after the failover: %v %v", m, err)
	}
}
