package proxy

import (
	"cmp"
	"context"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// errNoPerm is Redis 7.0's reply when ACLs deny a channel; pubgate sends it
// when the policy gives no reason of its own.
const errNoPerm = "NOPERM this user has no permissions to access one of the channels used as arguments"

// nopermReply is the error a denied request gets.
func nopermReply(d policy.Decision) string {
	if d.Reason == "" {
		return errNoPerm
	}
	return "NOPERM " + printable([]byte(d.Reason))
}

// login binds the session to id if its tenant's connection quota and the
// policy's connect decision admit it. A refusal is returned as the error
// reply owed to the client, and leaves the session as it was.
func (s *session) login(id auth.Identity) (refusal string) { return s.loginNoting(id, "") }

// loginNoting is login whose audit record adds note, what held the login
// back (the failed-login throttle), to its reason.
func (s *session) loginNoting(id auth.Identity, note string) (refusal string) {
	t := s.srv.tenant(id.Tenant)
	if t == nil {
		s.logger().Error("identity of an unknown tenant", zap.String("user", id.User), zap.String("tenant", id.Tenant))
		return "ERR pubgate: user has no tenant"
	}
	subject := s.subjectOf(id)
	switching := t != s.tenant
	if switching {
		if err := t.acquireConnection(); err != nil {
			t.stats.decision(policy.Connect, false)
			_ = s.recordLogin(id, audit.Failure, withNote(err.Error(), note), "")
			return quotaReply(err)
		}
	}
	refuse := func(reply string) string {
		if switching {
			t.releaseConnection()
		}
		return reply
	}
	d := s.ask(subject, policy.Connect, "", "")
	t.stats.decision(policy.Connect, d.Allow)
	if !d.Allow {
		_ = s.recordLogin(id, audit.Failure, withNote("denied by the policy: "+cmp.Or(d.Reason, "connect not allowed"), note), d.Revision)
		return refuse(nopermReply(d))
	}
	if s.recordLogin(id, audit.Success, note, d.Revision) != nil {
		return refuse(errAudit)
	}
	if switching && s.tenant != nil {
		s.tenant.releaseConnection()
	}
	s.bind(id, subject, t)
	if s.subscriptionCount() > 0 {
		s.revokeSubscriptions() // what the connection holds must be the new identity's to hold
	}
	return ""
}

// withNote appends note (what held a login back) to an audit reason.
func withNote(reason, note string) string {
	if note == "" || reason == "" {
		return reason + note
	}
	return reason + "; " + note
}

// subjectOf is id as the policy sees it on this connection.
func (s *session) subjectOf(id auth.Identity) *policy.Subject {
	return policy.NewSubject(policy.Subject{
		Tenant: id.Tenant, User: id.User, Roles: id.Roles, Method: string(id.Method), Claims: id.Claims, TLS: s.tlsInfo,
	})
}

// recordLogin records a login attempt of id.
func (s *session) recordLogin(id auth.Identity, outcome audit.Outcome, reason, revision string) error {
	return s.record(audit.Record{Event: audit.EventAuth, Outcome: outcome, Tenant: id.Tenant, User: id.User,
		AuthMethod: string(id.Method), Reason: reason, Revision: revision})
}

// recordAuthFailure records a login that failed before it had an identity.
func (s *session) recordAuthFailure(user, reason string) {
	_ = s.record(audit.Record{Event: audit.EventAuth, Outcome: audit.Failure, User: user, Reason: reason})
}

// decide asks the policy about one channel or pattern, as the client wrote
// it (name) and as it goes upstream (up).
func (s *session) decide(action policy.Action, name, up string) policy.Decision {
	return s.ask(s.subject, action, name, up)
}

// ask puts one question to the policy. The request is the session's own,
// reused, so that a PUBLISH does not allocate one; Authorize does not keep it.
func (s *session) ask(subject *policy.Subject, action policy.Action, name, up string) policy.Decision {
	s.query = s.request(subject, action, name, up)
	return s.srv.authz.Authorize(context.Background(), &s.query)
}

// request is the policy's question about one name.
func (s *session) request(subject *policy.Subject, action policy.Action, name, up string) policy.Request {
	r := policy.Request{Subject: subject, Action: action, Channel: name, Upstream: up, ClientAddr: s.addr, ClientName: s.name}
	if action == policy.PSubscribe {
		r.PatternPrefix = upstream.LiteralPrefix(up)
	}
	return r
}

// batchAuthorizer decides a command's names together (policy.Authorizer
// evaluates them concurrently).
type batchAuthorizer interface {
	AuthorizeAll(ctx context.Context, rs []policy.Request, ds []policy.Decision)
}

// decideAll asks the policy about every name of a command at once.
func (s *session) decideAll(action policy.Action, kind upstream.Kind, names [][]byte) []policy.Decision {
	ds := make([]policy.Decision, len(names))
	batch, ok := s.srv.authz.(batchAuthorizer)
	if !ok || len(names) == 1 {
		for i, n := range names {
			name := string(n)
			ds[i] = s.decide(action, name, s.tenant.ns.Upstream(kind, name))
		}
		return ds
	}
	rs := make([]policy.Request, len(names))
	for i, n := range names {
		name := string(n)
		rs[i] = s.request(s.subject, action, name, s.tenant.ns.Upstream(kind, name))
	}
	batch.AuthorizeAll(context.Background(), rs, ds)
	return ds
}

var subscribeAction = [3]policy.Action{policy.Subscribe, policy.PSubscribe, policy.SSubscribe}

// maySubscribe tells PUBSUB introspection whether the caller could
// subscribe to a name (up upstream): it answers only about those.
func (s *session) maySubscribe(kind upstream.Kind, name, up string) bool {
	return s.decide(subscribeAction[kind], name, up).Allow
}

// Recheck asks every session to re-check its subscriptions (after a policy
// change). Sessions do it on their own goroutine, between commands.
func (s *Server) Recheck() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.wake(wakeRecheck)
	}
}

// recheck drops the subscriptions the policy no longer allows. Each
// dropped one gets the unsubscribe confirmation Redis would send had the
// client asked, which every client library understands. It reports false
// when the identity itself may no longer connect: the session ends.
func (s *session) recheck() bool {
	if s.subject == nil {
		return true
	}
	d := s.decide(policy.Connect, "", "")
	if !d.Allow {
		s.recordRevoke(policy.Connect, "", d)
		return s.endNow(closeFor(causeRevoked, "the policy no longer admits this connection"))
	}
	s.revokeSubscriptions()
	return true
}

// revokeSubscriptions drops the subscriptions the policy does not allow the
// session's identity, as it is now, to hold: after a policy change, a
// reload that changed its roles, or a login as another user. Each is
// recorded as a revocation and confirmed as if the client had unsubscribed.
func (s *session) revokeSubscriptions() {
	var released []*fanout.Entry
	var confirms [len(subscribeAction)][]unsubscribed
	for kind := range s.subs {
		for name, mb := range s.subs[kind] {
			d := s.decide(subscribeAction[kind], name, mb.Entry().Name())
			if d.Allow {
				continue
			}
			s.recordRevoke(subscribeAction[kind], name, d)
			released = append(released, s.dropSubscription(upstream.Kind(kind), name, mb))
			confirms[kind] = append(confirms[kind], unsubscribed{name, s.countFor(upstream.Kind(kind))})
		}
	}
	s.releaseEntries(released)
	for kind := range confirms {
		s.confirmUnsubscribed(upstream.Kind(kind), confirms[kind])
	}
}

func (s *session) recordRevoke(action policy.Action, channel string, d policy.Decision) {
	_ = s.record(audit.Record{Event: audit.EventRevoke, Outcome: audit.Deny, Action: action.String(), Channel: channel,
		Reason: d.Reason, Revision: d.Revision})
}
