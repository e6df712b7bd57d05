package admin

import (
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	"github.com/pubgate/pubgate/upstream"
)

// Sources are where the admin endpoints read pubgate's state: snapshots
// taken at scrape or probe time, so that no hot path knows about metrics.
// A nil source leaves its metrics (and its readiness check) out.
type Sources struct {
	Version        string
	Proxy          func() proxy.ServerStats
	Policy         func() policy.Stats
	Passwords      func() auth.PasswordStats
	PolicyRevision func() string
	Audit          func() audit.Stats // nil without an audit log
	// AuditFailClosed says a failing audit log refuses actions (and makes
	// pubgate not ready).
	AuditFailClosed bool
	Upstream        func() upstream.Health
	// Draining reports that pubgate is shutting down.
	Draining func() bool
}

// UnauthenticatedTenant is the tenant label of connections that have not
// logged in. Tenant names start with a letter or digit, so it names none.
const UnauthenticatedTenant = "-"

var (
	tenantLabel = []string{"tenant"}

	descConnections = prometheus.NewDesc("pubgate_connections",
		`Client connections now, by tenant; tenant="-" counts connections not logged in.`, tenantLabel, nil)
	descAccepted = prometheus.NewDesc("pubgate_connections_accepted_total",
		"Client connections accepted.", nil, nil)
	descRefused = prometheus.NewDesc("pubgate_connections_refused_total",
		"Client connections refused before their session started, by reason (max_clients: limits.max_clients).", []string{"reason"}, nil)
	descLoginThrottled = prometheus.NewDesc("pubgate_login_throttled_total",
		"Logins the failed-login throttle held back, by result: delayed (after repeated failures, then checked) or refused (no turn before the login deadline).", []string{"result"}, nil)
	descPasswordCache = prometheus.NewDesc("pubgate_password_cache_total",
		"Password logins of configured users by whether their password was verified before against the same hash (hit: no bcrypt check) or not (miss: checked; logins sharing one check count once); auth.verified_cache.", []string{"result"}, nil)
	descPasswordChecks = prometheus.NewDesc("pubgate_password_checks_total",
		"bcrypt checks run; concurrent logins with the same credentials share one.", nil, nil)
	descPasswordQueued = prometheus.NewDesc("pubgate_password_check_queue_waits_total",
		"bcrypt checks that waited for their turn (auth.bcrypt_concurrency were running).", nil, nil)
	descPasswordQueueWait = prometheus.NewDesc("pubgate_password_check_queue_wait_seconds_total",
		"Time bcrypt checks waited for their turn, in all.", nil, nil)
	descPasswordQueueFull = prometheus.NewDesc("pubgate_password_check_queue_full_total",
		"Logins refused because limits.max_clients checks were already waiting.", nil, nil)
	descSubscriptions = prometheus.NewDesc("pubgate_subscriptions",
		"Subscriptions held by clients now, by tenant and kind (channel, pattern, shard).", []string{"tenant", "kind"}, nil)
	descUpstreamSubscriptions = prometheus.NewDesc("pubgate_upstream_subscriptions",
		"Subscriptions pubgate holds on the upstream engine, one per distinct name however many clients share it, by kind.", []string{"kind"}, nil)
	descPublished = prometheus.NewDesc("pubgate_published_messages_total",
		"PUBLISH and SPUBLISH messages the upstream engine took, by tenant.", tenantLabel, nil)
	descPublishedBytes = prometheus.NewDesc("pubgate_published_bytes_total",
		"Payload bytes of the messages in pubgate_published_messages_total, by tenant.", tenantLabel, nil)
	descPublishFailures = prometheus.NewDesc("pubgate_publish_failures_total",
		"Publishes admitted by quota and policy that the upstream engine did not take (the client got an error), by tenant.", tenantLabel, nil)
	descDelivered = prometheus.NewDesc("pubgate_delivered_messages_total",
		"Messages queued to clients, one per receiving client, by the receiver's tenant.", tenantLabel, nil)
	descDeliveredBytes = prometheus.NewDesc("pubgate_delivered_bytes_total",
		"Payload bytes of the messages in pubgate_delivered_messages_total, by tenant.", tenantLabel, nil)
	descClientWrites = prometheus.NewDesc("pubgate_client_writes_total",
		"Writes to client connections, replies and messages, after coalescing (a burst of messages queued together is one write); with pubgate_delivered_messages_total, how well fan-out coalesces.", nil, nil)
	descDecisions = prometheus.NewDesc("pubgate_authz_decisions_total",
		"Authorization decisions, by tenant, action and outcome (allow, deny); quota refusals count as deny.", []string{"tenant", "action", "outcome"}, nil)
	descDisconnects = prometheus.NewDesc("pubgate_disconnects_total",
		"Client connections that ended, by cause: quit, client_closed, connection_error (the client's or the network's doing), or protocol_error, slow_consumer, login_timeout, credentials_expired, revoked, killed, upstream_outage, shutdown, internal_error (pubgate's).", []string{"cause"}, nil)
	descSlow = prometheus.NewDesc("pubgate_slow_consumer_disconnects_total",
		"Clients disconnected for exceeding limits.client_output_buffer, by tenant.", tenantLabel, nil)

	descUpstreamUp = prometheus.NewDesc("pubgate_upstream_up",
		"Whether the upstream engine is reachable (1) or not (0).", nil, nil)
	descUpstreamState = prometheus.NewDesc("pubgate_upstream_state_duration_seconds",
		"Seconds since pubgate_upstream_up last changed.", nil, nil)
	descUpstreamPublishErrors = prometheus.NewDesc("pubgate_upstream_publish_errors_total",
		"PUBLISH pipelines to the upstream engine that failed in whole or in part.", nil, nil)

	descPolicyHits = prometheus.NewDesc("pubgate_policy_cache_hits_total",
		"Policy decisions answered from the decision cache.", nil, nil)
	descPolicyMisses = prometheus.NewDesc("pubgate_policy_cache_misses_total",
		"Policy decisions not in the cache, each an evaluation of the Rego policy.", nil, nil)
	descPolicyPlanned = prometheus.NewDesc("pubgate_policy_planned_total",
		"Policy decisions not in the cache that a plan answered without evaluating the Rego policy.", nil, nil)
	descPolicyErrors = prometheus.NewDesc("pubgate_policy_evaluation_errors_total",
		"Policy evaluations that failed (and denied).", nil, nil)
	descPolicyReloads = prometheus.NewDesc("pubgate_policy_reloads_total",
		"Policy reloads by result: applied (a new revision took effect) or refused (the old one stayed).", []string{"result"}, nil)
	descPolicyRevision = prometheus.NewDesc("pubgate_policy_revision_info",
		"The policy revision in effect, as a label; always 1.", []string{"revision"}, nil)

	descAuditWritten = prometheus.NewDesc("pubgate_audit_records_written_total",
		"Audit records written.", nil, nil)
	descAuditDropped = prometheus.NewDesc("pubgate_audit_records_dropped_total",
		"Audit records lost (audit.fail_closed: false, with the queue full or the sink failing).", nil, nil)
	descAuditRefused = prometheus.NewDesc("pubgate_audit_records_refused_total",
		"Audit records refused, and the actions they recorded with them (audit.fail_closed: true).", nil, nil)
	descAuditQueueDepth = prometheus.NewDesc("pubgate_audit_queue_depth",
		"Audit records waiting for the writer.", nil, nil)
	descAuditQueueCapacity = prometheus.NewDesc("pubgate_audit_queue_capacity",
		"Audit records the queue holds at most (audit.queue_size).", nil, nil)
	descAuditFailing = prometheus.NewDesc("pubgate_audit_failing",
		"Whether the audit sink is failing and its writer retrying (1) or not (0).", nil, nil)

	descDraining = prometheus.NewDesc("pubgate_draining",
		"1 once pubgate stopped accepting clients to shut down (SIGTERM), else 0.", nil, nil)
	descBuildInfo = prometheus.NewDesc("pubgate_build_info",
		"pubgate's version and the Go version it was built with, as labels; always 1.", []string{"version", "goversion"}, nil)
)

// Collector turns the snapshots of Sources into metrics at scrape time.
type Collector struct{ src Sources }

// NewCollector collects pubgate's metrics from src.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

// Describe sends every metric the collector may produce.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descConnections, descAccepted, descRefused, descLoginThrottled, descSubscriptions, descUpstreamSubscriptions,
		descPasswordCache, descPasswordChecks, descPasswordQueued, descPasswordQueueWait, descPasswordQueueFull,
		descPublished, descPublishedBytes, descPublishFailures, descDelivered, descDeliveredBytes, descClientWrites,
		descDecisions, descDisconnects, descSlow, descUpstreamUp, descUpstreamState, descUpstreamPublishErrors,
		descPolicyHits, descPolicyMisses, descPolicyPlanned, descPolicyErrors, descPolicyReloads, descPolicyRevision,
		descAuditWritten, descAuditDropped, descAuditRefused, descAuditQueueDepth, descAuditQueueCapacity, descAuditFailing,
		descDraining, descBuildInfo,
	} {
		ch <- d
	}
}

// Collect reads the sources once each and sends their metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBuildInfo, 1, c.src.Version, runtime.Version())
	if c.src.Draining != nil {
		gauge(descDraining, boolValue(c.src.Draining()))
	}

	if c.src.Proxy != nil {
		st := c.src.Proxy()
		counter(descAccepted, st.Accepted)
		counter(descRefused, st.RefusedMaxClients, "max_clients")
		counter(descLoginThrottled, st.LoginsThrottled, "delayed")
		counter(descLoginThrottled, st.LoginsThrottleRefused, "refused")
		counter(descUpstreamPublishErrors, st.UpstreamPublishErrors)
		counter(descClientWrites, st.ClientWrites)
		for cause, n := range st.Disconnects {
			counter(descDisconnects, n, cause)
		}
		subscriptions(gauge, descUpstreamSubscriptions, st.UpstreamSubscriptions)
		gauge(descConnections, float64(st.Unauthenticated.Connections), UnauthenticatedTenant)
		counter(descSlow, st.Unauthenticated.SlowDisconnects, UnauthenticatedTenant)
		for _, t := range st.Tenants {
			gauge(descConnections, float64(t.Connections), t.Name)
			subscriptions(gauge, descSubscriptions, t.Subscriptions, t.Name)
			counter(descPublished, t.Published, t.Name)
			counter(descPublishedBytes, t.PublishedBytes, t.Name)
			counter(descPublishFailures, t.PublishFailures, t.Name)
			counter(descDelivered, t.Delivered, t.Name)
			counter(descDeliveredBytes, t.DeliveredBytes, t.Name)
			counter(descSlow, t.SlowDisconnects, t.Name)
			for _, d := range t.Decisions {
				counter(descDecisions, d.Allowed, t.Name, d.Action, "allow")
				counter(descDecisions, d.Denied, t.Name, d.Action, "deny")
			}
		}
	}
	if c.src.Passwords != nil {
		p := c.src.Passwords()
		counter(descPasswordCache, p.CacheHits, "hit")
		counter(descPasswordCache, p.CacheMisses, "miss")
		counter(descPasswordChecks, p.Comparisons)
		counter(descPasswordQueued, p.QueueWaits)
		ch <- prometheus.MustNewConstMetric(descPasswordQueueWait, prometheus.CounterValue, p.QueueWait.Seconds())
		counter(descPasswordQueueFull, p.QueueFull)
	}
	if c.src.Upstream != nil {
		h := c.src.Upstream()
		gauge(descUpstreamUp, boolValue(h.Up))
		if !h.Since.IsZero() {
			gauge(descUpstreamState, time.Since(h.Since).Seconds())
		}
	}
	if c.src.Policy != nil {
		p := c.src.Policy()
		counter(descPolicyHits, p.CacheHits)
		counter(descPolicyMisses, p.CacheMisses)
		counter(descPolicyPlanned, p.Planned)
		counter(descPolicyErrors, p.Errors)
		counter(descPolicyReloads, p.Reloads, "applied")
		counter(descPolicyReloads, p.ReloadFailures, "refused")
	}
	if c.src.PolicyRevision != nil {
		gauge(descPolicyRevision, 1, c.src.PolicyRevision())
	}
	if c.src.Audit != nil {
		a := c.src.Audit()
		counter(descAuditWritten, a.Written)
		counter(descAuditDropped, a.Dropped)
		counter(descAuditRefused, a.Refused)
		gauge(descAuditQueueDepth, float64(a.QueueDepth))
		gauge(descAuditQueueCapacity, float64(a.QueueCapacity))
		gauge(descAuditFailing, boolValue(a.Failing))
	}
}

// subscriptions sends one gauge per kind; labels precede the kind.
func subscriptions(gauge func(*prometheus.Desc, float64, ...string), d *prometheus.Desc, c proxy.SubscriptionCounts, labels ...string) {
	for _, k := range []struct {
		kind upstream.Kind
		n    int64
	}{{upstream.KindChannel, c.Channel}, {upstream.KindPattern, c.Pattern}, {upstream.KindShard, c.Shard}} {
		gauge(d, float64(k.n), slices.Concat(labels, []string{k.kind.String()})...)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
