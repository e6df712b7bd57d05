package proxy

import (
	"errors"
	"time"
)

// The settings below are proxy's own; serve fills them from the
// configuration file (package gateway maps it). Each field's comment names
// the key that sets it, because the refusals a client or the audit log sees
// name that key ("tenants.acme.quotas.max_subscriptions").

// DefaultDrainTimeout is Options.DrainTimeout when not set, and
// listen.shutdown_timeout's default (config.Default uses it), which serve
// passes as DrainTimeout.
const DefaultDrainTimeout = 10 * time.Second

// Limits protect pubgate and other clients from one client (limits.*).
// Every field but CoverPatternsOver must be positive.
type Limits struct {
	MaxClients                int   // limits.max_clients: connections at once
	MaxSubscriptionsPerClient int   // limits.max_subscriptions_per_client
	MaxPayloadBytes           int64 // limits.max_payload_bytes: a published message
	MaxChannelBytes           int64 // limits.max_channel_bytes: channel and pattern names
	// ClientOutputBuffer is limits.client_output_buffer.
	ClientOutputBuffer OutputBuffer
	// CoverPatternsOver is limits.cover_patterns_over: once a tenant's
	// clients on this node hold more distinct patterns than this, the node
	// subscribes one covering pattern upstream for the tenant and matches
	// its patterns itself. 0 never covers.
	CoverPatternsOver int
}

// OutputBuffer is Redis's client-output-buffer-limit for pub/sub clients
// (limits.client_output_buffer): a client whose unsent output exceeds
// HardLimit, or stays above SoftLimit for SoftFor, is disconnected.
type OutputBuffer struct {
	HardLimit int64         // hard_limit
	SoftLimit int64         // soft_limit, at most HardLimit
	SoftFor   time.Duration // soft_seconds
}

func (l Limits) validate() error {
	ob := l.ClientOutputBuffer
	switch {
	case l.MaxClients <= 0, l.MaxSubscriptionsPerClient <= 0, l.MaxPayloadBytes <= 0, l.MaxChannelBytes <= 0:
		return errors.New("proxy: Limits.MaxClients, MaxSubscriptionsPerClient, MaxPayloadBytes and MaxChannelBytes must be positive")
	case l.CoverPatternsOver < 0:
		return errors.New("proxy: Limits.CoverPatternsOver must not be negative")
	case ob.HardLimit <= 0 || ob.SoftLimit <= 0 || ob.SoftLimit > ob.HardLimit || ob.SoftFor < 0:
		return errors.New("proxy: Limits.ClientOutputBuffer needs 0 < SoftLimit <= HardLimit and SoftFor >= 0")
	}
	return nil
}

// TenantOptions is one tenant (tenants.<name>), an isolated channel
// namespace.
type TenantOptions struct {
	// Prefix (tenants.<name>.prefix) is prepended upstream to every channel
	// and pattern of the tenant, in rewrite mode.
	Prefix string
	Quotas Quotas // tenants.<name>.quotas
}

// Quotas bound what one tenant's clients may use together
// (tenants.<name>.quotas.*); 0 is unlimited. They are checked before the
// policy.
type Quotas struct {
	MaxConnections   int // max_connections
	MaxSubscriptions int // max_subscriptions
	// MaxPatterns (max_patterns) bounds the pattern subscriptions among
	// them. The file's default is limits.max_patterns_per_tenant, which the
	// caller fills in.
	MaxPatterns     int
	MaxPayloadBytes int64       // max_payload_bytes; 0: limits.max_payload_bytes alone
	PublishRate     PublishRate // publish_rate: a token bucket holding one second of the rate
}

// PublishRate bounds a tenant's publishes per second
// (tenants.<name>.quotas.publish_rate); 0 is unlimited.
type PublishRate struct {
	Messages int   // messages
	Bytes    int64 // bytes
}

// NamespaceOptions say how tenants' channel names map to upstream names
// (namespace.*).
type NamespaceOptions struct {
	// Enforce is namespace.mode: enforce (clients write full names; the
	// policy confines each tenant to its prefix). False is rewrite mode,
	// where a tenant's names are stored under its prefix.
	Enforce bool
	// SharedPrefix (namespace.shared_prefix), in rewrite mode, marks names
	// that are not rewritten. Empty: none.
	SharedPrefix string
}

// ProxyProtocolOptions configure the PROXY protocol on the client listener
// (listen.proxy_protocol.*).
type ProxyProtocolOptions struct {
	// Trusted (trusted) lists the load balancers' addresses: IPs or CIDRs.
	Trusted []string
	// HeaderTimeout (header_timeout) bounds the wait for a trusted peer's
	// header; 0: DefaultProxyHeaderTimeout.
	HeaderTimeout time.Duration
}

// DefaultProxyHeaderTimeout is listen.proxy_protocol.header_timeout's
// default.
const DefaultProxyHeaderTimeout = 5 * time.Second
