package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"go.uber.org/zap"
)

// redisVersion is the Redis release whose pub/sub behaviour pubgate
// implements (sharded pub/sub arrived in 7.0); clients read it from HELLO and
// INFO to pick features.
const redisVersion = "7.0.0"

func (s *session) cmdAuth(args [][]byte) {
	switch len(args) {
	case 2: // AUTH password: Redis's default user
		if s.authenticate("default", string(args[1])) {
			s.writeOK()
		}
	case 3:
		if s.authenticate(string(args[1]), string(args[2])) {
			s.writeOK()
		}
	default:
		s.writeError("ERR syntax error")
	}
}

// authenticate binds the session to the user's identity, or writes the
// error reply and keeps the previous identity. The login clock stands still
// meanwhile (holdLoginClock): in a reconnect storm the check may wait its
// turn at the throttle and at bcrypt.
func (s *session) authenticate(user, password string) bool {
	defer s.holdLoginClock()()
	id, throttled, ok := s.checkCredentials(auth.Credentials{Username: user, Password: password})
	if !ok {
		return false
	}
	if !s.admits(id.Tenant) {
		_ = s.recordLogin(id, audit.Failure, withNote("the client certificate is of another tenant", throttled), "")
		s.writeErrorf("ERR pubgate: the client certificate is of tenant %s; AUTH as a user of tenant %s refused", s.cert.Tenant, id.Tenant)
		return false
	}
	if s.subscriptionCount() > 0 && (s.tenant == nil || id.Tenant != s.tenant.name) {
		_ = s.recordLogin(id, audit.Failure, withNote("cannot switch to another tenant while subscribed", throttled), "")
		s.writeError("ERR pubgate: cannot switch to another tenant while subscribed; UNSUBSCRIBE or RESET first")
		return false
	}
	if refusal := s.loginNoting(id, throttled); refusal != "" {
		s.writeError(refusal)
		return false
	}
	s.logger().Debug("authenticated", zap.String("user", id.User), zap.String("tenant", id.Tenant))
	return true
}

// checkCredentials returns the identity the credentials prove, and why the
// login waited if the throttle held it back; or writes the error reply.
// Credentials the authenticator knows correct (auth.Verifier) need no turn
// at the throttle: they are no guess. Logins presenting the same
// credentials at once, a storm of one client's replicas, share one check
// and its turn; each failure among them still counts at the throttle.
func (s *session) checkCredentials(c auth.Credentials) (id auth.Identity, throttled string, ok bool) {
	if v, ok := s.srv.auth.(auth.Verifier); ok {
		if id, ok := v.Verified(c); ok {
			return id, "", true
		}
	}
	sum := s.srv.loginKeys.Sum(c)
	leader := false
	v, _, _ := s.srv.logins.Do(string(sum[:]), func() (any, error) {
		leader = true
		return s.check(c), nil
	})
	r := v.(checkResult)
	if !leader && errors.Is(r.err, auth.ErrInvalidCredentials) {
		s.srv.throttle.Fail(clientHost(s.addr), c.Username)
	}
	return s.answer(c.Username, r)
}

// checkResult is the outcome of one check, shared by the logins that
// presented the same credentials at once.
type checkResult struct {
	id  auth.Identity
	err error
	// turn says how the throttle held the check back; noTurn that it
	// refused it, no turn come within deadline.
	turn     auth.Turn
	noTurn   bool
	deadline time.Duration
}

// check waits for a turn at the failed-login throttle, until the login
// deadline at most, and checks the credentials. The check's own wait for
// the CPU (auth.Passwords' bcrypt queue) is not held to the deadline.
func (s *session) check(c auth.Credentials) checkResult {
	deadline := loginDeadline
	if lt := s.srv.loginTimeout; lt > 0 && lt < deadline {
		deadline = lt // a throttled login would wait longer than a client waits for its connection
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	turn, err := s.srv.throttle.Begin(ctx, clientHost(s.addr), c.Username)
	if err != nil {
		return checkResult{err: err, turn: turn, noTurn: true, deadline: deadline}
	}
	id, err := s.srv.auth.Authenticate(ctx, c)
	turn.Done(errors.Is(err, auth.ErrInvalidCredentials))
	return checkResult{id: id, err: err, turn: turn, deadline: deadline}
}

// answer turns a check's outcome into this session's identity, or its
// error reply and audit record.
func (s *session) answer(user string, r checkResult) (auth.Identity, string, bool) {
	if r.noTurn {
		s.refuseThrottled(user, r)
		return auth.Identity{}, "", false
	}
	var throttled string // why the login waited, for its audit record
	if r.turn.Throttled {
		s.srv.stats.loginsThrottled.Add(1)
		throttled = fmt.Sprintf("throttled %s after repeated failures", r.turn.Delay.Round(time.Millisecond))
	}
	switch {
	case errors.Is(r.err, auth.ErrInvalidCredentials):
		s.logger().Info("authentication failed", zap.String("user", user))
		s.recordAuthFailure(user, withNote("invalid credentials", throttled))
		s.writeError("WRONGPASS invalid username-password pair or user is disabled.")
		return auth.Identity{}, "", false
	case errors.Is(r.err, auth.ErrBusy):
		s.logger().Warn("login refused: too many logins wait for a password check", zap.String("user", user))
		s.recordAuthFailure(user, withNote("refused: too many logins waiting for a password check", throttled))
		s.writeError("ERR pubgate: too many logins are waiting for a password check; try again")
		return auth.Identity{}, "", false
	case r.err != nil:
		s.logger().Error("authentication unavailable", zap.String("user", user), zap.Error(r.err))
		s.recordAuthFailure(user, withNote("authentication unavailable: "+r.err.Error(), throttled))
		s.writeError("ERR pubgate: authentication is unavailable, try again later")
		return auth.Identity{}, "", false
	}
	id := r.id
	id.Roles = slices.Clone(id.Roles) // shared by the logins that shared the check
	return id, throttled, true
}

// refuseThrottled answers a login that got no turn at the throttle.
func (s *session) refuseThrottled(user string, r checkResult) {
	why := "too many logins for this user at once"
	if r.turn.Throttled {
		why = "repeated failed logins for this user"
	}
	s.srv.stats.loginsThrottleRefused.Add(1)
	s.logger().Info("login refused: no turn at the failed-login throttle before the deadline",
		zap.String("user", user), zap.String("why", why), zap.Duration("waited", r.turn.Delay))
	s.recordAuthFailure(user, fmt.Sprintf("throttled: no turn within %s (%s)", r.deadline, why))
	s.writeErrorf("ERR pubgate: login throttled (%s): no turn within %s; try again", why, r.deadline)
}

// loginDeadline bounds one AUTH: its turn at the throttle and the check.
const loginDeadline = 10 * time.Second

// clientHost is the address part of host:port, which the throttle counts
// failures under (with the user).
func clientHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// cmdHello is HELLO [protover [AUTH username password] [SETNAME clientname]].
func (s *session) cmdHello(args [][]byte) {
	proto := s.proto
	if len(args) > 1 {
		v, ok := parseInt(args[1])
		if !ok {
			s.writeError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != resp2 && v != resp3 {
			s.writeError("NOPROTO unsupported protocol version")
			return
		}
		proto = int32(v)
	}
	var user, password, name string
	var hasAuth, hasName bool
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "auth" && more >= 2:
			user, password, hasAuth = string(args[i+1]), string(args[i+2]), true
			i += 2
		case opt == "setname" && more >= 1:
			name, hasName = string(args[i+1]), true
			i++
		default:
			s.writeErrorf("ERR Syntax error in HELLO option '%s'", printable(args[i]))
			return
		}
	}
	if !hasAuth && s.ident == nil {
		s.writeError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if hasAuth && !s.authenticate(user, password) {
		return
	}
	if hasName {
		if !validClientName(name) {
			s.writeError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		s.name = name
	}
	s.proto = proto
	s.writeMap(7)
	s.writeBulk("server")
	s.writeBulk("redis")
	s.writeBulk("version")
	s.writeBulk(redisVersion)
	s.writeBulk("proto")
	s.writeInt(int64(proto))
	s.writeBulk("id")
	s.writeInt(s.id)
	s.writeBulk("mode")
	s.writeBulk("standalone")
	s.writeBulk("role")
	s.writeBulk("master")
	s.writeBulk("modules")
	s.writeArray(0)
}

func (s *session) cmdPing(args [][]byte) {
	if len(args) > 2 {
		s.writeError("ERR wrong number of arguments for 'ping' command")
		return
	}
	msg := ""
	if len(args) == 2 {
		msg = string(args[1])
	}
	switch {
	case s.inRESP2SubscribeMode(): // Redis answers in the shape of a message
		s.writeArray(2)
		s.writeBulk("pong")
		s.writeBulk(msg)
	case len(args) == 2:
		s.writeBulk(msg)
	default:
		s.writeSimple("PONG")
	}
}

func (s *session) cmdQuit([][]byte) {
	s.writeOK()
	s.quit = true
}

// cmdReset returns the connection to its state right after connecting. As
// in Redis it ends CLIENT REPLY OFF and answers, unless this very command
// was skipped.
func (s *session) cmdReset([][]byte) {
	skipped := s.mute && !s.replyOff
	s.unsubscribeAll()
	s.proto = resp2
	s.name, s.libName, s.libVer = "", "", ""
	s.replyOff, s.skipNext, s.mute = false, false, skipped
	s.bindDefaultUser()
	s.writeSimple("RESET")
}

func (s *session) cmdEcho(args [][]byte) { s.writeBulk(string(args[1])) }

func (s *session) cmdSelect(args [][]byte) {
	db, ok := parseInt(args[1])
	switch {
	case !ok:
		s.writeError("ERR value is not an integer or out of range")
	case db != 0:
		s.writeError("ERR pubgate is a pub/sub proxy: only database 0 exists (pub/sub does not depend on the database)")
	default:
		s.writeOK()
	}
}

// validClientName follows Redis: printable ASCII without spaces.
func validClientName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			return false
		}
	}
	return true
}
