package proxy

import (
	"strings"

	"github.com/pubgate/pubgate/upstream"
)

// Namespace confines one tenant in rewrite mode: every channel and pattern a
// client names is stored upstream under the tenant's prefix, and names coming
// back are shown without it. Because the prefix of a pattern is escaped, no
// pattern a client sends can match a channel outside its prefix.
type Namespace struct {
	Tenant        string
	Prefix        string
	escapedPrefix string
}

// NewNamespace returns the namespace of a tenant.
func NewNamespace(tenant, prefix string) *Namespace {
	return &Namespace{Tenant: tenant, Prefix: prefix, escapedPrefix: upstream.EscapeGlob(prefix)}
}

// Channel maps a client channel name to its upstream name.
func (n *Namespace) Channel(name string) string { return n.Prefix + name }

// Pattern maps a client pattern to its upstream pattern.
func (n *Namespace) Pattern(pattern string) string { return n.escapedPrefix + pattern }

// Upstream maps a client name of the given kind to its upstream name.
func (n *Namespace) Upstream(kind upstream.Kind, name string) string {
	if kind == upstream.KindPattern {
		return n.Pattern(name)
	}
	return n.Channel(name)
}

// Strip maps an upstream channel name back to the client's name; ok is false
// for a channel outside the namespace, which must never reach the client.
func (n *Namespace) Strip(channel string) (string, bool) {
	if !strings.HasPrefix(channel, n.Prefix) {
		return "", false
	}
	return channel[len(n.Prefix):], true
}
