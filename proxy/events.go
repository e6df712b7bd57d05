package proxy

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Event is a security-relevant fact about a session: an authorization
// decision, a quota refusal, a revoked subscription. It carries what an
// audit record needs.
type Event struct {
	Type     string // authz | quota | revoke
	Outcome  string // allow | deny
	Tenant   string
	User     string
	ClientID int64
	Addr     string
	Action   string // connect, subscribe, publish, …
	Channel  string // as the client wrote it
	Reason   string
	Revision string // policy revision that decided, if the policy did
}

// EventSink receives events. Emit is called on the session's goroutine and
// must not block it for long.
type EventSink interface {
	Emit(Event)
}

// logEvents writes events to the operational log: refusals at info,
// allowed actions at debug.
type logEvents struct{ log *zap.Logger }

func (l logEvents) Emit(e Event) {
	level := zapcore.InfoLevel
	if e.Outcome == "allow" {
		level = zapcore.DebugLevel
	}
	if ce := l.log.Check(level, "event: "+e.Type); ce != nil {
		ce.Write(zap.String("outcome", e.Outcome), zap.String("tenant", e.Tenant), zap.String("user", e.User),
			zap.Int64("client_id", e.ClientID), zap.String("addr", e.Addr), zap.String("action", e.Action),
			zap.String("channel", e.Channel), zap.String("reason", e.Reason), zap.String("policy_revision", e.Revision))
	}
}

// emit records an event about this session; the tenant and user default
// to the session's.
func (s *session) emit(e Event) {
	e.ClientID, e.Addr = s.id, s.addr
	if e.Tenant == "" && s.subject != nil {
		e.Tenant, e.User = s.subject.Tenant, s.subject.User
	}
	s.srv.events.Emit(e)
}
