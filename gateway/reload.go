package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A reload applies a configuration, loaded again, to the running node
// (SIGHUP): the settings config.WithLive names take effect at once, the
// others are reported as needing a restart. A file that does not load or
// validate, or whose policy does not compile, changes nothing. Every
// reload is logged and audited. Gateway.reloadMu serializes reloads and
// guards Gateway.running.

// reload applies next, loaded from file (if it came from one), or records
// loadErr, the reason it did not load; reloadMu is held.
func (g *Gateway) reload(ctx context.Context, file string, next *config.Config, loadErr error) error {
	if g.stopped {
		return ErrStopped
	}
	log := g.log
	if file != "" {
		log = log.With(zap.String("file", file))
	}
	applied, restart, err := []string(nil), []string(nil), loadErr
	if err == nil {
		applied, restart, err = g.apply(ctx, next)
	}
	rec := audit.Record{Time: time.Now(), Event: audit.EventConfigReload, Outcome: audit.Success}
	if err != nil {
		log.Error("configuration reload refused; the configuration in effect stays", zap.Error(err))
		rec.Outcome, rec.Reason = audit.Failure, "refused: "+err.Error()
	} else {
		log.Info("configuration reloaded", zap.Strings("applied", applied), zap.Strings("needs_restart", restart))
		rec.Reason = reloadSummary(applied, restart)
	}
	record(g.auditor, rec)
	return err
}

// apply applies next's live settings, all or none: it builds every part
// of the new state first (the password table, the compiled policy, the
// listener's certificate and client CAs read again from their files, the
// log level), and only once all of them succeeded swaps them in, one after the
// other without anything in between that can fail. The policy compiles
// once, here. It takes effect last, so that clients Reconfigure ends (a
// removed tenant or user) are told that reason rather than the policy's.
func (g *Gateway) apply(ctx context.Context, next *config.Config) (applied, restart []string, err error) {
	live := g.running.WithLive(next)
	if err := live.Validate(); err != nil {
		return nil, nil, fmt.Errorf("the new live settings do not fit the settings in effect until a restart: %w", err)
	}
	applyUsers, err := g.passwords.Stage(passwordUsers(live))
	if err != nil {
		return nil, nil, err
	}
	applyPolicy, err := g.authz.Stage(ctx, policySources(live))
	if err != nil {
		return nil, nil, err
	}
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(live.Log.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	// Last of the steps that can fail: a certificate staged is the file
	// loader's current one, which the periodic refresh serves anyway.
	applyTLS := func() {}
	if g.certs != nil {
		if applyTLS, err = g.certs.Stage(); err != nil {
			return nil, nil, err
		}
	}
	applyTLS()
	applyUsers()
	g.srv.Reconfigure(proxyTenants(live.Tenants), live.Audit.AuditLevels())
	applyPolicy()
	g.logLevel.SetLevel(level)
	applied, restart = config.Diff(g.running, live), config.Diff(live, next)
	g.running = live
	return applied, restart, nil
}

// reloadSummary is the audit record's reason: the keys, never values.
func reloadSummary(applied, restart []string) string {
	parts := []string{"applied: none"}
	if len(applied) > 0 {
		parts[0] = "applied: " + strings.Join(applied, ", ")
	}
	if len(restart) > 0 {
		parts = append(parts, "needs a restart: "+strings.Join(restart, ", "))
	}
	return strings.Join(parts, "; ")
}
