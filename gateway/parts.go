package gateway

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// This file maps the configuration onto the parts' own options.

// openBroker opens the upstream engine; tlsConfig is upstream.tls, built
// by provision.
func openBroker(u config.Upstream, tlsConfig *tls.Config, log *zap.Logger) (upstream.Broker, error) {
	if u.IsMemory() {
		return upstream.NewMemory(), nil
	}
	o := upstream.RedisOptions{
		URL: u.URL, Username: u.Username, Password: u.Password,
		Timeout: u.Timeout, PoolSize: u.PoolSize, TLS: tlsConfig,
		HealthInterval: u.HealthInterval, OnHealthChange: logHealth(log, u.Describe(), u.HealthInterval),
	}
	if c := u.Cluster; c != nil {
		o.URL, o.Cluster = "", &upstream.ClusterOptions{Addrs: c.Addresses, Sharded: c.Sharded}
	}
	if s := u.Sentinel; s != nil {
		o.URL, o.Sentinel = "", &upstream.SentinelOptions{MasterName: s.MasterName, Addrs: s.Addresses, Username: s.Username, Password: s.Password}
	}
	return upstream.NewRedis(o)
}

// NewAuthorizer compiles the configured policy (or the built-in one) with
// the configuration's tenants, users and namespace as data.pubgate: what
// serve decides with, for `pubgate check` and `pubgate policy eval` too.
func NewAuthorizer(ctx context.Context, cfg *config.Config, log *zap.Logger) (*policy.Authorizer, error) {
	return policy.New(ctx, policy.Options{
		Sources: policySources(cfg), CacheSize: cfg.Policy.CacheSize, Timeout: cfg.Policy.Timeout,
		Concurrency: cfg.Policy.Concurrency, Logger: log,
	})
}

// policySources are the configured policy files (or the built-in policy),
// with the configuration's tenants, users and namespace as data.pubgate.
func policySources(cfg *config.Config) policy.Sources {
	return policy.Sources{Paths: cfg.Policy.Paths, Bundle: cfg.Policy.Bundle, Builtin: policy.Builtin, Data: cfg.PolicyData()}
}

// passwordUsers is the configuration's password table.
func passwordUsers(cfg *config.Config) map[string]auth.PasswordUser {
	users := make(map[string]auth.PasswordUser, len(cfg.Users))
	for name, u := range cfg.Users {
		users[name] = auth.PasswordUser{Tenant: u.Tenant, PasswordHash: u.PasswordHash, Roles: u.Roles}
	}
	return users
}

// passwordOptions are the bcrypt settings (auth.verified_cache,
// auth.bcrypt_concurrency). The bcrypt queue is bounded by max_clients: a
// connection checks one AUTH at a time.
func passwordOptions(cfg *config.Config) auth.PasswordOptions {
	o := auth.PasswordOptions{Concurrency: cfg.Auth.BcryptConcurrency, MaxQueued: cfg.Limits.MaxClients}
	if vc := cfg.Auth.VerifiedCache; vc.Enabled {
		o.VerifiedUsers = vc.MaxUsers
	}
	return o
}

// newJWT is the JWT authenticator of auth.jwt. ctx ends its key-set
// refreshes.
func newJWT(ctx context.Context, j *config.JWT) (*auth.JWT, error) {
	return auth.NewJWT(ctx, auth.JWTOptions{
		JWKSURL: j.JWKSURL, JWKSFile: j.JWKSFile, RefreshInterval: j.RefreshInterval, UnknownKIDInterval: time.Minute,
		Issuer: j.Issuer, Audience: j.Audience, Algorithms: j.Algorithms, Leeway: j.Leeway,
		TenantClaim: j.Claims.Tenant, UserClaim: j.Claims.User, RolesClaim: j.Claims.Roles,
	})
}

func (g *Gateway) newProxy(p provisioned) (*proxy.Server, error) {
	cfg := g.cfg
	var defaultUser *auth.Identity
	if cfg.Auth.DefaultUser != "" {
		id, _ := g.passwords.Lookup(cfg.Auth.DefaultUser)
		defaultUser = &id
	}
	authenticator := auth.Chain{Passwords: g.passwords}
	if p.tokens != nil {
		authenticator.JWT = p.tokens
	}
	return proxy.New(proxy.Options{
		CertificateIdentity: p.certIdentity,
		CertificateLogin:    cfg.Auth.Certificates != nil && cfg.Auth.Certificates.Login == "certificate",
		Limits:              proxyLimits(cfg.Limits), Tenants: proxyTenants(cfg.Tenants), Namespace: proxyNamespace(cfg.Namespace),
		Broker: g.broker, Auth: authenticator, Users: g.passwords.Lookup,
		Authorizer: g.authz, Audit: g.auditor, AuditLevels: cfg.Audit.AuditLevels(),
		DefaultUser: defaultUser, UpstreamTimeout: cfg.Upstream.Timeout, LoginTimeout: cfg.Auth.LoginTimeout,
		Throttle:     auth.NewThrottle(cfg.Auth.Throttle.MaxFailures, cfg.Auth.Throttle.Window, cfg.Auth.Throttle.MaxDelay),
		DrainTimeout: cfg.Listen.ShutdownTimeout, Version: g.opts.Version, Logger: g.log,
	})
}
