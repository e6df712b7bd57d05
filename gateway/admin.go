package gateway

import (
	"context"
	"time"

	"github.com/pubgate/pubgate/admin"
	"github.com/pubgate/pubgate/audit"
	"go.uber.org/zap"
)

// adminShutdownTimeout bounds the admin listener's own shutdown.
const adminShutdownTimeout = 5 * time.Second

// startAdmin starts the admin listener (metrics, health, readiness) when
// admin.address is set; nil otherwise. Shutdown stops it last, so that
// readiness says "draining" for as long as shutdown lasts.
func (g *Gateway) startAdmin() (*admin.Server, error) {
	c := g.cfg.Admin
	if !c.Enabled() {
		return nil, nil
	}
	src := admin.Sources{
		Version:        g.opts.Version,
		Proxy:          g.srv.Stats,
		Policy:         g.authz.Stats,
		Passwords:      g.passwords.Stats,
		PolicyRevision: g.authz.Revision,
		Upstream:       g.broker.Health,
		Draining:       g.srv.Draining,
	}
	if l, ok := g.auditor.(*audit.Logger); ok {
		src.Audit, src.AuditFailClosed = l.Stats, g.cfg.Audit.FailClosed
	}
	s := admin.New(admin.Options{Address: c.Address, Pprof: c.Pprof, Sources: src, Logger: g.log.Named("admin")})
	if err := s.Start(); err != nil {
		return nil, err
	}
	if !c.Loopback() {
		g.log.Warn("the admin endpoints are unauthenticated and served beyond loopback (admin.allow_public)", zap.String("admin.address", c.Address))
	}
	return s, nil
}

func (g *Gateway) stopAdmin() {
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	if err := g.admin.Shutdown(ctx); err != nil {
		g.log.Warn("admin listener not closed cleanly", zap.Error(err))
	}
}
