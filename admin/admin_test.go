package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	"github.com/pubgate/pubgate/upstream"
)

// fixture is a set of sources whose answers a test changes.
type fixture struct {
	up         upstream.Health
	draining   bool
	audit      audit.Stats
	failClosed bool
}

func (f *fixture) sources() Sources {
	return Sources{
		Version:  "1.2.3",
		Upstream: func() upstream.Health { return f.up },
		Draining: func() bool { return f.draining },
		Audit:    func() audit.Stats { return f.audit }, AuditFailClosed: f.failClosed,
		Proxy: func() proxy.ServerStats {
			return proxy.ServerStats{
				Clients: 3, Accepted: 10, RefusedMaxClients: 2, UpstreamPublishErrors: 1,
				LoginsThrottled: 6, LoginsThrottleRefused: 1, ClientWrites: 12,
				UpstreamSubscriptions: proxy.SubscriptionCounts{Channel: 1, Pattern: 1},
				Unauthenticated:       proxy.TenantStats{Connections: 1},
				Tenants: []proxy.TenantStats{{
					Name: "acme", Connections: 2, Subscriptions: proxy.SubscriptionCounts{Channel: 2, Pattern: 1},
					Published: 5, PublishedBytes: 50, PublishFailures: 1, Delivered: 7, DeliveredBytes: 70, SlowDisconnects: 1,
					Decisions: []proxy.DecisionStats{{Action: "connect", Allowed: 2}, {Action: "publish", Allowed: 5, Denied: 1}},
				}},
			}
		},
		Policy: func() policy.Stats {
			return policy.Stats{CacheHits: 9, CacheMisses: 3, Errors: 1, Reloads: 2, ReloadFailures: 1}
		},
		PolicyRevision: func() string { return "abc123" },
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	f := &fixture{up: upstream.Health{Err: errors.New("down")}, draining: true}
	code, body := get(t, New(Options{Sources: f.sources()}).Handler(), "/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q; liveness does not depend on readiness", code, body)
	}
}

func TestReadyz(t *testing.T) {
	since := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		f     fixture
		code  int
		wants []string
	}{
		{"ready", fixture{up: upstream.Health{Up: true}}, 200, []string{"ok"}},
		{"upstream down", fixture{up: upstream.Health{Since: since, Err: errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")}}, 503,
			[]string{"not ready: upstream down since 2026-11-25T09:00:00Z: dial tcp 127.0.0.1:6379: connect: connection refused"}},
		{"draining", fixture{up: upstream.Health{Up: true}, draining: true}, 503, []string{"not ready: draining"}},
		{"audit failing, fail closed", fixture{up: upstream.Health{Up: true}, audit: audit.Stats{Failing: true}, failClosed: true}, 503,
			[]string{"not ready: audit log failing"}},
		{"audit failing, fail open", fixture{up: upstream.Health{Up: true}, audit: audit.Stats{Failing: true}}, 200, []string{"ok"}},
		{"every reason", fixture{up: upstream.Health{Err: errors.New("multi\nline")}, draining: true, audit: audit.Stats{Failing: true}, failClosed: true}, 503,
			[]string{"draining", "; upstream down: multi line;", "; audit log failing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, New(Options{Sources: tc.f.sources()}).Handler(), "/readyz")
			if code != tc.code || strings.Count(body, "\n") != 1 {
				t.Fatalf("/readyz = %d %q, want %d and one line", code, body, tc.code)
			}
			for _, want := range tc.wants {
				if !strings.Contains(body, want) {
					t.Errorf("/readyz body %q lacks %q", body, want)
				}
			}
		})
	}
}

func TestReadyzWithoutSources(t *testing.T) {
	if code, body := get(t, New(Options{}).Handler(), "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
}

func TestMetrics(t *testing.T) {
	f := &fixture{up: upstream.Health{Up: true, Since: time.Now().Add(-time.Minute)}, audit: audit.Stats{Written: 4, Refused: 1, QueueDepth: 2, QueueCapacity: 16}}
	c := NewCollector(f.sources())
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	expected := `
# HELP pubgate_connections Client connections now, by tenant; tenant="-" counts connections not logged in.
# TYPE pubgate_connections gauge
pubgate_connections{tenant="-"} 1
pubgate_connections{tenant="acme"} 2
# HELP pubgate_subscriptions Subscriptions held by clients now, by tenant and kind (channel, pattern, shard).
# TYPE pubgate_subscriptions gauge
pubgate_subscriptions{kind="channel",tenant="acme"} 2
pubgate_subscriptions{kind="pattern",tenant="acme"} 1
pubgate_subscriptions{kind="shard",tenant="acme"} 0
# HELP pubgate_authz_decisions_total Authorization decisions, by tenant, action and outcome (allow, deny); quota refusals count as deny.
# TYPE pubgate_authz_decisions_total counter
pubgate_authz_decisions_total{action="connect",outcome="allow",tenant="acme"} 2
pubgate_authz_decisions_total{action="connect",outcome="deny",tenant="acme"} 0
pubgate_authz_decisions_total{action="publish",outcome="allow",tenant="acme"} 5
pubgate_authz_decisions_total{action="publish",outcome="deny",tenant="acme"} 1
# HELP pubgate_connections_refused_total Client connections refused before their session started, by reason (max_clients: limits.max_clients).
# TYPE pubgate_connections_refused_total counter
pubgate_connections_refused_total{reason="max_clients"} 2
# HELP pubgate_login_throttled_total Logins the failed-login throttle held back, by result: delayed (after repeated failures, then checked) or refused (no turn before the login deadline).
# TYPE pubgate_login_throttled_total counter
pubgate_login_throttled_total{result="delayed"} 6
pubgate_login_throttled_total{result="refused"} 1
# HELP pubgate_upstream_up Whether the upstream engine is reachable (1) or not (0).
# TYPE pubgate_upstream_up gauge
pubgate_upstream_up 1
# HELP pubgate_draining 1 once pubgate stopped accepting clients to shut down (SIGTERM), else 0.
# TYPE pubgate_draining gauge
pubgate_draining 0
# HELP pubgate_audit_records_written_total Audit records written.
# TYPE pubgate_audit_records_written_total counter
pubgate_audit_records_written_total 4
# HELP pubgate_audit_failing Whether the audit sink is failing and its writer retrying (1) or not (0).
# TYPE pubgate_audit_failing gauge
pubgate_audit_failing 0
# HELP pubgate_policy_revision_info The policy revision in effect, as a label; always 1.
# TYPE pubgate_policy_revision_info gauge
pubgate_policy_revision_info{revision="abc123"} 1
# HELP pubgate_policy_reloads_total Policy reloads by result: applied (a new revision took effect) or refused (the old one stayed).
# TYPE pubgate_policy_reloads_total counter
pubgate_policy_reloads_total{result="applied"} 2
pubgate_policy_reloads_total{result="refused"} 1
`
	names := []string{"pubgate_connections", "pubgate_subscriptions", "pubgate_authz_decisions_total", "pubgate_connections_refused_total", "pubgate_login_throttled_total",
		"pubgate_upstream_up", "pubgate_draining", "pubgate_audit_records_written_total", "pubgate_audit_failing", "pubgate_policy_revision_info", "pubgate_policy_reloads_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "pubgate_build_info"); n != 1 {
		t.Fatalf("build info series: %d", n)
	}
	if v := value(t, c, "pubgate_client_writes_total"); v != 12 {
		t.Errorf("client writes %v, want 12", v)
	}
	if v := value(t, c, "pubgate_upstream_state_duration_seconds"); v < 60 {
		t.Errorf("upstream state duration %v, want at least a minute", v)
	}
}

// TestMetricsWithoutAudit: without an audit log there are no audit series.
func TestMetricsWithoutAudit(t *testing.T) {
	f := &fixture{up: upstream.Health{Up: true}}
	src := f.sources()
	src.Audit = nil
	if n := testutil.CollectAndCount(NewCollector(src), "pubgate_audit_records_written_total", "pubgate_audit_failing"); n != 0 {
		t.Fatalf("%d audit series without an audit log", n)
	}
}

func TestMetricsEndpointServesTheRegistry(t *testing.T) {
	f := &fixture{up: upstream.Health{Up: true}}
	code, body := get(t, New(Options{Sources: f.sources()}).Handler(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`pubgate_build_info{goversion="go`, `version="1.2.3"} 1`, "go_goroutines ", "process_start_time_seconds ",
		`pubgate_published_messages_total{tenant="acme"} 5`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	if code, _ := get(t, New(Options{}).Handler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ = %d", code)
	}
	if code, body := get(t, New(Options{Pprof: true}).Handler(), "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on: /debug/pprof/ = %d", code)
	}
}

func TestStartAndShutdown(t *testing.T) {
	s := New(Options{Address: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz over HTTP = %d %q", resp.StatusCode, body)
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after Shutdown")
	}
	if err := New(Options{Address: "127.0.0.1:0"}).Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Start: %v", err)
	}
}

// value gathers c and returns the value of the one series named name.
func value(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}
