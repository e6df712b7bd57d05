package proxy

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
)

// ServerStats is a snapshot of the server's counters and gauges, read by
// the metrics endpoint at scrape time. Counters count since the server
// started; gauges are values now. Fields of one snapshot are read one
// after another, not atomically together.
type ServerStats struct {
	Clients           int   // connections now, logged in or not
	Accepted          int64 // connections accepted (not counting those refused)
	RefusedMaxClients int64 // connections refused because of limits.max_clients
	// UpstreamSubscriptions are the engine subscriptions the hub holds: one
	// per distinct channel, pattern or shard channel, however many local
	// clients share it.
	UpstreamSubscriptions SubscriptionCounts
	// UpstreamPublishErrors counts PUBLISH pipelines (or single
	// publications in one) that the engine did not take.
	UpstreamPublishErrors int64
	// LoginsThrottled counts logins the failed-login throttle held back
	// after repeated failures and then let check their password;
	// LoginsThrottleRefused those it refused, their turn not come before
	// their deadline.
	LoginsThrottled, LoginsThrottleRefused int64
	// ClientWrites counts writes to client connections (replies and
	// messages, after coalescing: a burst of messages queued together is
	// one write): with the tenants' Delivered, it tells how well fan-out
	// coalesces.
	ClientWrites int64
	// Disconnects counts the sessions that ended, by cause (quit,
	// client_closed, slow_consumer, revoked, shutdown, …: proxy/close.go).
	Disconnects map[string]int64
	// Tenants has one entry per configured tenant, sorted by name.
	Tenants []TenantStats
	// Unauthenticated holds what belongs to no tenant: connections not
	// logged in (Connections) and their slow-consumer disconnects.
	Unauthenticated TenantStats
}

// SubscriptionCounts counts subscriptions by kind.
type SubscriptionCounts struct {
	Channel, Pattern, Shard int64
}

// TenantStats are one tenant's figures. Message and byte counts are of
// payloads (what clients publish and receive, without RESP framing).
type TenantStats struct {
	Name          string
	Connections   int64              // logged-in connections now
	Subscriptions SubscriptionCounts // held by the tenant's clients now
	// Published counts publishes the engine took, PublishedBytes their
	// payloads; PublishFailures counts admitted publishes the engine did
	// not take (the client got an upstream error).
	Published, PublishedBytes, PublishFailures int64
	// Delivered counts messages queued to the tenant's clients (one per
	// receiving client), DeliveredBytes their payloads.
	Delivered, DeliveredBytes int64
	// SlowDisconnects counts clients disconnected for exceeding the output
	// buffer limits.
	SlowDisconnects int64
	// Decisions has one entry per action, in policy.Action order. Quota
	// refusals count as denials; PUBSUB introspection is not counted.
	Decisions []DecisionStats
}

// DecisionStats counts the authorization decisions of one action.
type DecisionStats struct {
	Action          string // connect, subscribe, psubscribe, ssubscribe, publish, spublish
	Allowed, Denied int64
}

// serverStats are the server-wide counters. They are touched once per
// connection, never per message, but for clientWrites (once per write).
type serverStats struct {
	accepted, refusedMaxClients atomic.Int64
	unauthenticatedSlow         atomic.Int64
	upstreamPublishErrors       atomic.Int64
	loginsThrottled             atomic.Int64
	loginsThrottleRefused       atomic.Int64

	_            [64]byte
	clientWrites atomic.Int64 // by every writer, once per write: a line of its own
	_            [64]byte
}

// tenantStats are a tenant's counters. The message counters are added to
// once per PUBLISH pipeline (sessions) and once per run of one tenant's
// members in a fan-out (hub), not per delivery. The hub's counters
// (delivered) are on a cache line of their own so that the fan-out
// goroutine and publishing sessions do not contend for one line.
type tenantStats struct {
	published, publishedBytes, publishFailures atomic.Int64
	decisions                                  [policy.SPublish + 1][2]atomic.Int64 // [action][allowed]
	subscriptions                              [3]atomic.Int64                      // by upstream.Kind
	slowDisconnects                            atomic.Int64

	delivered fanout.Deliveries
}

// decision counts one authorization decision.
func (t *tenantStats) decision(a policy.Action, allowed bool) {
	i := 0
	if allowed {
		i = 1
	}
	t.decisions[a][i].Add(1)
}

// countPublishes counts the outcome of one PUBLISH pipeline: err failed it
// whole, else each publication's own Err says.
func (s *session) countPublishes(batch []upstream.Publication, err error) {
	var ok, bytes, failed int64
	for i := range batch {
		if err != nil || batch[i].Err != nil {
			failed++
			continue
		}
		ok++
		bytes += int64(len(batch[i].Payload))
	}
	st := &s.tenant.stats
	if ok > 0 {
		st.published.Add(ok)
		st.publishedBytes.Add(bytes)
	}
	if failed > 0 {
		st.publishFailures.Add(failed)
		s.srv.stats.upstreamPublishErrors.Add(1)
	}
}

// countSubscriptions adds n subscriptions of one kind to the tenant's
// gauge.
func (s *session) countSubscriptions(kind upstream.Kind, n int) {
	s.tenant.stats.subscriptions[kind].Add(int64(n))
}

// countReleased takes released subscriptions off the tenant's gauge.
func (s *session) countReleased(released []*fanout.Entry) {
	for _, e := range released {
		s.tenant.stats.subscriptions[e.Kind()].Add(-1)
	}
}

// countEnd counts, as the session ends, a slow-consumer disconnect under
// the tenant the session was in.
func (s *session) countEnd() {
	if !s.slowConsumer.Load() {
		return
	}
	if s.tenant != nil {
		s.tenant.stats.slowDisconnects.Add(1)
	} else {
		s.srv.stats.unauthenticatedSlow.Add(1)
	}
}

// Stats returns a snapshot of the server's figures. It takes the server's
// and the hub's locks briefly, never a session's.
func (s *Server) Stats() ServerStats {
	st := ServerStats{
		Clients:               s.Clients(),
		Accepted:              s.stats.accepted.Load(),
		RefusedMaxClients:     s.stats.refusedMaxClients.Load(),
		UpstreamPublishErrors: s.stats.upstreamPublishErrors.Load(),
		LoginsThrottled:       s.stats.loginsThrottled.Load(),
		LoginsThrottleRefused: s.stats.loginsThrottleRefused.Load(),
		ClientWrites:          s.stats.clientWrites.Load(),
		UpstreamSubscriptions: held(s.hub.Held()),
		Disconnects:           make(map[string]int64, numCloseCauses),
	}
	for c := range numCloseCauses {
		st.Disconnects[c.String()] = s.disconnects[c].Load()
	}
	var loggedIn int64
	for _, t := range s.tenantList() {
		ts := t.snapshot()
		loggedIn += ts.Connections
		st.Tenants = append(st.Tenants, ts)
	}
	slices.SortFunc(st.Tenants, func(a, b TenantStats) int { return strings.Compare(a.Name, b.Name) })
	st.Unauthenticated = TenantStats{
		Name:            "",
		Connections:     max(int64(st.Clients)-loggedIn, 0), // the two are read at slightly different times
		SlowDisconnects: s.stats.unauthenticatedSlow.Load(),
	}
	return st
}

// tenantList is every tenant the server knows.
func (s *Server) tenantList() []*tenant {
	tenants := *s.tenants.Load()
	list := make([]*tenant, 0, len(tenants))
	for _, t := range tenants {
		list = append(list, t)
	}
	return list
}

func (t *tenant) snapshot() TenantStats {
	st := &t.stats
	ts := TenantStats{
		Name:        t.name,
		Connections: t.connections.Load(),
		Subscriptions: SubscriptionCounts{
			Channel: st.subscriptions[upstream.KindChannel].Load(),
			Pattern: st.subscriptions[upstream.KindPattern].Load(),
			Shard:   st.subscriptions[upstream.KindShard].Load(),
		},
		Published: st.published.Load(), PublishedBytes: st.publishedBytes.Load(), PublishFailures: st.publishFailures.Load(),
		Delivered: st.delivered.Messages.Load(), DeliveredBytes: st.delivered.Bytes.Load(),
		SlowDisconnects: st.slowDisconnects.Load(),
	}
	for a := policy.Connect; a <= policy.SPublish; a++ {
		ts.Decisions = append(ts.Decisions, DecisionStats{
			Action: a.String(), Denied: st.decisions[a][0].Load(), Allowed: st.decisions[a][1].Load(),
		})
	}
	return ts
}

// held converts the hub's counts by kind.
func held(c [upstream.KindShard + 1]int64) SubscriptionCounts {
	return SubscriptionCounts{Channel: c[upstream.KindChannel], Pattern: c[upstream.KindPattern], Shard: c[upstream.KindShard]}
}
