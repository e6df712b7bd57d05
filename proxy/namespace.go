package proxy

import (
	"strings"

	"github.com/pubgate/pubgate/upstream"
)

// Namespace maps one tenant's channel names to upstream names. In rewrite
// mode every channel and pattern a client names is stored upstream under
// the tenant's prefix, and names coming back are shown without it; because
// the prefix of a pattern is escaped, no pattern can match a channel
// outside the prefix. Names under the shared prefix (if any) are not
// rewritten: the policy decides who may use them. In enforce mode (empty
// prefix) names are used as written and the policy confines the tenant.
type Namespace struct {
	Tenant        string
	Prefix        string
	Shared        string
	escapedPrefix string
}

// NewNamespace returns the namespace of a tenant.
func NewNamespace(tenant, prefix, shared string) *Namespace {
	return &Namespace{Tenant: tenant, Prefix: prefix, Shared: shared, escapedPrefix: upstream.EscapeGlob(prefix)}
}

func (n *Namespace) isShared(name string) bool {
	return n.Shared != "" && strings.HasPrefix(name, n.Shared)
}

// UpstreamPrefix is the prefix of the tenant's names upstream ("" in
// enforce mode): the hub covers the patterns under it (fanout.PrefixedNames).
func (n *Namespace) UpstreamPrefix() string { return n.Prefix }

// Channel maps a client channel name to its upstream name.
func (n *Namespace) Channel(name string) string {
	if n.Prefix == "" || n.isShared(name) {
		return name
	}
	return n.Prefix + name
}

// Pattern maps a client pattern to its upstream pattern. A pattern is
// shared when every channel it can match is.
func (n *Namespace) Pattern(pattern string) string {
	if n.Prefix == "" || n.isShared(upstream.LiteralPrefix(pattern)) {
		return pattern
	}
	return n.escapedPrefix + pattern
}

// Upstream maps a client name of the given kind to its upstream name.
func (n *Namespace) Upstream(kind upstream.Kind, name string) string {
	if kind == upstream.KindPattern {
		return n.Pattern(name)
	}
	return n.Channel(name)
}

// Strip maps an upstream channel name back to the client's name; ok is false
// for a channel outside the namespace, which must never reach the client.
func (n *Namespace) Strip(channel string) (string, bool) { return strip(n, channel) }

// StripBytes is Strip for a channel in the engine's read buffer: the name
// it returns is a part of channel, not a copy.
func (n *Namespace) StripBytes(channel []byte) ([]byte, bool) { return strip(n, channel) }

func strip[T string | []byte](n *Namespace, channel T) (T, bool) {
	if n.Shared != "" && hasPrefix(channel, n.Shared) {
		return channel, true
	}
	if !hasPrefix(channel, n.Prefix) {
		var none T
		return none, false
	}
	return channel[len(n.Prefix):], true
}

// hasPrefix is strings.HasPrefix for either kind of name; the comparison
// does not copy.
func hasPrefix[T string | []byte](name T, prefix string) bool {
	return len(name) >= len(prefix) && string(name[:len(prefix)]) == prefix
}
