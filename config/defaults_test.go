package config_test

import (
	"testing"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/pubgate/pubgate/upstream"
)

// TestDefaultsAreThePackagesOwn: every default that a package applies when
// its Options leave a setting out is the file's default for the key that
// sets it, so that serve and a library user of the package get the same
// value. A literal typed again in Default, or in a package, fails here.
func TestDefaultsAreThePackagesOwn(t *testing.T) {
	d := config.Default()
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"listen.shutdown_timeout (proxy.Options.DrainTimeout)", d.Listen.ShutdownTimeout, proxy.DefaultDrainTimeout},
		{"listen.proxy_protocol.header_timeout", d.Listen.ProxyProtocol.HeaderTimeout, proxy.DefaultProxyHeaderTimeout},
		{"listen.tls.reload_interval", d.Listen.TLS.ReloadInterval, ptls.DefaultReloadInterval},
		{"upstream.timeout", d.Upstream.Timeout, upstream.DefaultTimeout},
		{"upstream.health_interval", d.Upstream.HealthInterval, upstream.DefaultHealthInterval},
		{"policy.timeout", d.Policy.Timeout, policy.DefaultTimeout},
		{"audit.queue_size", d.Audit.QueueSize, audit.DefaultQueueSize},
		{"audit.fsync_interval", d.Audit.FsyncInterval, audit.DefaultFsyncInterval},
		{"audit.fsync_records", d.Audit.FsyncRecords, audit.DefaultFsyncRecords},
		{"audit.seal_interval", d.Audit.SealInterval, audit.DefaultSealInterval},
		{"auth.verified_cache.max_users", d.Auth.VerifiedCache.MaxUsers, auth.DefaultVerifiedUsers},
		// The bcrypt queue's default bound is documented as the default
		// max_clients (serve passes limits.max_clients as MaxQueued).
		{"limits.max_clients (auth.PasswordOptions.MaxQueued)", d.Limits.MaxClients, auth.DefaultMaxQueued},
	} {
		if c.got != c.want {
			t.Errorf("%s: config.Default has %v, the package's default is %v", c.key, c.got, c.want)
		}
	}
}
