// Package proxy is pubgate's client side: the accept loop (PROXY protocol
// headers included), one session per connection speaking RESP2/RESP3, the
// command table, tenant quotas, authorization and audit of each command,
// and graceful shutdown. Sessions share upstream subscriptions through
// package fanout's hub.
package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Options wires a Server to its collaborators.
type Options struct {
	Limits    Limits
	Tenants   map[string]TenantOptions // by name
	Namespace NamespaceOptions
	Broker    upstream.Broker
	Auth      auth.Authenticator
	// Users looks up a configured user by name (the password table), so
	// that Reconfigure can refresh the identities of connected clients; nil:
	// identities are never refreshed.
	Users func(name string) (auth.Identity, bool)
	// Authorizer decides every connect, subscribe and publish; required.
	Authorizer Authorizer
	// Audit receives the audit records; nil: the operational log.
	Audit Auditor
	// AuditLevels say which allowed actions are recorded, per tenant.
	AuditLevels  audit.Levels
	DefaultUser  *auth.Identity // bound to connections before AUTH; nil: AUTH required
	LoginTimeout time.Duration  // unauthenticated connections are closed after it; 0: never
	Throttle     *auth.Throttle // failed-login throttle per user and per address and user; nil: none
	// CertificateIdentity maps a verified client certificate to an identity
	// (nil: certificates are not identities). With CertificateLogin the
	// certificate alone authenticates; either way, every AUTH on the
	// connection must be of the certificate's tenant.
	CertificateIdentity func(*x509.Certificate) (auth.Identity, error)
	CertificateLogin    bool
	UpstreamTimeout     time.Duration // 0: upstream.DefaultTimeout
	DrainTimeout        time.Duration // how long a closing session may take to flush; 0: DefaultDrainTimeout
	Version             string
	Logger              *zap.Logger
}

// Authorizer is what the proxy needs of a policy engine: a decision per
// request, denying on any failure of its own. It must not keep r, which
// the session reuses.
type Authorizer interface {
	Authorize(ctx context.Context, r *policy.Request) policy.Decision
}

// Server accepts client connections and runs their sessions.
type Server struct {
	limits          Limits
	namespace       NamespaceOptions
	tenants         atomic.Pointer[map[string]*tenant] // replaced by Reconfigure
	broker          upstream.Broker
	hub             *fanout.Hub
	auth            auth.Authenticator
	users           func(string) (auth.Identity, bool)
	authz           Authorizer
	audit           Auditor
	defaultUser     *auth.Identity
	loginTimeout    time.Duration
	throttle        *auth.Throttle
	certIdentity    func(*x509.Certificate) (auth.Identity, error)
	certLogin       bool
	upstreamTimeout time.Duration
	drainTimeout    time.Duration
	maxQueryBytes   int
	version         string
	log             *zap.Logger
	started         time.Time

	nextID          atomic.Int64
	slowDisconnects atomic.Int64
	disconnects     [numCloseCauses]atomic.Int64 // sessions ended, by cause
	stats           serverStats                  // for metrics (stats.go)

	// logins shares one check among the logins presenting the same
	// credentials at once, keyed by loginKeys (cmd_connection.go).
	logins    singleflight.Group
	loginKeys *auth.CredentialKeyer

	mu       sync.Mutex
	ln       net.Listener
	sessions map[*session]struct{}
	arriving int           // connections accepted whose session is not made yet
	closing  bool          // no more clients are accepted (shutdown.go)
	emptied  chan struct{} // closed once closing and no session is left
	wg       sync.WaitGroup

	shutdownOnce sync.Once
	released     chan struct{} // closed when parked sessions may end
}

// New builds a server; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Broker == nil || o.Auth == nil || o.Authorizer == nil {
		return nil, errors.New("proxy: a broker, an authenticator and an authorizer are required")
	}
	if err := o.Limits.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Audit == nil {
		o.Audit = logAuditor{o.Logger.Named("audit")}
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = upstream.DefaultTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	s := &Server{
		limits: o.Limits, broker: o.Broker, auth: o.Auth, users: o.Users, authz: o.Authorizer, audit: o.Audit, defaultUser: o.DefaultUser,
		loginTimeout: o.LoginTimeout, throttle: o.Throttle, loginKeys: auth.NewCredentialKeyer(),
		certIdentity: o.CertificateIdentity, certLogin: o.CertificateLogin,
		upstreamTimeout: o.UpstreamTimeout, drainTimeout: o.DrainTimeout,
		// One command may hold a payload plus a channel name and framing.
		maxQueryBytes: int(o.Limits.MaxPayloadBytes) + 64<<10,
		version:       o.Version, log: o.Logger, started: time.Now(),
		namespace: o.Namespace,
		sessions:  make(map[*session]struct{}),
		emptied:   make(chan struct{}),
		released:  make(chan struct{}),
	}
	s.setTenants(o.Tenants, o.AuditLevels)
	if d := o.DefaultUser; d != nil && s.tenant(d.Tenant) == nil {
		return nil, fmt.Errorf("proxy: default user %q has unknown tenant %q", d.User, d.Tenant)
	}
	s.hub = fanout.NewHub(o.Broker, o.UpstreamTimeout, o.Logger)
	s.hub.CoverPatternsOver(o.Limits.CoverPatternsOver)
	return s, nil
}

// Serve accepts connections on ln until Drain or Shutdown. Called after
// either (a node stopped as soon as it started), it closes ln and returns
// nil.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("proxy: accept: %w", err)
		}
		s.accept(conn)
	}
}

func (s *Server) accept(conn net.Conn) {
	s.mu.Lock()
	if s.closing || len(s.sessions)+s.arriving >= s.limits.MaxClients {
		full := !s.closing
		s.mu.Unlock()
		if full {
			go s.refuseFull(conn) // its write may wait for a TLS handshake
		} else {
			_ = conn.Close()
		}
		return
	}
	s.arriving++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sess := s.arrive(conn)
		if sess == nil {
			return
		}
		sess.serve()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.noteIfEmptyLocked()
		s.mu.Unlock()
	}()
}

// refuseFull turns a client away at limits.max_clients.
func (s *Server) refuseFull(conn net.Conn) {
	addr := socketAddr(conn).String()
	s.stats.refusedMaxClients.Add(1)
	s.log.Warn("refusing client: limits.max_clients reached", zap.String("addr", addr))
	_ = s.audit.Record(audit.Record{Time: time.Now(), Event: audit.EventConnect, Outcome: audit.Failure,
		ClientAddr: addr, Reason: "limits.max_clients reached"})
	// The write may first read a TLS handshake or a PROXY header: the
	// deadline bounds both, so a client that sends nothing holds nothing.
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write([]byte("-ERR max number of clients reached\r\n"))
	_ = conn.Close()
}

// arrive learns the client's address, from its PROXY protocol header where
// the listener takes one, and registers its session; it returns nil for a
// connection refused for its header, or arriving during shutdown.
func (s *Server) arrive(conn net.Conn) *session {
	addr, err := peerAddress(conn)
	if err != nil {
		peer := socketAddr(conn).String()
		s.log.Warn("refusing connection", zap.String("addr", peer), zap.Error(err))
		_ = s.audit.Record(audit.Record{Time: time.Now(), Event: audit.EventConnect, Outcome: audit.Failure,
			ClientAddr: peer, Reason: err.Error()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arriving--
	if err != nil || s.closing {
		_ = conn.Close()
		return nil
	}
	sess := newSession(s, s.nextID.Add(1), conn, addr)
	s.sessions[sess] = struct{}{}
	s.stats.accepted.Add(1)
	return sess
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Addr is the listening address, once Serve has started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) port() int {
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Clients is the number of connected clients.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// DisconnectAll ends every session, telling its client why in an error
// reply; the listener keeps accepting. It returns how many it ended. Used
// when the upstream stays unreachable (upstream.disconnect_clients_after),
// so that clients reconnect to a node that reaches it.
func (s *Server) DisconnectAll(reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.signalEnd(closeFor(causeUpstreamOutage, reason), "ERR pubgate: "+reason+"; closing the connection")
	}
	return len(s.sessions)
}

// SlowDisconnects counts clients disconnected for exceeding the output
// buffer limits.
func (s *Server) SlowDisconnects() int64 { return s.slowDisconnects.Load() }
