// Package config is pubgate's configuration: the YAML schema, its defaults
// (filled in one place, Default, from the owning packages' constants where
// a package has a default of its own), strict decoding (unknown keys are
// errors that name the key) and validation, whose errors name the
// offending key. Validation is split as Caddy splits Provision from
// Validate: ValidateSettings is pure (no file, no environment variable),
// CheckFiles reads what the settings name (keys, certificates, CA files,
// policy files, the audit key), and Validate runs both.
package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/pubgate/pubgate/upstream"
)

// defaultDataDir is where pubgate keeps state it creates (the local CA):
// $XDG_DATA_HOME/pubgate, else ~/.local/share/pubgate.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "pubgate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "pubgate")
	}
	return "pubgate-data"
}

// Config is the whole pubgate configuration file.
type Config struct {
	Listen   Listen             `yaml:"listen"`
	Upstream Upstream           `yaml:"upstream"`
	Tenants  map[string]*Tenant `yaml:"tenants"`
	Users    map[string]*User   `yaml:"users"`
	// UsersFile holds more users, in a file of its own ("users:" as here),
	// so that a secrets manager can provide it; relative to the config file.
	UsersFile string    `yaml:"users_file"`
	Auth      Auth      `yaml:"auth"`
	Namespace Namespace `yaml:"namespace"`
	Policy    Policy    `yaml:"policy"`
	Audit     Audit     `yaml:"audit"`
	Limits    Limits    `yaml:"limits"`
	Log       Log       `yaml:"log"`
	Admin     Admin     `yaml:"admin"` // metrics, health and readiness over HTTP
}

// Namespace says how tenants' channel names map to upstream names.
type Namespace struct {
	// Mode is rewrite (the default: a tenant's names are stored under its
	// prefix, and it cannot name anything else) or enforce (clients write
	// full names; the policy must confine each tenant to its prefix).
	Mode string `yaml:"mode"`
	// SharedPrefix, in rewrite mode, marks names that are not rewritten,
	// so that tenants can share channels the policy opens to them
	// (e.g. "shared:announcements"). Empty: none.
	SharedPrefix string `yaml:"shared_prefix"`
}

// Enforce reports whether clients write full upstream names.
func (n Namespace) Enforce() bool { return n.Mode == "enforce" }

// Policy is the Rego authorization policy. With neither Paths nor Bundle,
// a built-in policy confines each tenant to its prefix.
type Policy struct {
	// Paths are .rego modules and .json/.yaml data files or directories of
	// them, relative to the configuration file.
	Paths []string `yaml:"paths"`
	// Bundle is an OPA bundle (directory or .tar.gz from `opa build`).
	Bundle string `yaml:"bundle"`
	// Watch reloads the policy when its files change (SIGHUP always does).
	Watch bool `yaml:"watch"`
	// Timeout bounds one evaluation; past it the request is denied.
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize bounds the number of cached decisions.
	CacheSize int `yaml:"cache_size"`
	// Concurrency bounds the evaluations run at once; 0: one per CPU.
	// Raise it for a policy that waits on I/O (http.send).
	Concurrency int `yaml:"concurrency"`
}

// Configured reports whether a policy is named (else the built-in applies).
func (p Policy) Configured() bool { return len(p.Paths) > 0 || p.Bundle != "" }

// Listen is the client-facing listener.
type Listen struct {
	Address string `yaml:"address"`
	// Plaintext serves without TLS. It must be asked for explicitly.
	Plaintext bool `yaml:"plaintext"`
	TLS       TLS  `yaml:"tls"`
	// DrainPeriod is how long, after SIGTERM, connected clients are still
	// served while new ones are refused and readiness reports draining, so
	// that a load balancer moves clients elsewhere. It ends early once
	// every client has left, or at a second SIGTERM.
	DrainPeriod time.Duration `yaml:"drain_period"`
	// ShutdownTimeout bounds the shutdown after the drain period: sessions
	// answer what they read, receive what was acknowledged, flush their
	// output and close within it.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ProxyProtocol takes each client's address from a PROXY protocol
	// header sent by a trusted load balancer.
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`
}

// ProxyProtocol is the PROXY protocol (v1 and v2) on the client listener,
// off while Trusted is empty. A connection from a trusted address must
// open with a header, and the address it names is the client's everywhere
// (throttle, policy input, audit, logs, CLIENT LIST); a connection from any
// other address that sends one is refused, so no client can claim an
// address. TLS is still terminated by pubgate (HAProxy: mode tcp,
// send-proxy-v2).
type ProxyProtocol struct {
	// Trusted lists the load balancers' addresses: IPs or CIDRs.
	Trusted []string `yaml:"trusted"`
	// HeaderTimeout bounds the wait for a trusted peer's header.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
}

// Enabled reports whether any peer is trusted to send a PROXY header.
func (p ProxyProtocol) Enabled() bool { return len(p.Trusted) > 0 }

// TLS is how the listener gets its certificate: from files, or from a
// local CA that pubgate creates (like Caddy's "tls internal").
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ReloadInterval is how often the files are checked for a new pair.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	Internal       *InternalCA   `yaml:"internal"`
	ACME           *ACME         `yaml:"acme"`
	// ClientCAFile verifies client certificates; ClientAuth is none,
	// verify_if_given or require (the default when ClientCAFile is set).
	ClientCAFile string `yaml:"client_ca_file"`
	ClientAuth   string `yaml:"client_auth"`
	MinVersion   string `yaml:"min_version"` // "1.2" or "1.3"
}

// Enabled reports whether any certificate source is configured.
func (t TLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.Internal != nil || t.ACME != nil
}

// ACME obtains and renews certificates from an ACME CA (RFC 8555): Let's
// Encrypt, or a private one such as step-ca.
type ACME struct {
	Domains      []string `yaml:"domains"` // obtained at start, renewed in the background
	Email        string   `yaml:"email"`
	DirectoryURL string   `yaml:"directory_url"` // default: Let's Encrypt production
	// CARootFile is trusted for the ACME server's HTTPS (a private CA).
	CARootFile string `yaml:"ca_root_file"`
	StorageDir string `yaml:"storage_dir"` // accounts and certificates
	// HTTPChallengeAddress serves HTTP-01 ("" disables it); the CA
	// connects to port 80 of each domain, so map that port here.
	HTTPChallengeAddress string `yaml:"http_challenge_address"`
	// TLSALPNChallenge enables TLS-ALPN-01, which the CA performs on port
	// 443 of each domain: pubgate must be reachable there.
	TLSALPNChallenge bool `yaml:"tls_alpn_challenge"`
	// OnDemand lists names for which a certificate is obtained at the first
	// handshake that asks for them; no other name ever is.
	OnDemand []string `yaml:"on_demand"`
}

// InternalCA makes pubgate its own certificate authority.
type InternalCA struct {
	Names   []string `yaml:"names"`    // DNS names and IP addresses of the server certificate
	DataDir string   `yaml:"data_dir"` // where the CA and certificate are kept
}

// Upstream is the fan-out engine: the embedded memory engine, a standalone
// Redis (URL), a primary found through Sentinel, or a Redis Cluster.
type Upstream struct {
	// URL is memory:// (embedded engine), redis://[user:pass@]host:port/[db]
	// or rediss://… for Redis over TLS. Unused with Cluster or Sentinel.
	URL      string           `yaml:"url"`
	Cluster  *UpstreamCluster `yaml:"cluster"`
	Sentinel *Sentinel        `yaml:"sentinel"`
	// Username and Password authenticate to the Redis nodes of a Cluster
	// or Sentinel deployment (an ACL user); a URL carries its own.
	Username string        `yaml:"username"`
	Password string        `yaml:"password"`
	Timeout  time.Duration `yaml:"timeout"`
	PoolSize int           `yaml:"pool_size"`
	TLS      UpstreamTLS   `yaml:"tls"`
	// HealthInterval is how often the engine is probed for readiness.
	HealthInterval time.Duration `yaml:"health_interval"`
	// DisconnectClientsAfter, when set, disconnects this node's clients
	// once the upstream has been unreachable that long, so that they
	// reconnect through the load balancer to a node that reaches it
	// (readiness keeps them away from this one). 0: clients stay connected
	// through any outage.
	DisconnectClientsAfter time.Duration `yaml:"disconnect_clients_after"`
}

// UpstreamCluster is a Redis Cluster.
type UpstreamCluster struct {
	Addresses []string `yaml:"addresses"` // seed nodes, host:port
	// Sharded carries tenants' channels as Redis 7 shard channels
	// (SPUBLISH/SSUBSCRIBE), so that each message stays within the shard
	// that owns its slot instead of reaching every node. Pattern
	// subscriptions are refused then.
	Sharded bool `yaml:"sharded"`
}

// Sentinel locates the primary through Redis Sentinel.
type Sentinel struct {
	MasterName string   `yaml:"master_name"`
	Addresses  []string `yaml:"addresses"` // the sentinels, host:port
	// Username and Password are the sentinels' own credentials, if any.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// UpstreamTLS adjusts TLS towards Redis (rediss:// URLs). For a Cluster or
// Sentinel, any setting (or enabled alone) turns TLS on.
type UpstreamTLS struct {
	Enable     bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`   // CA that Redis's certificate chains to; default: system roots
	CertFile   string `yaml:"cert_file"` // client certificate, when Redis requires one
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"` // default: the URL's host
}

// Enabled reports whether any option is set.
func (t UpstreamTLS) Enabled() bool { return t != UpstreamTLS{} }

// Kind names the deployment: memory, redis, cluster or sentinel.
func (u Upstream) Kind() string {
	switch {
	case u.Cluster != nil:
		return "cluster"
	case u.Sentinel != nil:
		return "sentinel"
	case u.IsMemory():
		return "memory"
	}
	return "redis"
}

// IsMemory reports whether the URL selects the embedded engine.
func (u Upstream) IsMemory() bool {
	return u.Cluster == nil && u.Sentinel == nil && strings.HasPrefix(u.URL, "memory:")
}

// Tenant is an isolated channel namespace.
type Tenant struct {
	// Prefix is prepended to every channel and pattern of the tenant
	// upstream. Default: the tenant name followed by ':'.
	Prefix string `yaml:"prefix"`
	Quotas Quotas `yaml:"quotas"`
}

// Quotas bound what one tenant's clients may use together; 0 is
// unlimited. They are checked before the policy.
type Quotas struct {
	MaxConnections   int `yaml:"max_connections"`
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxPatterns bounds the pattern subscriptions (PSUBSCRIBE) among
	// them: every pattern costs every publish upstream a match. Not set,
	// it is limits.max_patterns_per_tenant; 0 is unlimited.
	MaxPatterns     *int     `yaml:"max_patterns"`
	MaxPayloadBytes ByteSize `yaml:"max_payload_bytes"`
	// PublishRate is a token bucket holding one second of the rate.
	PublishRate PublishRate `yaml:"publish_rate"`
}

// PublishRate bounds a tenant's publishes per second.
type PublishRate struct {
	Messages int      `yaml:"messages"`
	Bytes    ByteSize `yaml:"bytes"`
}

// User is a password identity bound to one tenant.
type User struct {
	Tenant       string   `yaml:"tenant"`
	PasswordHash string   `yaml:"password_hash"` // bcrypt, from `pubgate passwd`
	Roles        []string `yaml:"roles"`
}

// Auth holds settings of client authentication.
type Auth struct {
	// DefaultUser, when set, binds connections that have not sent AUTH to
	// this user, like Redis's nopass default user. Off unless set.
	DefaultUser string `yaml:"default_user"`
	// LoginTimeout closes connections that have not authenticated in time,
	// so idle connections cannot hold max_clients slots.
	LoginTimeout time.Duration `yaml:"login_timeout"`
	Throttle     Throttle      `yaml:"throttle"`
	// VerifiedCache remembers each user's last verified password as a
	// keyed hash, so that a reconnect storm costs one bcrypt check per
	// user rather than one per connection.
	VerifiedCache VerifiedCache `yaml:"verified_cache"`
	// BcryptConcurrency bounds the bcrypt checks running at once (0: one
	// per CPU); further logins wait their turn, a wait not held against
	// LoginTimeout. The queue is bounded by limits.max_clients.
	BcryptConcurrency int `yaml:"bcrypt_concurrency"`
	// Certificates makes verified client certificates identities.
	Certificates *Certificates `yaml:"certificates"`
	// JWT accepts tokens from an identity provider in AUTH.
	JWT *JWT `yaml:"jwt"`
}

// JWT verifies `AUTH <user> <token>` against an identity provider's keys.
type JWT struct {
	JWKSURL         string        `yaml:"jwks_url"`  // https://… of the provider's key set, or
	JWKSFile        string        `yaml:"jwks_file"` // a key set on disk
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	Issuer          string        `yaml:"issuer"`
	Audience        string        `yaml:"audience"`
	Algorithms      []string      `yaml:"algorithms"`
	Leeway          time.Duration `yaml:"leeway"`
	Claims          JWTClaims     `yaml:"claims"`
}

// JWTClaims names the claims holding the identity.
type JWTClaims struct {
	Tenant string `yaml:"tenant"`
	User   string `yaml:"user"`
	Roles  string `yaml:"roles"`
}

// JWTAlgorithms are the signature algorithms pubgate can accept; "none"
// and shared-secret HMAC never.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Certificates says how a client certificate names its tenant and user.
type Certificates struct {
	// URITemplate matches a URI SAN, e.g.
	// "spiffe://example.org/tenant/{tenant}/svc/{user}". Empty: the subject
	// names them (user = CN, tenant = first O).
	URITemplate string `yaml:"uri_template"`
	// Login is "certificate" (the certificate alone authenticates) or
	// "password" (AUTH is still required). Either way an AUTH must be of the
	// certificate's tenant.
	Login string `yaml:"login"`
}

// Throttle slows password guessing down (auth.Throttle): once a user, or a
// user at one client address, has had MaxFailures failed logins within
// Window, each further login under that key waits its turn, a delay that
// doubles per failure up to MaxDelay, before its password is checked. It
// never refuses a login but one that gets no turn before its deadline.
// MaxFailures 0 disables it.
type Throttle struct {
	MaxFailures int           `yaml:"max_failures"`
	Window      time.Duration `yaml:"window"`
	MaxDelay    time.Duration `yaml:"max_delay"`
}

// VerifiedCache is auth.verified_cache. A memory dump of the process holds
// HMAC-SHA-256 hashes of remembered passwords together with their key, so
// an offline guess costs one HMAC instead of one bcrypt check.
type VerifiedCache struct {
	Enabled  bool `yaml:"enabled"`
	MaxUsers int  `yaml:"max_users"`
}

// maxThrottleDelay bounds auth.throttle.max_delay: half the 10s a login
// waits at most for its turn, so that a throttled login gets one even
// behind another.
const maxThrottleDelay = 5 * time.Second

// Limits protect pubgate and other clients from one client.
type Limits struct {
	MaxClients                int          `yaml:"max_clients"`
	MaxSubscriptionsPerClient int          `yaml:"max_subscriptions_per_client"`
	MaxPayloadBytes           ByteSize     `yaml:"max_payload_bytes"`
	MaxChannelBytes           ByteSize     `yaml:"max_channel_bytes"` // channel and pattern names
	ClientOutputBuffer        OutputBuffer `yaml:"client_output_buffer"`
	// MaxPatternsPerTenant is the default of tenants.<name>.quotas.max_patterns;
	// 0 is unlimited.
	MaxPatternsPerTenant int `yaml:"max_patterns_per_tenant"`
	// CoverPatternsOver: once a tenant's clients on one node hold more
	// distinct patterns than this, the node subscribes one covering
	// pattern upstream for the tenant and matches its patterns itself
	// (Redis engines; docs/design.md). 0 never covers.
	CoverPatternsOver int `yaml:"cover_patterns_over"`
}

// OutputBuffer is Redis's client-output-buffer-limit for pub/sub clients: a
// client whose unsent output exceeds HardLimit, or stays above SoftLimit for
// SoftSeconds, is disconnected.
type OutputBuffer struct {
	HardLimit   ByteSize `yaml:"hard_limit"`
	SoftLimit   ByteSize `yaml:"soft_limit"`
	SoftSeconds int      `yaml:"soft_seconds"`
}

// Log is the operational log (not the audit log).
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // console | json
}

// Default returns the configuration used for every key a file leaves out.
// It is the one place the file's defaults are filled; a default that a
// package also applies when its Options leave the setting out is that
// package's exported constant (audit.DefaultQueueSize, policy.DefaultTimeout,
// upstream.DefaultTimeout, ...), so that the two never differ
// (defaults_test.go checks each pair).
func Default() *Config {
	return &Config{
		Listen: Listen{
			Address: "127.0.0.1:6380", DrainPeriod: 5 * time.Second, ShutdownTimeout: proxy.DefaultDrainTimeout,
			ProxyProtocol: ProxyProtocol{HeaderTimeout: proxy.DefaultProxyHeaderTimeout},
			TLS:           TLS{ReloadInterval: ptls.DefaultReloadInterval, MinVersion: "1.2"},
		},
		Upstream: Upstream{URL: "memory://", Timeout: upstream.DefaultTimeout, HealthInterval: upstream.DefaultHealthInterval},
		Auth: Auth{
			LoginTimeout:  10 * time.Second,
			Throttle:      Throttle{MaxFailures: 5, Window: time.Minute, MaxDelay: 2 * time.Second},
			VerifiedCache: VerifiedCache{Enabled: true, MaxUsers: auth.DefaultVerifiedUsers},
		},
		Namespace: Namespace{Mode: "rewrite"},
		Policy:    Policy{Watch: true, Timeout: policy.DefaultTimeout, CacheSize: 100000},
		Limits: Limits{
			MaxClients:                10000,
			MaxSubscriptionsPerClient: 10000,
			MaxPayloadBytes:           1 << 20,
			MaxChannelBytes:           4 << 10,
			ClientOutputBuffer:        OutputBuffer{HardLimit: 32 << 20, SoftLimit: 8 << 20, SoftSeconds: 60},
			MaxPatternsPerTenant:      10000,
			CoverPatternsOver:         32,
		},
		Log:   Log{Level: "info", Format: "console"},
		Audit: defaultAudit(),
		Admin: defaultAdmin(),
	}
}

// fillDerivedDefaults sets defaults that depend on other keys.
func (c *Config) fillDerivedDefaults() {
	t := &c.Listen.TLS
	if t.ClientAuth == "" {
		t.ClientAuth = "none"
		if t.ClientCAFile != "" {
			t.ClientAuth = "require"
		}
	}
	if j := c.Auth.JWT; j != nil {
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256"}
		}
		if j.RefreshInterval == 0 {
			j.RefreshInterval = time.Hour
		}
		if j.Leeway == 0 {
			j.Leeway = 30 * time.Second
		}
		if j.Claims.Tenant == "" {
			j.Claims.Tenant = "tenant"
		}
		if j.Claims.User == "" {
			j.Claims.User = "sub"
		}
		if j.Claims.Roles == "" {
			j.Claims.Roles = "roles"
		}
	}
	if c.Auth.Certificates != nil && c.Auth.Certificates.Login == "" {
		c.Auth.Certificates.Login = "certificate"
	}
	if a := t.ACME; a != nil {
		if a.DirectoryURL == "" {
			a.DirectoryURL = "https://acme-v02.api.letsencrypt.org/directory"
		}
		if a.StorageDir == "" {
			a.StorageDir = filepath.Join(defaultDataDir(), "acme")
		}
	}
	if in := t.Internal; in != nil {
		if len(in.Names) == 0 {
			in.Names = []string{"localhost", "127.0.0.1", "::1"}
		}
		if in.DataDir == "" {
			in.DataDir = defaultDataDir()
		}
	}
	for name, t := range c.Tenants {
		if t == nil {
			t = &Tenant{}
			c.Tenants[name] = t
		}
		if t.Prefix == "" {
			t.Prefix = name + ":"
		}
		if t.Quotas.MaxPatterns == nil {
			n := c.Limits.MaxPatternsPerTenant
			t.Quotas.MaxPatterns = &n
		}
	}
	for name, u := range c.Users {
		if u == nil {
			c.Users[name] = &User{}
		}
	}
}
