package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"slices"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"go.uber.org/zap"
)

// Reconfigure applies a reloaded configuration's tenants and audit levels.
// A tenant that stays keeps its counters and namespace (its prefix is not
// changed: a new prefix needs a restart) and takes its new quotas and levels; a
// new tenant admits logins at once. Every connected client is then checked
// on its own goroutine, between commands:
//   - one whose tenant is gone, or whose password user is gone or now of
//     another tenant, is told why and disconnected;
//   - one whose user's roles changed (a password user, or the user a client
//     certificate names) gets the new roles, and its subscriptions are
//     re-checked against the policy.
//
// A password change keeps connected clients, as in Redis. Quotas lowered
// below what a tenant holds refuse what comes next, and disconnect nobody.
func (s *Server) Reconfigure(tenants map[string]TenantOptions, levels audit.Levels) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setTenants(tenants, levels)
	for sess := range s.sessions {
		sess.wake(wakeReidentify)
	}
}

// setTenants replaces the tenant table; the caller holds srv.mu, or is New.
func (s *Server) setTenants(cfg map[string]TenantOptions, levels audit.Levels) {
	var old map[string]*tenant
	if p := s.tenants.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*tenant, len(cfg))
	for name, t := range cfg {
		if tn := old[name]; tn != nil {
			tn.configure(t.Quotas, levels)
			next[name] = tn
			continue
		}
		next[name] = newTenant(name, t, s.namespace, levels)
	}
	s.tenants.Store(&next)
}

// tenant is the named tenant of the configuration in effect, or nil.
func (s *Server) tenant(name string) *tenant { return (*s.tenants.Load())[name] }

// defaultIdentity is auth.default_user's identity as the configuration in
// effect has it: its roles may have changed since start.
func (s *Server) defaultIdentity() auth.Identity {
	d := *s.defaultUser
	if s.users != nil {
		if id, ok := s.users(d.User); ok && id.Tenant == d.Tenant {
			return id
		}
	}
	return d
}

// reidentify applies a reconfiguration to the session's identity (see
// Reconfigure); it reports whether the session goes on.
func (s *session) reidentify() bool {
	if s.ident == nil {
		return true
	}
	id := *s.ident
	if s.srv.tenant(id.Tenant) != s.tenant {
		return s.endNow(closeFor(causeRevoked, "tenant "+id.Tenant+" was removed from the configuration"))
	}
	switch id.Method {
	case auth.MethodPassword:
		if s.srv.users == nil {
			return true
		}
		u, known := s.srv.users(id.User)
		if !known || u.Tenant != id.Tenant {
			return s.endNow(closeFor(causeRevoked, "user "+id.User+" was removed from tenant "+id.Tenant))
		}
		id.Roles = u.Roles
	case auth.MethodCertificate:
		// The certificate maps to the same identity as before; the roles
		// a configured user lends it may have changed.
		fresh, err := s.srv.certIdentity(s.peerCertificate())
		if err != nil {
			return s.endNow(closeFor(causeRevoked, "the client certificate names no known identity"))
		}
		id.Roles = fresh.Roles
	default:
		return true // a token's roles are its own
	}
	if slices.Equal(id.Roles, s.ident.Roles) {
		return true
	}
	s.logger().Info("roles changed by a configuration reload", zap.Strings("roles", id.Roles))
	s.ident, s.subject = &id, s.subjectOf(id)
	return s.recheck()
}

// peerCertificate is the verified client certificate of an mtls identity.
func (s *session) peerCertificate() *x509.Certificate {
	return s.conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// endNow ends the session from its reader: the client is told why, and the
// disconnect is recorded as forced.
func (s *session) endNow(r closeReason) bool {
	s.logger().Info("closing connection: "+r.detail, zap.Stringer("cause", r.cause))
	s.forceEnd(r)
	s.mute = false
	s.writeError("ERR pubgate: " + r.detail + "; closing the connection")
	s.flushReplies()
	return false
}
