package gateway

import (
	"time"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/proxy"
)

// This file maps the configuration onto package proxy's own options.

// proxyLimits is limits.*.
func proxyLimits(l config.Limits) proxy.Limits {
	ob := l.ClientOutputBuffer
	return proxy.Limits{
		MaxClients: l.MaxClients, MaxSubscriptionsPerClient: l.MaxSubscriptionsPerClient,
		MaxPayloadBytes: int64(l.MaxPayloadBytes), MaxChannelBytes: int64(l.MaxChannelBytes),
		ClientOutputBuffer: proxy.OutputBuffer{
			HardLimit: int64(ob.HardLimit), SoftLimit: int64(ob.SoftLimit), SoftFor: time.Duration(ob.SoftSeconds) * time.Second,
		},
		CoverPatternsOver: l.CoverPatternsOver,
	}
}

// proxyTenants is tenants.*, whose defaults (prefix, quotas.max_patterns)
// the loaded configuration has filled in.
func proxyTenants(tenants map[string]*config.Tenant) map[string]proxy.TenantOptions {
	out := make(map[string]proxy.TenantOptions, len(tenants))
	for name, t := range tenants {
		if t == nil {
			t = &config.Tenant{}
		}
		out[name] = proxy.TenantOptions{Prefix: t.Prefix, Quotas: proxyQuotas(t.Quotas)}
	}
	return out
}

// proxyQuotas is tenants.<name>.quotas; max_patterns not set is unlimited
// (a loaded configuration has set it to limits.max_patterns_per_tenant).
func proxyQuotas(q config.Quotas) proxy.Quotas {
	p := proxy.Quotas{
		MaxConnections: q.MaxConnections, MaxSubscriptions: q.MaxSubscriptions,
		MaxPayloadBytes: int64(q.MaxPayloadBytes),
		PublishRate:     proxy.PublishRate{Messages: q.PublishRate.Messages, Bytes: int64(q.PublishRate.Bytes)},
	}
	if q.MaxPatterns != nil {
		p.MaxPatterns = *q.MaxPatterns
	}
	return p
}

// proxyNamespace is namespace.*.
func proxyNamespace(n config.Namespace) proxy.NamespaceOptions {
	return proxy.NamespaceOptions{Enforce: n.Enforce(), SharedPrefix: n.SharedPrefix}
}

// proxyProtocol is listen.proxy_protocol.
func proxyProtocol(p config.ProxyProtocol) proxy.ProxyProtocolOptions {
	return proxy.ProxyProtocolOptions{Trusted: p.Trusted, HeaderTimeout: p.HeaderTimeout}
}
