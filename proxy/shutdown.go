package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// A graceful stop has two steps. Drain stops accepting and keeps serving
// the connected clients for a while, so that a load balancer moves new
// clients elsewhere and clients can leave on their own. Shutdown then ends
// every session without losing what a client was told was done.

// Drain closes the listener and returns once period has passed, every
// client has left, or ctx is done, whichever comes first. Connected clients
// are served as before meanwhile. Safe to call more than once.
func (s *Server) Drain(ctx context.Context, period time.Duration) {
	s.StopAccepting()
	if period <= 0 {
		return
	}
	t := time.NewTimer(period)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.emptied:
	case <-ctx.Done():
	}
}

// Draining reports whether the server stopped accepting clients (Drain or
// Shutdown), for readiness.
func (s *Server) Draining() bool { return s.isClosing() }

// StopAccepting makes the server refuse new clients, as Drain does first,
// without waiting: a listener it has not yet been given to Serve may then
// be closed by its owner, and Serve returns nil for it. Safe to call more
// than once.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing = true
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.noteIfEmptyLocked()
}

// noteIfEmptyLocked closes emptied once no session is left after the
// listener closed; s.mu is held.
func (s *Server) noteIfEmptyLocked() {
	if s.closing && len(s.sessions) == 0 {
		select {
		case <-s.emptied:
		default:
			close(s.emptied)
		}
	}
}

// Shutdown stops accepting and ends every session, in an order that loses
// nothing acknowledged:
//  1. each session stops reading once it has answered the commands it read
//     (a PUBLISH it acknowledged is one the engine took);
//  2. what the engine had delivered to this node by then reaches the
//     subscribers' outboxes (upstream.Broker.Sync: the engine hands its
//     messages to the hub, which fans out at once);
//  3. each session closes once its outbox is written (or after the drain
//     timeout), its disconnect recorded as forced by the shutdown.
//
// When ctx is done first, the remaining connections are closed. Shutdown
// does not close the broker. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	s.shutdownOnce.Do(func() { s.endSessions(ctx) })
	return s.awaitSessions(ctx)
}

func (s *Server) endSessions(ctx context.Context) {
	defer close(s.released)
	defer s.forceEndAll() // whichever step ctx cut short
	for _, parked := range s.parkSessions() {
		select {
		case <-parked:
		case <-ctx.Done():
			return
		}
	}
	if err := s.broker.Sync(ctx); err != nil {
		s.log.Warn("shutdown: messages still in flight from the upstream engine may not reach local subscribers", zap.Error(err))
	}
}

// forceEndAll ends every session: the server is shutting down.
func (s *Server) forceEndAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.forceEnd(closeFor(causeShutdown, "server shutting down"))
	}
}

// parkSessions asks every session to stop reading, and returns what closes
// once each has (or has ended).
func (s *Server) parkSessions() []chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	parked := make([]chan struct{}, 0, len(s.sessions))
	for sess := range s.sessions {
		sess.wake(wakePark)
		parked = append(parked, sess.parked)
	}
	return parked
}

func (s *Server) awaitSessions(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			_ = sess.conn.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// park stops the session's reading for shutdown until the server releases
// it, after the hub delivered what was acknowledged; the session then ends.
// Its writer goes on meanwhile.
func (s *session) park() {
	s.markParked()
	<-s.srv.released
}

func (s *session) markParked() { s.parkOnce.Do(func() { close(s.parked) }) }
