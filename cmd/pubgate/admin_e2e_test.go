package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// The admin listener asks for port 0 too.
const adminE2EConfig = `
listen: {address: "127.0.0.1:0", drain_period: 0s, tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}}
upstream: {url: "%[2]s", health_interval: 100ms}
tenants: {acme: {}, globex: {}}
policy: {paths: ["%[3]s"], watch: false}
users:
  alice: {tenant: acme, roles: [publisher, subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  reader: {tenant: acme, roles: [subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  bob: {tenant: globex, roles: [publisher, subscriber], password_hash: "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de"}
audit: {sink: file, path: "%[1]s/audit/audit.log", key_file: "%[1]s/audit.key", fail_closed: true}
admin: {address: "127.0.0.1:0"}
`

// adminGateway starts pubgate over upstreamURL with the admin listener on
// and returns the admin's base URL.
func adminGateway(t *testing.T, upstreamURL string) (testNode, string) {
	t.Helper()
	dir := t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	g := startGatewayWith(t, fmt.Sprintf(adminE2EConfig, dir, upstreamURL, copyPolicies(t)), localGateway(dir))
	return g, "http://" + g.node.AdminAddr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches /metrics and parses it as Prometheus does.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// value is the value of the series of name whose labels include labels
// ("k=v" each); ok is false if there is none.
func (s scrape) value(name string, labels ...string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			match = match && have[k] == v
		}
		if match {
			return m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestAdminEndToEnd: real clients of two tenants subscribe and publish
// (one publish denied), and /metrics shows it per tenant; /healthz and
// /readyz answer 200; the listener stops with pubgate.
func TestAdminEndToEnd(t *testing.T) {
	g, base := adminGateway(t, "memory://")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(user, pass string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: user, Password: pass, TLSConfig: g.tlsConfig(t), PoolSize: 1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, reader, bob := client("alice", "alice-secret"), client("reader", "alice-secret"), client("bob", "bob-secret")

	aliceSub := alice.Subscribe(ctx, "orders")
	defer aliceSub.Close()
	if _, err := aliceSub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := aliceSub.PSubscribe(ctx, "orders.*"); err != nil {
		t.Fatal(err)
	}
	if _, err := aliceSub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	bobSub := bob.Subscribe(ctx, "news")
	defer bobSub.Close()
	if _, err := bobSub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	// A connection that never logs in counts under tenant "-".
	anonymous, err := tls.Dial("tcp", g.addr(), g.tlsConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Close()

	for _, p := range []struct {
		c                *redis.Client
		channel, payload string
	}{{alice, "orders", "hello"}, {alice, "orders.created", "o-1"}, {bob, "news", "n-1"}} {
		if n, err := p.c.Publish(ctx, p.channel, p.payload).Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH %s = %d, %v", p.channel, n, err)
		}
	}
	if err := reader.Publish(ctx, "orders", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Fatalf("read-only user PUBLISH: %v", err)
	}
	for _, sub := range []*redis.PubSub{aliceSub, aliceSub, bobSub} {
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var m scrape
	testutil.Eventually(t, "every connection logged in or counted", func() bool {
		m = scrapeMetrics(t, base)
		v, _ := m.value("pubgate_connections", "tenant=-")
		return v == 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		// alice: a pool connection and a subscriber; reader: one; bob: two.
		{"pubgate_connections", []string{"tenant=acme"}, 3},
		{"pubgate_connections", []string{"tenant=globex"}, 2},
		{"pubgate_connections_accepted_total", nil, 6},
		{"pubgate_connections_refused_total", []string{"reason=max_clients"}, 0},
		{"pubgate_subscriptions", []string{"tenant=acme", "kind=channel"}, 1},
		{"pubgate_subscriptions", []string{"tenant=acme", "kind=pattern"}, 1},
		{"pubgate_subscriptions", []string{"tenant=globex", "kind=channel"}, 1},
		{"pubgate_subscriptions", []string{"tenant=globex", "kind=shard"}, 0},
		{"pubgate_upstream_subscriptions", []string{"kind=channel"}, 2},
		{"pubgate_upstream_subscriptions", []string{"kind=pattern"}, 1},
		{"pubgate_published_messages_total", []string{"tenant=acme"}, 2},
		{"pubgate_published_bytes_total", []string{"tenant=acme"}, float64(len("hello") + len("o-1"))},
		{"pubgate_published_messages_total", []string{"tenant=globex"}, 1},
		{"pubgate_delivered_messages_total", []string{"tenant=acme"}, 2},
		{"pubgate_delivered_bytes_total", []string{"tenant=acme"}, float64(len("hello") + len("o-1"))},
		{"pubgate_delivered_messages_total", []string{"tenant=globex"}, 1},
		{"pubgate_publish_failures_total", []string{"tenant=acme"}, 0},
		{"pubgate_authz_decisions_total", []string{"tenant=acme", "action=publish", "outcome=allow"}, 2},
		{"pubgate_authz_decisions_total", []string{"tenant=acme", "action=publish", "outcome=deny"}, 1},
		{"pubgate_authz_decisions_total", []string{"tenant=globex", "action=publish", "outcome=allow"}, 1},
		{"pubgate_authz_decisions_total", []string{"tenant=globex", "action=publish", "outcome=deny"}, 0},
		{"pubgate_authz_decisions_total", []string{"tenant=acme", "action=connect", "outcome=allow"}, 3},
		{"pubgate_authz_decisions_total", []string{"tenant=acme", "action=psubscribe", "outcome=allow"}, 1},
		{"pubgate_slow_consumer_disconnects_total", []string{"tenant=acme"}, 0},
		{"pubgate_upstream_up", nil, 1},
		{"pubgate_draining", nil, 0},
		{"pubgate_audit_failing", nil, 0},
		{"pubgate_audit_queue_capacity", nil, 16384},
		{"pubgate_audit_records_refused_total", nil, 0},
		{"pubgate_build_info", []string{"version=" + buildVersion()}, 1},
	} {
		if got, ok := m.value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if v, _ := m.value("pubgate_audit_records_written_total"); v < 1 {
		t.Errorf("pubgate_audit_records_written_total = %v, want records", v)
	}
	if _, ok := m.value("pubgate_policy_revision_info"); !ok {
		t.Error("no pubgate_policy_revision_info")
	}
	if v, _ := m.value("pubgate_policy_cache_misses_total"); v < 1 {
		t.Errorf("pubgate_policy_cache_misses_total = %v: the policy evaluated nothing?", v)
	}
	if _, ok := m.value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof served without admin.pprof: %d", code)
	}

	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("the admin listener outlived pubgate")
	}
}

// TestAdminReadinessFollowsRedis: /readyz turns 503, naming the upstream,
// while Redis is down, and 200 again once it is back.
func TestAdminReadinessFollowsRedis(t *testing.T) {
	redisServer := testutil.StartRedis(t)
	_, base := adminGateway(t, redisServer.URL())
	ready := func() (int, string) { return httpGet(t, base+"/readyz") }
	testutil.Eventually(t, "ready with Redis up", func() bool {
		code, _ := ready()
		return code == http.StatusOK
	})

	redisServer.Stop()
	var body string
	testutil.Eventually(t, "not ready with Redis down", func() bool {
		var code int
		code, body = ready()
		return code == http.StatusServiceUnavailable
	})
	if !strings.HasPrefix(body, "not ready: upstream down") || strings.Count(body, "\n") != 1 {
		t.Errorf("/readyz body %q: want one line naming the upstream", body)
	}
	if v, _ := scrapeMetrics(t, base).value("pubgate_upstream_up"); v != 0 {
		t.Errorf("pubgate_upstream_up = %v with Redis down", v)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d: liveness must not follow the upstream", code)
	}

	redisServer.Start()
	testutil.Eventually(t, "ready again with Redis back", func() bool {
		code, _ := ready()
		return code == http.StatusOK
	})
	if v, _ := scrapeMetrics(t, base).value("pubgate_upstream_up"); v != 1 {
		t.Errorf("pubgate_upstream_up = %v with Redis back", v)
	}
}

// TestAdminAddressInUse: pubgate does not start without the admin listener
// it was configured with, and says why.
func TestAdminAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	config := strings.Replace(fmt.Sprintf(adminE2EConfig, dir, "memory://", copyPolicies(t)),
		`admin: {address: "127.0.0.1:0"}`, fmt.Sprintf("admin: {address: %q}", taken.Addr()), 1)
	var logs syncBuffer
	code := run(context.Background(), []string{"serve", "--config", writeFile(t, config)}, nil, io.Discard, &logs)
	if code == 0 || !strings.Contains(logs.String(), "admin: listen") {
		t.Fatalf("exit %d with the admin address taken; log:\n%s", code, logs.String())
	}
}
