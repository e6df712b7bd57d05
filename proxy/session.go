package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"github.com/tidwall/redcon"
	"go.uber.org/zap"
)

// session is one client connection. Its reader goroutine owns every field;
// the hub touches only the outbox.
type session struct {
	srv     *Server
	id      int64
	conn    net.Conn
	addr    string
	created time.Time

	in        *requestReader
	out       *fanout.Outbox
	proto     int32 // RESP version the client speaks
	sentProto int32 // the version last handed to the outbox

	ident   *auth.Identity  // nil until authenticated
	subject *policy.Subject // the identity as the policy sees it
	tenant  *tenant         // the identity's tenant, counted in its quota
	cert    *auth.Identity  // what the client certificate names, if anything
	tlsInfo *policy.TLSInfo // nil for a plaintext connection
	query   policy.Request  // the question being put to the policy (see ask)
	// authenticated mirrors ident != nil for the login timer's goroutine.
	authenticated atomic.Bool
	loginTimer    *time.Timer
	loginEnds     time.Time // when loginTimer fires
	// identityGen counts identity changes, so that an expiry timer knows
	// whether the identity it was armed for is still the session's.
	identityGen atomic.Uint64
	expiryTimer *time.Timer
	// wakeups asks the reader, woken by a read deadline, to do something
	// for another goroutine (wakeEnd, wakeRecheck).
	wakeups atomic.Uint32
	// forcedEnd is why pubgate ended the session, if it did (see forceEnd).
	forcedEnd atomic.Pointer[closeReason]
	// slowConsumer is set when the output limits ended the session.
	slowConsumer atomic.Bool
	// parked is closed once the session stopped reading for shutdown, or
	// ended (shutdown.go).
	parked   chan struct{}
	parkOnce sync.Once

	name, libName, libVer string
	replyOff, skipNext    bool
	mute                  bool // replies of the current command are dropped
	quit                  bool

	reply []byte // replies not yet handed to the outbox
	subs  [3]map[string]*fanout.Membership
	// PUBLISHes read together, sent as one pipeline; pendingMute[i] says
	// whether the reply owed to pending[i] is dropped (CLIENT REPLY).
	pending     []upstream.Publication
	pendingMute []bool
	pubNames    map[string]publishName // see publishNames

	// view is what other connections' CLIENT LIST and KILL see of this
	// one; shown is the reader's copy of what it last put there, lastCmd
	// the last command noted, ran whether one ran since (cmd_client.go).
	view    clientView
	shown   clientFields
	lastCmd *string
	ran     bool
}

// newSession serves conn, whose client is at addr (see peerAddress).
func newSession(srv *Server, id int64, conn net.Conn, addr string) *session {
	s := &session{
		srv: srv, id: id, conn: conn, addr: addr, created: time.Now(),
		parked: make(chan struct{}),
	}
	s.in = newRequestReader(conn, srv.maxQueryBytes)
	ob := srv.limits.ClientOutputBuffer
	s.out = fanout.NewOutbox(conn, fanout.Limits{Hard: int(ob.HardLimit), Soft: int(ob.SoftLimit), SoftFor: ob.SoftFor},
		s.overflow, &srv.stats.clientWrites)
	s.proto, s.sentProto = resp2, resp2
	for i := range s.subs {
		s.subs[i] = make(map[string]*fanout.Membership)
	}
	s.startLoginClock()
	return s
}

// logger is the operational log with the session's client id and address.
// It is made when something is logged, which is rare: one kept per
// connection would cost every idle connection its encoded fields.
func (s *session) logger() *zap.Logger {
	return s.srv.log.With(zap.Int64("client_id", s.id), zap.String("addr", s.addr))
}

// bindDefaultUser returns the session to its state before AUTH: bound to
// its client certificate's identity (certificate login) or to
// auth.default_user if there is one, else unauthenticated with the login
// clock running.
func (s *session) bindDefaultUser() {
	s.unbind()
	switch {
	case s.cert != nil && s.srv.certLogin:
		if refusal := s.login(*s.cert); refusal != "" {
			s.logger().Info("client certificate identity not admitted", zap.String("reason", refusal))
		}
	case s.srv.defaultUser != nil && s.admits(s.srv.defaultUser.Tenant):
		if refusal := s.login(s.srv.defaultIdentity()); refusal != "" {
			s.logger().Info("default user not admitted", zap.String("reason", refusal))
		}
	}
	if s.ident == nil {
		s.startLoginClock()
	}
}

// startLoginClock starts the time an unauthenticated connection has to log
// in. It keeps running across RESETs before AUTH, so RESET cannot extend it.
func (s *session) startLoginClock() {
	if s.srv.loginTimeout > 0 && s.loginTimer == nil {
		s.armLoginClock(s.srv.loginTimeout)
	}
}

func (s *session) armLoginClock(left time.Duration) {
	s.loginEnds = time.Now().Add(left)
	s.loginTimer = time.AfterFunc(left, s.loginExpired)
}

// holdLoginClock stops the login clock while an AUTH is checked: a client
// that sent AUTH in time is not closed for the time pubgate takes to
// answer, which in a reconnect storm includes waiting for its turn at
// bcrypt (the TLS handshake and the time until AUTH still count). The
// returned function starts the clock again with the time that was left,
// unless the AUTH authenticated the connection.
func (s *session) holdLoginClock() (restart func()) {
	if s.loginTimer == nil || !s.loginTimer.Stop() {
		return func() {} // not running, or already expired
	}
	s.loginTimer = nil
	left := time.Until(s.loginEnds)
	return func() {
		if s.ident == nil && s.loginTimer == nil {
			s.armLoginClock(max(left, 0))
		}
	}
}

// admits reports whether the connection may act in tenant: a client
// certificate confines every identity of the connection to its tenant.
func (s *session) admits(tenant string) bool {
	return s.cert == nil || s.cert.Tenant == tenant
}

func (s *session) bind(id auth.Identity, subject *policy.Subject, t *tenant) {
	s.ident, s.subject, s.tenant = &id, subject, t
	s.authenticated.Store(true)
	s.in.setAuthenticated(true)
	s.stopLoginTimer()
	s.armExpiry(id.Expires)
}

// unbind forgets the identity and gives its tenant connection back.
func (s *session) unbind() {
	if s.tenant != nil {
		s.tenant.releaseConnection()
	}
	s.ident, s.subject, s.tenant = nil, nil, nil
	s.authenticated.Store(false)
	s.in.setAuthenticated(false)
	s.armExpiry(time.Time{})
}

// armExpiry ends the session when an identity that expires (a token's exp)
// does, unless the client authenticated again before; zero disarms.
func (s *session) armExpiry(at time.Time) {
	gen := s.identityGen.Add(1)
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
		s.expiryTimer = nil
	}
	if at.IsZero() {
		return
	}
	s.expiryTimer = time.AfterFunc(time.Until(at), func() {
		if s.identityGen.Load() == gen {
			s.endWith(closeFor(causeCredentialsExpired, "credentials expired"), "ERR pubgate: credentials expired; AUTH again before they do. Closing the connection")
		}
	})
}

func (s *session) stopLoginTimer() {
	if s.loginTimer != nil {
		s.loginTimer.Stop()
		s.loginTimer = nil
	}
}

// loginExpired runs on the login timer's goroutine.
func (s *session) loginExpired() {
	if !s.authenticated.Load() {
		s.endWith(closeFor(causeLoginTimeout, "no AUTH in time"), fmt.Sprintf("ERR pubgate: no AUTH within %s; closing the connection", s.srv.loginTimeout))
	}
}

// endWith ends the session from a timer's goroutine: it queues the error
// reply that says why and wakes the reader, which ends the session as at
// shutdown.
func (s *session) endWith(r closeReason, reply string) {
	s.logger().Info("closing connection: "+r.detail, zap.Stringer("cause", r.cause))
	s.signalEnd(r, reply)
}

// signalEnd is endWith without the log line, for many sessions at once.
func (s *session) signalEnd(r closeReason, reply string) {
	s.forceEnd(r)
	s.out.PushNotice(redcon.AppendError(nil, reply))
	s.wake(wakeEnd)
}

const (
	wakeEnd        = 1 << iota // end the session
	wakePark                   // stop reading until the server releases the session, then end
	wakeReidentify             // apply a new configuration to the identity (Server.Reconfigure)
	wakeRecheck                // re-check subscriptions against a new policy
)

// wake asks the reader goroutine, from any goroutine, to act: the flag is
// set before the read deadline, so the reader, which clears the deadline
// before the flags, never misses one.
func (s *session) wake(flag uint32) {
	s.wakeups.Or(flag)
	_ = s.conn.SetReadDeadline(time.Now())
}

// woken handles a read that failed because of wake; it reports whether the
// session goes on. A deadline error that no wake explains ends it.
func (s *session) woken(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	flags := s.wakeups.Swap(0) // none: a wake an earlier wakeup already handled
	switch {
	case flags&wakeEnd != 0:
		return false
	case flags&wakePark != 0:
		s.park()
		return false
	case flags&wakeReidentify != 0 && !s.reidentify():
		return false
	case flags&wakeRecheck != 0:
		return s.recheck()
	}
	return true
}

// overflow is the outbox's limit callback: it may run on a goroutine that
// fans out (an upstream receive loop), so it touches no session state and only closes the connection; the reader
// then tears the session down. The close is abortive: what the kernel still
// holds for a client that does not read would be lost anyway, and may be
// megabytes. It closes the TCP connection under TLS: closing the TLS one
// would first try to send close_notify to a client that does not read,
// blocking the hub's fan-out for seconds.
func (s *session) overflow(reason string) {
	s.logger().Warn("disconnecting slow client", zap.String("reason", reason))
	s.forceEnd(closeFor(causeSlowConsumer, "slow consumer: "+reason))
	s.slowConsumer.Store(true)
	s.srv.slowDisconnects.Add(1)
	conn := netConn(s.conn)
	if tc, ok := socketConn(conn).(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// serve runs the session until the client leaves or the server stops.
func (s *session) serve() {
	err := s.handshake()
	s.recordConnect(err)
	if err == nil {
		s.bindDefaultUser() // a client certificate may bind, or exclude the default user
		err = s.readLoopGuarded()
		r := s.endReason(err)
		s.srv.disconnects[r.cause].Add(1)
		_ = s.record(audit.Record{Event: audit.EventDisconnect, Reason: r.detail, Forced: r.cause.byPubgate()})
	}
	s.markParked()
	s.stopLoginTimer()
	s.armExpiry(time.Time{})
	if err != nil && !isDisconnect(err) {
		s.logger().Debug("closing connection", zap.Error(err))
	}
	s.unsubscribeAll()
	s.countEnd()
	s.unbind()
	s.out.Close()
	// Let the writer deliver what the client was already sent (QUIT's +OK,
	// a protocol error), but never wait on a client that does not read.
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.drainTimeout))
	<-s.out.Stopped()
	_ = s.conn.Close()
}

// recordConnect records a new connection, or why its TLS handshake (or
// its certificate) failed.
func (s *session) recordConnect(handshake error) {
	r := audit.Record{Event: audit.EventConnect, Outcome: audit.Success}
	if handshake != nil {
		r.Outcome, r.Reason = audit.Failure, handshake.Error()
	}
	if s.tlsInfo != nil {
		r.TLSVersion, r.TLSSubject = s.tlsInfo.Version, s.tlsInfo.Subject
	}
	_ = s.record(r)
}

// handshake completes TLS before the first command, so that a client
// certificate can name the identity. An identity that cannot be used ends
// the connection: the client presented it on purpose.
func (s *session) handshake() error {
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return refusePlaintext(err)
	}
	state := tc.ConnectionState()
	s.tlsInfo = tlsInfo(state)
	certs := state.PeerCertificates
	if len(certs) == 0 || s.srv.certIdentity == nil {
		return nil
	}
	id, err := s.srv.certIdentity(certs[0])
	if err == nil && s.srv.tenant(id.Tenant) == nil {
		err = fmt.Errorf("unknown tenant %q", id.Tenant)
	}
	if err != nil {
		s.logger().Info("client certificate names no usable identity", zap.String("subject", certs[0].Subject.String()), zap.Error(err))
		s.writeError("ERR pubgate: the client certificate names no known identity")
		s.flushReplies()
		return err
	}
	if id.Expires.IsZero() || certs[0].NotAfter.Before(id.Expires) {
		id.Expires = certs[0].NotAfter
	}
	s.cert = &id
	return nil
}

// errPlaintextOnTLS is the answer to a client that sent a Redis command in
// clear on the TLS port (redis-cli without --tls), which would otherwise
// see only "I/O error" as the connection closes.
const errPlaintextOnTLS = "-ERR pubgate: this port requires TLS; connect with TLS (redis-cli --tls)\r\n"

// refusePlaintext answers a failed handshake whose first bytes were a
// Redis command (RESP's '*' or an inline command's letter) rather than a
// TLS record: crypto/tls hands back the raw connection for exactly this
// (tls.RecordHeaderError.Conn), as net/http does for HTTP on an HTTPS
// port. The error stays a handshake failure, for the audit log.
func refusePlaintext(err error) error {
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) || rh.Conn == nil {
		return err
	}
	if b := rh.RecordHeader[0]; b != '*' && !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z') {
		return err
	}
	_ = rh.Conn.SetDeadline(time.Now().Add(time.Second))
	if _, werr := io.WriteString(rh.Conn, errPlaintextOnTLS); werr == nil {
		lingeringClose(rh.Conn)
	}
	return fmt.Errorf("plaintext Redis command on the TLS port: %w", err)
}

// lingeringClose ends the sending side and reads what the client still
// sends (the rest of its command) until it closes or the deadline: closing
// with unread input would reset the connection, and the client could lose
// the reply before reading it.
func lingeringClose(conn net.Conn) {
	if cw, ok := socketConn(conn).(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
}

// tlsInfo describes a connection's TLS for the policy.
func tlsInfo(state tls.ConnectionState) *policy.TLSInfo {
	info := &policy.TLSInfo{Version: strings.TrimPrefix(tls.VersionName(state.Version), "TLS ")}
	if certs := state.PeerCertificates; len(certs) > 0 {
		info.Subject = certs[0].Subject.String()
		info.DNSSANs = certs[0].DNSNames
		for _, u := range certs[0].URIs {
			info.URISANs = append(info.URISANs, u.String())
		}
	}
	return info
}

// handshakeTimeout bounds a client that never finishes the TLS handshake.
func (s *session) handshakeTimeout() time.Duration {
	if s.srv.loginTimeout > 0 {
		return s.srv.loginTimeout
	}
	return 10 * time.Second
}

// readLoopGuarded runs readLoop, turning a panic (a bug) into the end of
// this one connection rather than of the process.
func (s *session) readLoopGuarded() (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger().Error("session panicked; connection closed", zap.Any("panic", r), zap.Stack("stack"))
			s.forceEnd(closeFor(causeInternalError, "internal error"))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.readLoop()
}

// readLoop runs the client's commands until it quits or the connection
// ends. Replies are handed to the outbox whenever the input is exhausted, so
// a pipeline is answered with few writes.
func (s *session) readLoop() error {
	for !s.quit {
		args, ok, err := s.in.next()
		if ok {
			s.handle(args)
			// Hand over large replies as they grow, so that the output
			// limits apply before a pipeline of them is built in memory.
			if len(s.reply) >= replyFlushBytes && !s.flushReplies() {
				return errOutputClosed
			}
			continue
		}
		s.flushPublishes()
		if err == nil {
			if !s.flushReplies() {
				return errOutputClosed
			}
			err = s.in.fill()
			if err == nil || s.woken(err) {
				continue
			}
		}
		if isProtocolError(err) {
			s.mute = s.replyOff // as in Redis, CLIENT REPLY OFF silences this too
			s.writeError("ERR " + err.Error())
			s.flushReplies()
		}
		return err
	}
	s.flushPublishes()
	s.flushReplies()
	return nil
}

// isProtocolError tells a request the client got wrong (owed an error reply)
// from the connection ending.
func isProtocolError(err error) bool {
	var ours protocolError
	return errors.As(err, &ours)
}

// errOutputClosed ends a session whose outbox was closed (output limit).
var errOutputClosed = errors.New("output closed")

// replyFlushBytes is how many reply bytes a session accumulates before
// handing them to its outbox in the middle of a pipeline.
const replyFlushBytes = 64 << 10

func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errOutputClosed) || isProtocolError(err)
}

// flushReplies hands the replies accumulated so far, and the protocol they
// were written in, to the outbox. It reports false once the outbox refuses
// them (the client is being disconnected).
func (s *session) flushReplies() bool {
	s.showClient()
	if len(s.reply) == 0 && s.proto == s.sentProto {
		return true
	}
	ok := s.out.Push(s.reply, s.proto)
	s.reply, s.sentProto = nil, s.proto
	return ok
}

// Reply helpers: every reply goes through them so that CLIENT REPLY OFF|SKIP
// can drop it.

func (s *session) writeOK() { s.writeSimple("OK") }

func (s *session) writeSimple(msg string) {
	if !s.mute {
		s.reply = redcon.AppendString(s.reply, msg)
	}
}

func (s *session) writeError(msg string) {
	if !s.mute {
		s.reply = redcon.AppendError(s.reply, msg)
	}
}

func (s *session) writeErrorf(format string, args ...any) { s.writeError(fmt.Sprintf(format, args...)) }

func (s *session) writeInt(n int64) {
	if !s.mute {
		s.reply = redcon.AppendInt(s.reply, n)
	}
}

func (s *session) writeBulk(b string) {
	if !s.mute {
		s.reply = redcon.AppendBulkString(s.reply, b)
	}
}

func (s *session) writeArray(n int) {
	if !s.mute {
		s.reply = redcon.AppendArray(s.reply, n)
	}
}

func (s *session) writeMap(n int) {
	if !s.mute {
		s.reply = appendMapHeader(s.reply, s.proto, n)
	}
}

func (s *session) writeNull() {
	if !s.mute {
		s.reply = appendNull(s.reply, s.proto)
	}
}

func (s *session) writeStrings(list []string) {
	s.writeArray(len(list))
	for _, v := range list {
		s.writeBulk(v)
	}
}

// upstreamCtx bounds one upstream operation made for this client.
func (s *session) upstreamCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.srv.upstreamTimeout)
}
