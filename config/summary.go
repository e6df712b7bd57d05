package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Summary describes the configuration for `pubgate check`, without secrets.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen:   %s, %s\n", c.Listen.Address, c.Listen.tlsSummary())
	if p := c.Listen.ProxyProtocol; p.Enabled() {
		fmt.Fprintf(&b, "          client addresses from PROXY protocol headers sent by %s\n", strings.Join(p.Trusted, ", "))
	}
	fmt.Fprintf(&b, "upstream: %s (timeout %s)\n", c.Upstream.Describe(), c.Upstream.Timeout)
	fmt.Fprintf(&b, "tenants:  %d\n", len(c.Tenants))
	for _, name := range sortedKeys(c.Tenants) {
		t := c.Tenants[name]
		fmt.Fprintf(&b, "  %-16s prefix %q%s\n", name, t.Prefix, t.Quotas.summary())
	}
	fmt.Fprintf(&b, "namespace: %s", c.Namespace.Mode)
	if c.Namespace.SharedPrefix != "" {
		fmt.Fprintf(&b, ", names starting %q shared between tenants", c.Namespace.SharedPrefix)
	}
	b.WriteString("\n")
	if p := c.Policy; p.Configured() {
		sources := append([]string{}, p.Paths...)
		if p.Bundle != "" {
			sources = append(sources, "bundle "+p.Bundle)
		}
		fmt.Fprintf(&b, "policy:   %s", strings.Join(sources, ", "))
		if p.Watch {
			b.WriteString(", reloaded on change")
		}
		fmt.Fprintf(&b, "; timeout %s, cache %d decisions\n", p.Timeout, p.CacheSize)
	} else {
		b.WriteString("policy:   built-in (each tenant may use the channels under its prefix)\n")
	}
	b.WriteString(c.Audit.summary())
	b.WriteString(c.Admin.summary())
	fmt.Fprintf(&b, "users:    %d\n", len(c.Users))
	for _, name := range sortedKeys(c.Users) {
		u := c.Users[name]
		fmt.Fprintf(&b, "  %-16s tenant %s, roles [%s]\n", name, u.Tenant, strings.Join(u.Roles, ", "))
	}
	if th := c.Auth.Throttle; th.MaxFailures > 0 {
		fmt.Fprintf(&b, "auth:     login within %s; after %d failed logins in %s for a user (or a user at one address), "+
			"further logins wait their turn, up to %s apart\n", c.Auth.LoginTimeout, th.MaxFailures, th.Window, th.MaxDelay)
	} else {
		fmt.Fprintf(&b, "auth:     login within %s; failed logins are not throttled\n", c.Auth.LoginTimeout)
	}
	b.WriteString(c.Auth.passwordSummary())
	if c.Auth.DefaultUser != "" {
		fmt.Fprintf(&b, "WARNING: connections without AUTH act as user %q (auth.default_user)\n", c.Auth.DefaultUser)
	}
	l := c.Limits
	fmt.Fprintf(&b, "limits:   %d clients, %d subscriptions per client, %s payload, output buffer hard %s / soft %s for %ds\n",
		l.MaxClients, l.MaxSubscriptionsPerClient, l.MaxPayloadBytes,
		l.ClientOutputBuffer.HardLimit, l.ClientOutputBuffer.SoftLimit, l.ClientOutputBuffer.SoftSeconds)
	return b.String()
}

func (l Listen) tlsSummary() string {
	t := l.TLS
	var s string
	switch {
	case l.Plaintext:
		return "WARNING: plaintext, no TLS (listen.plaintext: true)"
	case t.ACME != nil:
		s = fmt.Sprintf("TLS from ACME (%s) for %s", t.ACME.DirectoryURL, strings.Join(append(append([]string{}, t.ACME.Domains...), t.ACME.OnDemand...), ", "))
	case t.Internal != nil:
		s = fmt.Sprintf("TLS from pubgate's local CA in %s for %s", t.Internal.DataDir, strings.Join(t.Internal.Names, ", "))
	default:
		s = fmt.Sprintf("TLS with %s (checked every %s)", t.CertFile, t.ReloadInterval)
	}
	s += ", TLS " + t.MinVersion + "+"
	if t.ClientAuth != "none" {
		s += fmt.Sprintf(", client certificates %s (CA %s)", t.ClientAuth, t.ClientCAFile)
	}
	return s
}

// Describe names the upstream deployment for logs and `pubgate check`,
// without secrets.
func (u Upstream) Describe() string {
	tls := ""
	if u.TLS.Enabled() {
		tls = ", TLS"
	}
	switch {
	case u.Cluster != nil:
		mode := "classic pub/sub"
		if u.Cluster.Sharded {
			mode = "sharded pub/sub"
		}
		return fmt.Sprintf("cluster %s (%s%s)", strings.Join(u.Cluster.Addresses, ","), mode, tls)
	case u.Sentinel != nil:
		return fmt.Sprintf("sentinel primary %q via %s%s", u.Sentinel.MasterName, strings.Join(u.Sentinel.Addresses, ","), tls)
	}
	return RedactURL(u.URL)
}

func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	if _, hasPassword := u.User.Password(); !hasPassword {
		return raw
	}
	return u.Redacted()
}

func (q Quotas) summary() string {
	var parts []string
	if q.MaxConnections > 0 {
		parts = append(parts, fmt.Sprintf("%d connections", q.MaxConnections))
	}
	if q.MaxSubscriptions > 0 {
		parts = append(parts, fmt.Sprintf("%d subscriptions", q.MaxSubscriptions))
	}
	if q.MaxPayloadBytes > 0 {
		parts = append(parts, fmt.Sprintf("%s payload", q.MaxPayloadBytes))
	}
	if r := q.PublishRate; r.Messages > 0 {
		parts = append(parts, fmt.Sprintf("%d msg/s", r.Messages))
	}
	if r := q.PublishRate; r.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("%s/s", r.Bytes))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", quotas: " + strings.Join(parts, ", ")
}

// passwordSummary says how password checks spend CPU and what memory keeps.
func (a Auth) passwordSummary() string {
	at := "one per CPU"
	if a.BcryptConcurrency > 0 {
		at = fmt.Sprint(a.BcryptConcurrency)
	}
	cache := "verified passwords not remembered, every login runs bcrypt"
	if vc := a.VerifiedCache; vc.Enabled {
		cache = fmt.Sprintf("the last verified password of up to %d users remembered as an HMAC in memory (auth.verified_cache)", vc.MaxUsers)
	}
	return fmt.Sprintf("          bcrypt checks: %s at a time; %s\n", at, cache)
}
