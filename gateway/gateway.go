// Package gateway is one running pubgate node: it builds every part from a
// configuration (New), opens the listeners (Start), applies a new
// configuration all or nothing (Reload), and stops in order (Drain, then
// Shutdown: connections end once they received what was acknowledged, the
// audit log is flushed and sealed, the upstream is closed, the admin
// listener goes last). cmd/pubgate only parses flags and turns signals into
// these calls; tests start nodes through it and read their addresses from
// it.
//
// Start-up order: logger → what Check also builds (policy, passwords,
// certificate and token authenticators, upstream TLS; provision.go) →
// upstream broker → audit log → proxy (New); client listener → admin
// listener → policy watcher → serving, outage watcher (Start). Shutdown
// runs it backwards, but the admin listener stops last, so that readiness
// says "draining" for as long as the node still holds clients.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/pubgate/pubgate/admin"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/pubgate/pubgate/upstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Options are what the process gives a node besides its configuration.
type Options struct {
	// Version is reported by the admin endpoints and the HELLO reply.
	Version string
	// LogOutput receives the operational log (nil: os.Stderr).
	LogOutput io.Writer
	// AuditStream receives the audit log when audit.sink is stdout (nil:
	// os.Stdout).
	AuditStream io.Writer
}

// Gateway is one pubgate node. Start is called once, after New, and
// returns before any other method is called; those are then safe to call
// from several goroutines.
type Gateway struct {
	cfg       *config.Config // as started
	opts      Options
	log       *zap.Logger
	logLevel  zap.AtomicLevel
	broker    upstream.Broker
	auditor   proxy.Auditor
	closeLog  func(context.Context) // flushes and seals the audit log
	authz     *policy.Authorizer
	passwords *auth.Passwords
	srv       *proxy.Server

	listener net.Listener
	certs    *ptls.Source // nil for a plaintext listener
	admin    *admin.Server
	life     context.Context    // the node's background work: key-set refreshes, watchers
	endLife  context.CancelFunc // ends it, in Shutdown
	failed   chan error         // what serving ended with, when not by Shutdown

	reloadMu sync.Mutex
	// running is the configuration in effect, under reloadMu: cfg, with
	// the live settings of every reload since.
	running     *config.Config
	stopped     bool // under reloadMu: Shutdown began, reloads are refused
	stopOnce    sync.Once
	releaseOnce sync.Once
}

// New builds a node from cfg, which config.Load validated: nothing listens
// yet. ctx bounds what building does (loading a policy bundle); the node's
// background work (a JWKS URL's fetches, watchers) lasts until Shutdown.
// On error, whatever was built is closed again.
func New(ctx context.Context, cfg *config.Config, o Options) (_ *Gateway, err error) {
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	if o.AuditStream == nil {
		o.AuditStream = os.Stdout
	}
	g := &Gateway{cfg: cfg, running: cfg, opts: o, failed: make(chan error, 1)}
	g.life, g.endLife = context.WithCancel(context.WithoutCancel(ctx))
	if g.log, g.logLevel, err = newLogger(cfg.Log, o.LogOutput); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			g.release(context.Background())
		}
	}()
	for _, w := range cfg.Warnings() {
		g.log.Warn(w)
	}
	setRedisLogger.Do(func() { redis.SetLogger(newRedisLogger(g.log.Named("go-redis"), redisLogRepeat)) })
	p, err := provision(ctx, g.life, cfg, g.log, false)
	if err != nil {
		return nil, err
	}
	g.authz, g.passwords = p.authz, p.passwords
	if g.broker, err = openBroker(cfg.Upstream, p.upstreamTLS, g.log.Named("upstream")); err != nil {
		return nil, err
	}
	if g.auditor, g.closeLog, err = openAudit(cfg.Audit, o.AuditStream, g.log); err != nil {
		return nil, err
	}
	if g.srv, err = g.newProxy(p); err != nil {
		return nil, err
	}
	g.authz.OnReload(func(r policy.ReloadResult) {
		recordReload(g.auditor, r)
		if r.Changed() {
			g.srv.Recheck()
		}
	})
	return g, nil
}

// Start opens the client and admin listeners and starts serving, watching
// the upstream's health and, with policy.watch, the policy files. It
// returns once the listeners are open. If it fails, everything New built
// is closed again.
func (g *Gateway) Start() (err error) {
	defer func() {
		if err != nil {
			g.release(context.Background())
		}
	}()
	cfg := g.cfg
	if g.listener, g.certs, err = listen(cfg.Listen, g.log); err != nil {
		return err
	}
	g.log.Info("pubgate listening", zap.String("version", g.opts.Version), zap.Stringer("addr", g.listener.Addr()),
		zap.Bool("tls", !cfg.Listen.Plaintext),
		zap.String("upstream", cfg.Upstream.Describe()), zap.Int("tenants", len(cfg.Tenants)))
	if cfg.Auth.DefaultUser != "" {
		g.log.Warn("connections without AUTH act as a configured user", zap.String("auth.default_user", cfg.Auth.DefaultUser))
	}
	if g.admin, err = g.startAdmin(); err != nil {
		return err
	}
	if cfg.Policy.Watch && cfg.Policy.Configured() {
		if err := g.authz.Watch(g.life); err != nil {
			return fmt.Errorf("policy: watch: %w", err)
		}
	}
	go func() {
		if err := g.srv.Serve(g.listener); err != nil {
			g.failed <- err
		}
	}()
	go disconnectOnOutage(g.life, g.broker.Health, cfg.Upstream.DisconnectClientsAfter, g.srv, g.log.Named("upstream"))
	return nil
}

// Addr is the client listener's address (nil before Start).
func (g *Gateway) Addr() net.Addr {
	if g.listener == nil {
		return nil
	}
	return g.listener.Addr()
}

// AdminAddr is the admin listener's address (nil without admin.address,
// or before Start).
func (g *Gateway) AdminAddr() net.Addr {
	if g.admin == nil {
		return nil
	}
	return g.admin.Addr()
}

// Failed delivers the error serving stopped with, if it stops for any
// reason other than Drain or Shutdown (the listener failing).
func (g *Gateway) Failed() <-chan error { return g.failed }

// Logger is the node's operational log.
func (g *Gateway) Logger() *zap.Logger { return g.log }

// Drain refuses new clients and serves the connected ones for
// listen.drain_period, or until they have all left, or until ctx is done.
func (g *Gateway) Drain(ctx context.Context) {
	period := g.cfg.Listen.DrainPeriod
	g.log.Info("draining: new clients are refused, connected ones are served until they leave or the period ends",
		zap.Duration("listen.drain_period", period), zap.Int("clients", g.srv.Clients()))
	g.srv.StopAccepting()
	_ = g.listener.Close() // now, even if serving has not begun yet
	g.srv.Drain(ctx, period)
}

// Shutdown stops the node: every connection is closed once it received
// what it was told was done (until ctx is done), then the audit log is
// flushed and sealed, the upstream closed and the admin listener last.
// Calls after the first return nil.
func (g *Gateway) Shutdown(ctx context.Context) (err error) {
	g.stopOnce.Do(func() {
		g.reloadMu.Lock() // waits for a reload in progress
		g.stopped = true
		g.reloadMu.Unlock()
		g.log.Info("shutting down: closing every connection once it received what was acknowledged", zap.Int("clients", g.srv.Clients()))
		if err = g.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			err = nil // the connections still open were closed; that is what the deadline is for
		}
		g.release(ctx)
		g.log.Info("stopped")
		_ = g.log.Sync()
	})
	return err
}

// release stops and closes every part that was built, in shutdown order,
// once. The audit log gets listen.shutdown_timeout of its own to flush,
// even if ctx is done: what was accepted is written if the sink allows.
func (g *Gateway) release(ctx context.Context) {
	g.releaseOnce.Do(func() { g.releaseParts(ctx) })
}

func (g *Gateway) releaseParts(ctx context.Context) {
	if g.listener != nil {
		_ = g.listener.Close() // already closed by a Shutdown; not by a failed Start
	}
	g.endLife()
	if g.closeLog != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Listen.ShutdownTimeout)
		g.closeLog(actx)
		cancel()
	}
	if g.broker != nil {
		_ = g.broker.Close() // it reports nothing a stopping node could act on
	}
	if g.admin != nil {
		g.stopAdmin()
	}
}

// ErrStopped refuses a reload once Shutdown has begun.
var ErrStopped = errors.New("gateway: shutting down; the configuration is no longer reloaded")

// Reload applies next, a configuration loaded and validated anew, to the
// running node, all or nothing (see apply), and audits the
// outcome; a refused configuration changes nothing.
func (g *Gateway) Reload(ctx context.Context, next *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.reload(ctx, "", next, nil)
}

// ReloadFile loads the configuration file at path and applies it as
// Reload does; a file that does not load is refused and audited too.
func (g *Gateway) ReloadFile(ctx context.Context, path string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	next, err := config.Load(path)
	return g.reload(ctx, path, next, err)
}
