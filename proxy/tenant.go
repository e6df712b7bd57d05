package proxy

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/config"
	"golang.org/x/time/rate"
)

// tenant is what the sessions of one tenant share: its namespace and its
// quotas, counted across all of them.
type tenant struct {
	name   string
	ns     *Namespace
	quotas config.Quotas
	audit  auditLevels // what the tenant's allowed actions record

	connections   atomic.Int64
	subscriptions atomic.Int64
	messages      *rate.Limiter // nil: unlimited
	bytes         *rate.Limiter

	stats tenantStats // for metrics (stats.go)
}

func newTenant(name string, t *config.Tenant, ns config.Namespace) *tenant {
	tn := &tenant{name: name, quotas: t.Quotas}
	if ns.Enforce() {
		tn.ns = NewNamespace(name, "", "")
	} else {
		tn.ns = NewNamespace(name, t.Prefix, ns.SharedPrefix)
	}
	// Each bucket holds one second of its rate; the byte bucket also holds
	// at least one message of the largest size allowed, or such a message
	// could never pass.
	if r := t.Quotas.PublishRate; r.Messages > 0 {
		tn.messages = rate.NewLimiter(rate.Limit(r.Messages), r.Messages)
	}
	if r := t.Quotas.PublishRate; r.Bytes > 0 {
		tn.bytes = rate.NewLimiter(rate.Limit(r.Bytes), int(r.Bytes))
	}
	return tn
}

// quotaKey names a quota in errors: the configuration key that sets it.
// The errors are reasons (for the audit log); quotaReply makes the client's
// reply of one.
func (t *tenant) quotaKey(quota string) string { return "tenants." + t.name + ".quotas." + quota }

func quotaReply(err error) string { return "ERR pubgate: " + err.Error() }

// acquireConnection counts a connection in, unless the tenant is full.
func (t *tenant) acquireConnection() error {
	max := int64(t.quotas.MaxConnections)
	if n := t.connections.Add(1); max > 0 && n > max {
		t.connections.Add(-1)
		return fmt.Errorf("tenant %s has its maximum of %d connections (%s)", t.name, max, t.quotaKey("max_connections"))
	}
	return nil
}

func (t *tenant) releaseConnection() { t.connections.Add(-1) }

// acquireSubscriptions counts n subscriptions in, unless that would exceed
// the tenant's quota.
func (t *tenant) acquireSubscriptions(n int) error {
	max := int64(t.quotas.MaxSubscriptions)
	if got := t.subscriptions.Add(int64(n)); max > 0 && got > max {
		t.subscriptions.Add(-int64(n))
		return fmt.Errorf("tenant %s holds its maximum of %d subscriptions (%s)", t.name, max, t.quotaKey("max_subscriptions"))
	}
	return nil
}

func (t *tenant) releaseSubscriptions(n int) { t.subscriptions.Add(-int64(n)) }

// admitPublish checks a message against the tenant's payload and rate
// quotas.
func (t *tenant) admitPublish(payload int) error {
	if max := int(t.quotas.MaxPayloadBytes); max > 0 && payload > max {
		return fmt.Errorf("message of %d bytes exceeds %s (%d)", payload, t.quotaKey("max_payload_bytes"), max)
	}
	if t.messages == nil && t.bytes == nil {
		return nil
	}
	now := time.Now()
	if t.messages != nil && !t.messages.AllowN(now, 1) {
		return fmt.Errorf("tenant %s is over its publish rate of %d messages/s (%s); retry later",
			t.name, t.quotas.PublishRate.Messages, t.quotaKey("publish_rate.messages"))
	}
	if t.bytes != nil && !t.bytes.AllowN(now, payload) {
		return fmt.Errorf("tenant %s is over its publish rate of %s/s (%s); retry later",
			t.name, t.quotas.PublishRate.Bytes, t.quotaKey("publish_rate.bytes"))
	}
	return nil
}
