package proxy

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"golang.org/x/time/rate"
)

// tenant is what the sessions of one tenant share: its namespace and its
// quotas, counted across all of them.
type tenant struct {
	name     string
	ns       *Namespace
	settings atomic.Pointer[tenantSettings] // replaced by a reload

	connections   atomic.Int64
	subscriptions atomic.Int64
	patterns      atomic.Int64 // of the subscriptions

	stats tenantStats // for metrics (stats.go)
}

// tenantSettings are what a configuration reload can change in a tenant.
type tenantSettings struct {
	quotas   Quotas
	messages *rate.Limiter // nil: unlimited
	bytes    *rate.Limiter
	audit    auditLevels // what the tenant's allowed actions record
}

func newTenant(name string, t TenantOptions, ns NamespaceOptions, levels audit.Levels) *tenant {
	tn := &tenant{name: name}
	if ns.Enforce {
		tn.ns = NewNamespace(name, "", "")
	} else {
		tn.ns = NewNamespace(name, t.Prefix, ns.SharedPrefix)
	}
	tn.configure(t.Quotas, levels)
	return tn
}

// configure applies quotas and audit levels. A publish rate that did not
// change keeps its bucket, so that a reload does not refill it.
func (t *tenant) configure(q Quotas, levels audit.Levels) {
	next := &tenantSettings{quotas: q, audit: resolveLevels(levels, t.name)}
	var old tenantSettings
	if p := t.settings.Load(); p != nil {
		old = *p
	}
	// Each bucket holds one second of its rate; the byte bucket also holds
	// at least one message of the largest size allowed, or such a message
	// could never pass.
	next.messages = keepLimiter(old.messages, old.quotas.PublishRate.Messages, q.PublishRate.Messages)
	next.bytes = keepLimiter(old.bytes, int(old.quotas.PublishRate.Bytes), int(q.PublishRate.Bytes))
	t.settings.Store(next)
}

// keepLimiter is a token bucket holding one second of perSecond (nil for
// 0: unlimited): old, if it had that rate already.
func keepLimiter(old *rate.Limiter, oldPerSecond, perSecond int) *rate.Limiter {
	switch {
	case perSecond <= 0:
		return nil
	case old != nil && oldPerSecond == perSecond:
		return old
	}
	return rate.NewLimiter(rate.Limit(perSecond), perSecond)
}

func (t *tenant) quotas() *Quotas { return &t.settings.Load().quotas }

// auditLevel is what an allowed action of the tenant records.
func (t *tenant) auditLevel(a policy.Action) audit.Level { return t.settings.Load().audit[a] }

// quotaKey names a quota in errors: the configuration key that sets it.
// The errors are reasons (for the audit log); quotaReply makes the client's
// reply of one.
func (t *tenant) quotaKey(quota string) string { return "tenants." + t.name + ".quotas." + quota }

func quotaReply(err error) string { return "ERR pubgate: " + err.Error() }

// acquireConnection counts a connection in, unless the tenant is full.
func (t *tenant) acquireConnection() error {
	max := int64(t.quotas().MaxConnections)
	if n := t.connections.Add(1); max > 0 && n > max {
		t.connections.Add(-1)
		return fmt.Errorf("tenant %s has its maximum of %d connections (%s)", t.name, max, t.quotaKey("max_connections"))
	}
	return nil
}

func (t *tenant) releaseConnection() { t.connections.Add(-1) }

// acquireSubscriptions counts n subscriptions of a kind in, unless that
// would exceed the tenant's quota of subscriptions, or of patterns.
func (t *tenant) acquireSubscriptions(kind upstream.Kind, n int) error {
	q := t.quotas() // one configuration for both checks, even across a reload
	max := int64(q.MaxSubscriptions)
	if got := t.subscriptions.Add(int64(n)); max > 0 && got > max {
		t.subscriptions.Add(-int64(n))
		return fmt.Errorf("tenant %s holds its maximum of %d subscriptions (%s)", t.name, max, t.quotaKey("max_subscriptions"))
	}
	if kind != upstream.KindPattern {
		return nil
	}
	max = int64(q.MaxPatterns) // 0 is unlimited
	if got := t.patterns.Add(int64(n)); max > 0 && got > max {
		t.patterns.Add(-int64(n))
		t.subscriptions.Add(-int64(n))
		return fmt.Errorf("tenant %s holds its maximum of %d patterns (%s)", t.name, max, t.quotaKey("max_patterns"))
	}
	return nil
}

func (t *tenant) releaseSubscriptions(kind upstream.Kind, n int) {
	t.subscriptions.Add(-int64(n))
	if kind == upstream.KindPattern {
		t.patterns.Add(-int64(n))
	}
}

// admitPublish checks a message against the tenant's payload and rate
// quotas.
func (t *tenant) admitPublish(payload int) error {
	st := t.settings.Load()
	if max := int(st.quotas.MaxPayloadBytes); max > 0 && payload > max {
		return fmt.Errorf("message of %d bytes exceeds %s (%d)", payload, t.quotaKey("max_payload_bytes"), max)
	}
	if st.messages == nil && st.bytes == nil {
		return nil
	}
	now := time.Now()
	if st.messages != nil && !st.messages.AllowN(now, 1) {
		return fmt.Errorf("tenant %s is over its publish rate of %d messages/s (%s); retry later",
			t.name, st.quotas.PublishRate.Messages, t.quotaKey("publish_rate.messages"))
	}
	if st.bytes != nil && !st.bytes.AllowN(now, payload) {
		return fmt.Errorf("tenant %s is over its publish rate of %s/s (%s); retry later",
			t.name, humanize.IBytes(uint64(st.quotas.PublishRate.Bytes)), t.quotaKey("publish_rate.bytes"))
	}
	return nil
}
