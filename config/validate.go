package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/pubgate/pubgate/auth"
	"golang.org/x/crypto/bcrypt"
)

// Validation has two steps, split as Caddy splits Provision from Validate:
//
//   - ValidateSettings checks the values themselves and each against the
//     others. It is pure: it reads no file and no environment variable, so
//     it gives the same answer for a configuration built in memory, in a
//     test, or on a machine that lacks the files.
//   - CheckFiles reads what the settings name, as serve will: certificate
//     and key pairs, CA files, policy paths and bundle, the JWKS file, and
//     the audit key from its file or environment variable.
//
// Validate runs both; Parse and Load call it. Every error of either step
// names its key.

// Validate checks the configuration: ValidateSettings and CheckFiles, their
// errors joined in one sorted list. Every error names its key.
func (c *Config) Validate() error {
	var errs errorList
	c.validateSettings(errs.add)
	c.checkFiles(errs.add)
	return errs.join()
}

// ValidateSettings checks the settings without reading any file or
// environment variable (see CheckFiles); every error names its key.
func (c *Config) ValidateSettings() error {
	var errs errorList
	c.validateSettings(errs.add)
	return errs.join()
}

// CheckFiles reads the files and environment variables the settings name
// (certificates and keys, CA files, policy paths and bundle, the JWKS
// file, the audit key) and reports each that cannot be used; every error
// names its key. It assumes nothing of ValidateSettings' outcome.
func (c *Config) CheckFiles() error {
	var errs errorList
	c.checkFiles(errs.add)
	return errs.join()
}

// errorList collects validation errors, each "key: message".
type errorList []error

func (l *errorList) add(key, format string, args ...any) {
	*l = append(*l, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// join sorts the errors by their text and joins them (nil if none).
func (l errorList) join() error {
	sort.Slice(l, func(i, j int) bool { return l[i].Error() < l[j].Error() })
	return errors.Join(l...)
}

// validateSettings is ValidateSettings' checks, reported through add.
func (c *Config) validateSettings(add addFunc) {
	if _, _, err := net.SplitHostPort(c.Listen.Address); err != nil {
		add("listen.address", "must be host:port: %v", err)
	}
	if c.Listen.DrainPeriod < 0 {
		add("listen.drain_period", "must not be negative")
	}
	if c.Listen.ShutdownTimeout < 0 {
		add("listen.shutdown_timeout", "must not be negative")
	}
	c.validateProxyProtocol(add)
	c.validateTLS(add)
	c.validateUpstream(add)
	c.validateTenants(add)
	c.validateUsers(add)
	c.validateLimits(add)
	c.validateNamespace(add)
	c.validatePolicy(add)
	c.validateAudit(add)
	c.validateAdmin(add)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		add("log.format", "must be console or json, not %q", c.Log.Format)
	}
}

type addFunc func(key, format string, args ...any)

func (c *Config) validateTLS(add addFunc) {
	t := c.Listen.TLS
	switch {
	case c.Listen.Plaintext && t.Enabled():
		add("listen.plaintext", "cannot be combined with listen.tls")
	case !c.Listen.Plaintext && !t.Enabled():
		add("listen.tls", "TLS is required: set cert_file and key_file, or internal: {} for a local CA; or set listen.plaintext: true to serve without TLS")
	case (t.CertFile == "") != (t.KeyFile == ""):
		add("listen.tls", "cert_file and key_file go together")
	case t.CertFile != "" && t.Internal != nil:
		add("listen.tls.internal", "cannot be combined with cert_file/key_file")
	case t.ACME != nil && (t.CertFile != "" || t.Internal != nil):
		add("listen.tls.acme", "cannot be combined with cert_file/key_file or internal")
	}
	if a := t.ACME; a != nil {
		if len(a.Domains) == 0 && len(a.OnDemand) == 0 {
			add("listen.tls.acme.domains", "name at least one domain (or on_demand names)")
		}
		if !strings.HasPrefix(a.DirectoryURL, "https://") {
			add("listen.tls.acme.directory_url", "must be an https:// URL")
		}
		if a.HTTPChallengeAddress == "" && !a.TLSALPNChallenge {
			add("listen.tls.acme", "enable http_challenge_address or tls_alpn_challenge")
		}
	}
	if t.ReloadInterval <= 0 {
		add("listen.tls.reload_interval", "must be positive")
	}
	switch t.ClientAuth {
	case "none":
	case "verify_if_given", "require":
		if t.ClientCAFile == "" {
			add("listen.tls.client_auth", "%s needs listen.tls.client_ca_file", t.ClientAuth)
		}
	default:
		add("listen.tls.client_auth", "must be none, verify_if_given or require, not %q", t.ClientAuth)
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		add("listen.tls.min_version", `must be "1.2" or "1.3", not %q`, t.MinVersion)
	}
}

func (c *Config) validateUpstream(add addFunc) {
	up := c.Upstream
	switch up.Kind() {
	case "cluster", "sentinel":
		validateDeployment(add, up)
	default:
		validateURL(add, up)
	}
	if t := up.TLS; t.Enabled() {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add("upstream.tls", "cert_file and key_file go together")
		}
	}
	if up.Timeout <= 0 {
		add("upstream.timeout", "must be positive")
	}
	if up.HealthInterval <= 0 {
		add("upstream.health_interval", "must be positive")
	}
	if up.DisconnectClientsAfter < 0 {
		add("upstream.disconnect_clients_after", "must not be negative (0 keeps clients connected)")
	}
	if up.PoolSize < 0 {
		add("upstream.pool_size", "must not be negative")
	}
}

func validateURL(add addFunc, up Upstream) {
	u, err := url.Parse(up.URL)
	switch {
	case err != nil:
		add("upstream.url", "%v", err)
	case u.Scheme == "memory":
	case u.Scheme == "redis" || u.Scheme == "rediss":
		if u.Host == "" {
			add("upstream.url", "%s URL needs a host: %s://host:port/", u.Scheme, u.Scheme)
		}
	default:
		add("upstream.url", "scheme must be memory, redis or rediss, not %q", u.Scheme)
	}
	if up.TLS.Enabled() && (u == nil || u.Scheme != "rediss") {
		add("upstream.tls", "needs a rediss:// upstream.url")
	}
	if up.Username != "" || up.Password != "" {
		add("upstream.username", "is for cluster and sentinel; a standalone URL carries its credentials: redis://user:password@host:port/")
	}
}

// validateDeployment checks a cluster or sentinel upstream, which replace
// the URL.
func validateDeployment(add addFunc, up Upstream) {
	if up.Cluster != nil && up.Sentinel != nil {
		add("upstream", "set either cluster or sentinel, not both")
	}
	if !strings.HasPrefix(up.URL, "memory:") {
		add("upstream.url", "set either url or %s, not both", up.Kind())
	}
	if up.Cluster != nil {
		checkAddresses(add, "upstream.cluster.addresses", up.Cluster.Addresses)
	}
	if s := up.Sentinel; s != nil {
		if s.MasterName == "" {
			add("upstream.sentinel.master_name", "is required: the name the sentinels monitor the primary by")
		}
		checkAddresses(add, "upstream.sentinel.addresses", s.Addresses)
	}
}

func checkAddresses(add addFunc, key string, addrs []string) {
	if len(addrs) == 0 {
		add(key, "needs at least one host:port")
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(key, "%q is not host:port", a)
		}
	}
}

func (c *Config) validateTenants(add addFunc) {
	if len(c.Tenants) == 0 {
		add("tenants", "at least one tenant is required")
	}
	names := sortedKeys(c.Tenants)
	for _, name := range names {
		key := "tenants." + name
		if !auth.ValidName(name) {
			add(key, "tenant names may contain letters, digits and _.@- only")
		}
		if p := c.Tenants[name].Prefix; strings.IndexFunc(p, isUnsafePrefixRune) >= 0 {
			add(key+".prefix", "must not contain spaces or control characters")
		}
		validateQuotas(add, key+".quotas", c.Tenants[name].Quotas)
	}
	// One prefix starting another would let a tenant name the other's
	// channels ("a:" + "b:x" == "a:b:" + "x").
	for i, a := range names {
		for _, b := range names[i+1:] {
			pa, pb := c.Tenants[a].Prefix, c.Tenants[b].Prefix
			if strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa) {
				add("tenants."+b+".prefix", "%q overlaps tenants.%s.prefix %q", pb, a, pa)
			}
		}
	}
}

func (c *Config) validateNamespace(add addFunc) {
	n := c.Namespace
	if n.Mode != "rewrite" && n.Mode != "enforce" {
		add("namespace.mode", "must be rewrite or enforce, not %q", n.Mode)
	}
	if n.SharedPrefix == "" {
		return
	}
	if n.Enforce() {
		add("namespace.shared_prefix", "only applies in rewrite mode (in enforce mode every name is shared; the policy decides)")
	}
	if strings.IndexFunc(n.SharedPrefix, isUnsafePrefixRune) >= 0 {
		add("namespace.shared_prefix", "must not contain spaces or control characters")
	}
	for _, name := range sortedKeys(c.Tenants) {
		p := c.Tenants[name].Prefix
		if strings.HasPrefix(p, n.SharedPrefix) || strings.HasPrefix(n.SharedPrefix, p) {
			add("namespace.shared_prefix", "%q overlaps tenants.%s.prefix %q", n.SharedPrefix, name, p)
		}
	}
}

func (c *Config) validatePolicy(add addFunc) {
	p := c.Policy
	if p.Timeout <= 0 {
		add("policy.timeout", "must be positive")
	}
	if p.CacheSize <= 0 {
		add("policy.cache_size", "must be positive")
	}
	if p.Concurrency < 0 {
		add("policy.concurrency", "must not be negative (0 is one per CPU)")
	}
}

func validateQuotas(add addFunc, key string, q Quotas) {
	if q.MaxConnections < 0 {
		add(key+".max_connections", "must not be negative (0 is unlimited)")
	}
	if q.MaxSubscriptions < 0 {
		add(key+".max_subscriptions", "must not be negative (0 is unlimited)")
	}
	if q.MaxPatterns != nil && *q.MaxPatterns < 0 {
		add(key+".max_patterns", "must not be negative (0 is unlimited)")
	}
	if q.MaxPayloadBytes < 0 {
		add(key+".max_payload_bytes", "must not be negative (0 is limits.max_payload_bytes)")
	}
	if q.PublishRate.Messages < 0 {
		add(key+".publish_rate.messages", "must not be negative (0 is unlimited)")
	}
	if q.PublishRate.Bytes < 0 {
		add(key+".publish_rate.bytes", "must not be negative (0 is unlimited)")
	}
}

func isUnsafePrefixRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

func (c *Config) validateUsers(add addFunc) {
	for _, name := range sortedKeys(c.Users) {
		u, key := c.Users[name], "users."+name
		if !auth.ValidName(name) {
			add(key, "user names may contain letters, digits and _.@- only")
		}
		if u.Tenant == "" {
			add(key+".tenant", "is required")
		} else if _, ok := c.Tenants[u.Tenant]; !ok {
			add(key+".tenant", "unknown tenant %q", u.Tenant)
		}
		if u.PasswordHash == "" {
			add(key+".password_hash", "is required (generate one with `pubgate passwd`)")
		} else if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			add(key+".password_hash", "not a bcrypt hash (generate one with `pubgate passwd`): %v", err)
		}
		for i, r := range u.Roles {
			if !auth.ValidName(r) {
				add(fmt.Sprintf("%s.roles[%d]", key, i), "role names may contain letters, digits and _.@- only")
			}
		}
	}
	if c.Auth.LoginTimeout <= 0 {
		add("auth.login_timeout", "must be positive")
	}
	if th := c.Auth.Throttle; th.MaxFailures < 0 {
		add("auth.throttle.max_failures", "must not be negative (0 disables the throttle)")
	} else if th.MaxFailures > 0 {
		if th.Window <= 0 {
			add("auth.throttle.window", "must be positive when max_failures is set")
		}
		switch {
		case th.MaxDelay <= 0:
			add("auth.throttle.max_delay", "must be positive when max_failures is set")
		case th.MaxDelay > maxThrottleDelay:
			add("auth.throttle.max_delay", "must be at most %s: a login waits at most 10s for its turn", maxThrottleDelay)
		case c.Auth.LoginTimeout > 0 && th.MaxDelay >= c.Auth.LoginTimeout:
			add("auth.throttle.max_delay", "must be less than auth.login_timeout (%s), or a throttled login never gets its turn", c.Auth.LoginTimeout)
		}
	}
	if vc := c.Auth.VerifiedCache; vc.Enabled && vc.MaxUsers <= 0 {
		add("auth.verified_cache.max_users", "must be positive when the cache is enabled (enabled: false turns it off)")
	}
	if c.Auth.BcryptConcurrency < 0 {
		add("auth.bcrypt_concurrency", "must not be negative (0: one per CPU)")
	}
	if cert := c.Auth.Certificates; cert != nil {
		if c.Listen.TLS.ClientCAFile == "" || c.Listen.TLS.ClientAuth == "none" {
			add("auth.certificates", "needs listen.tls.client_ca_file and client_auth verify_if_given or require")
		}
		if cert.Login != "certificate" && cert.Login != "password" {
			add("auth.certificates.login", "must be certificate or password, not %q", cert.Login)
		}
		// The check serve's NewCertificateMapper makes, so that check never
		// accepts a template serve refuses.
		if tmpl := cert.URITemplate; tmpl != "" {
			if err := auth.CheckURITemplate(tmpl); err != nil {
				add("auth.certificates.uri_template", "%v", err)
			}
		}
	}
	if j := c.Auth.JWT; j != nil {
		c.validateJWT(j, add)
	}
	if d := c.Auth.DefaultUser; d != "" {
		if _, ok := c.Users[d]; !ok {
			add("auth.default_user", "unknown user %q", d)
		}
	}
}

func (c *Config) validateJWT(j *JWT, add addFunc) {
	switch {
	case (j.JWKSURL == "") == (j.JWKSFile == ""):
		add("auth.jwt", "set one of jwks_url and jwks_file")
	case j.JWKSURL != "" && !strings.HasPrefix(j.JWKSURL, "https://"):
		add("auth.jwt.jwks_url", "must be an https:// URL")
	}
	if j.Issuer == "" {
		add("auth.jwt.issuer", "is required: tokens of any other issuer are refused")
	}
	if j.Audience == "" {
		add("auth.jwt.audience", "is required: tokens meant for other services are refused")
	}
	for i, alg := range j.Algorithms {
		if !slices.Contains(JWTAlgorithms, alg) {
			add(fmt.Sprintf("auth.jwt.algorithms[%d]", i), "%q is not one of %s", alg, strings.Join(JWTAlgorithms, ", "))
		}
	}
	if j.RefreshInterval < time.Minute {
		add("auth.jwt.refresh_interval", "must be at least 1m")
	}
	if j.Leeway < 0 {
		add("auth.jwt.leeway", "must not be negative")
	}
}

func (c *Config) validateLimits(add addFunc) {
	l := c.Limits
	if l.MaxClients <= 0 {
		add("limits.max_clients", "must be positive")
	}
	if l.MaxSubscriptionsPerClient <= 0 {
		add("limits.max_subscriptions_per_client", "must be positive")
	}
	if l.MaxPayloadBytes <= 0 {
		add("limits.max_payload_bytes", "must be positive")
	}
	if l.MaxChannelBytes <= 0 {
		add("limits.max_channel_bytes", "must be positive")
	}
	if l.MaxPatternsPerTenant < 0 {
		add("limits.max_patterns_per_tenant", "must not be negative (0 is unlimited)")
	}
	if l.CoverPatternsOver < 0 {
		add("limits.cover_patterns_over", "must not be negative (0 never covers)")
	}
	ob := l.ClientOutputBuffer
	if ob.HardLimit <= 0 {
		add("limits.client_output_buffer.hard_limit", "must be positive")
	}
	if ob.SoftLimit <= 0 || ob.SoftLimit > ob.HardLimit {
		add("limits.client_output_buffer.soft_limit", "must be positive and at most hard_limit")
	}
	if ob.SoftSeconds < 0 {
		add("limits.client_output_buffer.soft_seconds", "must not be negative")
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func (c *Config) validateProxyProtocol(add func(key, format string, args ...any)) {
	p := c.Listen.ProxyProtocol
	for i, t := range p.Trusted {
		if _, err := netip.ParsePrefix(t); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(t); err != nil {
			add(fmt.Sprintf("listen.proxy_protocol.trusted[%d]", i), "%q is neither an IP address nor a CIDR range", t)
		}
	}
	if p.HeaderTimeout <= 0 {
		add("listen.proxy_protocol.header_timeout", "must be positive")
	}
}

// prefixSeparators may end a tenant's (or the shared) prefix, so that it
// reads apart from the names under it.
const prefixSeparators = ":./-_|"

func endsInSeparator(prefix string) bool {
	return prefix != "" && strings.ContainsRune(prefixSeparators, rune(prefix[len(prefix)-1]))
}

// Warnings lists what is valid but probably not meant, each naming its key
// as errors do; check prints them and serve should log them. A prefix
// without a separator at its end is no isolation hole (prefixes that
// overlap are errors) but it blurs namespaces: "globex" stores "news" as
// "globexnews", and a later tenant "globexcorp" would be refused.
func (c *Config) Warnings() []string {
	var ws []string
	for _, name := range sortedKeys(c.Tenants) {
		if p := c.Tenants[name].Prefix; !endsInSeparator(p) {
			ws = append(ws, fmt.Sprintf("tenants.%s.prefix: %q does not end in a separator (one of %s): "+
				"channel \"news\" is stored as %q, and no tenant whose prefix starts with %q can be added; write %q",
				name, p, prefixSeparators, p+"news", p, p+":"))
		}
	}
	if n := c.Namespace; !n.Enforce() && n.SharedPrefix != "" && !endsInSeparator(n.SharedPrefix) {
		ws = append(ws, fmt.Sprintf("namespace.shared_prefix: %q does not end in a separator (one of %s): "+
			"every name that starts with it is shared, %q as much as %q; write %q",
			n.SharedPrefix, prefixSeparators, n.SharedPrefix+"news", n.SharedPrefix+":news", n.SharedPrefix+":"))
	}
	return ws
}
