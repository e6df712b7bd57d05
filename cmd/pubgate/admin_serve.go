package main

import (
	"context"
	"time"

	"github.com/pubgate/pubgate/admin"
	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// startAdmin starts the admin listener (metrics, health, readiness) when
// admin.address is set. The returned stop shuts it down; serve calls it
// last, so that readiness says "draining" for as long as shutdown lasts.
// stop is never nil, even with an error.
func startAdmin(c config.Admin, failClosed bool, srv *proxy.Server, passwords *auth.Passwords, broker upstream.Broker,
	authz *policy.Authorizer, auditor proxy.Auditor, log *zap.Logger) (stop func(), err error) {
	if !c.Enabled() {
		return func() {}, nil
	}
	src := admin.Sources{
		Version:        buildVersion(),
		Proxy:          srv.Stats,
		Policy:         authz.Stats,
		Passwords:      passwords.Stats,
		PolicyRevision: authz.Revision,
		Upstream:       broker.Health,
		Draining:       srv.Draining,
	}
	if l, ok := auditor.(*audit.Logger); ok {
		src.Audit, src.AuditFailClosed = l.Stats, failClosed
	}
	s := admin.New(admin.Options{Address: c.Address, Pprof: c.Pprof, Sources: src, Logger: log.Named("admin")})
	if err := s.Start(); err != nil {
		return func() {}, err
	}
	if !c.Loopback() {
		log.Warn("the admin endpoints are unauthenticated and served beyond loopback (admin.allow_public)", zap.String("admin.address", c.Address))
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("admin listener not closed cleanly", zap.Error(err))
		}
	}, nil
}
