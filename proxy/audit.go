package proxy

import (
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/policy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Auditor receives the audit log's records. Record is called on a
// session's goroutine and must not wait on a disk. An error means the log
// could not take a record that admits the client to something (a
// fail-closed log that cannot write): the action is refused.
type Auditor interface {
	Record(audit.Record) error
}

// errAudit is the reply to an action refused because it could not be
// recorded.
const errAudit = "ERR pubgate: the audit log cannot be written; new logins, subscriptions and publishes are refused until it can"

// logAuditor writes records to the operational log when no audit log is
// configured: refusals at info, the rest at debug.
type logAuditor struct{ log *zap.Logger }

func (l logAuditor) Record(r audit.Record) error {
	level := zapcore.DebugLevel
	if r.Outcome == audit.Deny || r.Outcome == audit.Failure || r.Forced {
		level = zapcore.InfoLevel
	}
	if ce := l.log.Check(level, "audit: "+string(r.Event)); ce != nil {
		ce.Write(zap.Inline(&r))
	}
	return nil
}

// auditLevels is the level of each action of one tenant, resolved once.
type auditLevels [policy.SPublish + 1]audit.Level

func resolveLevels(levels audit.Levels, tenant string) auditLevels {
	var l auditLevels
	for a := policy.Subscribe; a <= policy.SPublish; a++ {
		l[a] = levels.For(tenant, a.String())
	}
	return l
}

// record completes r with the session's connection (and, unless r names
// an identity of its own, the session's) and hands it to the audit log.
func (s *session) record(r audit.Record) error {
	r.Time = time.Now()
	r.ClientID, r.ClientAddr, r.ClientName = s.id, s.addr, s.name
	if r.User == "" && r.Tenant == "" && s.ident != nil {
		r.Tenant, r.User, r.AuthMethod = s.ident.Tenant, s.ident.User, string(s.ident.Method)
	}
	return s.srv.audit.Record(r)
}

// recordDecision records an authorization decision about a channel: every
// denial, and allowed actions at the tenant's level. It returns false if
// an allowed action could not be recorded and must be refused.
func (s *session) recordDecision(action policy.Action, channel string, d policy.Decision, payload []byte) bool {
	s.tenant.stats.decision(action, d.Allow)
	level := s.tenant.auditLevel(action)
	outcome := audit.Allow
	if !d.Allow {
		outcome, level = audit.Deny, max(level, audit.Metadata)
	}
	if level == audit.None {
		return true
	}
	r := audit.Record{Event: audit.EventAuthz, Outcome: outcome, Action: action.String(), Channel: channel,
		Reason: d.Reason, Revision: d.Revision}
	if action == policy.Publish || action == policy.SPublish {
		r.SetPayload(level, payload)
	}
	return s.record(r) == nil || !d.Allow
}

// endReason says why a session ended, and whether pubgate ended it, for
// the disconnect record: the reason another goroutine gave (slow consumer,
// shutdown, a timer), else what the read loop returned.
func (s *session) endReason(err error) closeReason {
	if r := s.forcedEnd.Load(); r != nil {
		return *r
	}
	switch {
	case err == nil:
		return closeFor(causeQuit, "client sent QUIT")
	case isProtocolError(err):
		return closeFor(causeProtocolError, "protocol error: "+err.Error())
	case isDisconnect(err):
		return closeFor(causeClientClosed, "client closed the connection")
	default:
		return closeFor(causeConnectionError, "connection error: "+err.Error())
	}
}

// forceEnd notes why pubgate ends the session; the first reason given wins.
func (s *session) forceEnd(r closeReason) {
	s.forcedEnd.CompareAndSwap(nil, &r)
}
