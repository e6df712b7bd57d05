package gateway

import (
	"reflect"
	"testing"
	"time"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/proxy"
)

// TestProxyOptionsMapTheFile: the keys of a configuration file reach
// proxy's options, with the file's defaults filled in (a tenant's prefix
// and max_patterns).
func TestProxyOptionsMapTheFile(t *testing.T) {
	cfg, err := config.Parse([]byte(`
listen:
  plaintext: true
  proxy_protocol: {trusted: ["10.0.0.0/8"], header_timeout: 2s}
namespace: {shared_prefix: "shared:"}
limits:
  max_clients: 7
  max_subscriptions_per_client: 8
  max_payload_bytes: 1KiB
  max_channel_bytes: 100
  client_output_buffer: {hard_limit: 2MiB, soft_limit: 1MiB, soft_seconds: 3}
  max_patterns_per_tenant: 9
  cover_patterns_over: 4
tenants:
  acme:
    prefix: "a:"
    quotas:
      max_connections: 1
      max_subscriptions: 2
      max_patterns: 3
      max_payload_bytes: 4KiB
      publish_rate: {messages: 5, bytes: 6KiB}
  globex: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"limits", proxyLimits(cfg.Limits), proxy.Limits{
			MaxClients: 7, MaxSubscriptionsPerClient: 8, MaxPayloadBytes: 1024, MaxChannelBytes: 100,
			ClientOutputBuffer: proxy.OutputBuffer{HardLimit: 2 << 20, SoftLimit: 1 << 20, SoftFor: 3 * time.Second},
			CoverPatternsOver:  4,
		}},
		{"tenants", proxyTenants(cfg.Tenants), map[string]proxy.TenantOptions{
			"acme": {Prefix: "a:", Quotas: proxy.Quotas{
				MaxConnections: 1, MaxSubscriptions: 2, MaxPatterns: 3, MaxPayloadBytes: 4 << 10,
				PublishRate: proxy.PublishRate{Messages: 5, Bytes: 6 << 10},
			}},
			"globex": {Prefix: "globex:", Quotas: proxy.Quotas{MaxPatterns: 9}},
		}},
		{"namespace", proxyNamespace(cfg.Namespace), proxy.NamespaceOptions{SharedPrefix: "shared:"}},
		{"enforce", proxyNamespace(config.Namespace{Mode: "enforce"}), proxy.NamespaceOptions{Enforce: true}},
		{"proxy_protocol", proxyProtocol(cfg.Listen.ProxyProtocol), proxy.ProxyProtocolOptions{Trusted: []string{"10.0.0.0/8"}, HeaderTimeout: 2 * time.Second}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, c.got, c.want)
		}
	}
}
