package auth

import (
	"context"
	"sync"
	"time"
)

// Throttle limits failed logins per client address: after MaxFailures
// failures within Window, the address is locked out for Lockout, and its
// logins are refused without checking a password (sparing the CPU that a
// bcrypt comparison costs). Only the offending address is affected.
// Failures expire with their window only: a successful login does not reset
// them, or an attacker holding one account could guess at the others.
type Throttle struct {
	maxFailures     int
	window, lockout time.Duration
	now             func() time.Time

	mu    sync.Mutex
	addrs map[string]*failures
}

type failures struct {
	count       int
	pending     int       // logins being checked now, each a possible failure
	since       time.Time // start of the counting window
	lockedUntil time.Time
	finished    chan struct{} // closed (and replaced) when an attempt finishes
}

// maxTrackedAddrs bounds the table; when it is full, entries that no longer
// matter are dropped, and if none can be, a new address is not tracked.
const maxTrackedAddrs = 100_000

// NewThrottle returns a throttle; maxFailures <= 0 disables it.
func NewThrottle(maxFailures int, window, lockout time.Duration) *Throttle {
	return &Throttle{maxFailures: maxFailures, window: window, lockout: lockout, now: time.Now, addrs: make(map[string]*failures)}
}

// Begin starts a login attempt from addr. It refuses, with how long to
// wait, while addr is locked out. An address has at most as many attempts
// in progress as it may still fail, so that many connections guessing at
// once are held to the same budget as one: beyond that, Begin waits for
// attempts in progress to finish (a burst of reconnecting clients behind
// one address logs in a few at a time) and refuses if ctx ends first.
// Otherwise the caller must call done with the outcome.
func (t *Throttle) Begin(ctx context.Context, addr string) (done func(failed bool), ok bool, retryAfter time.Duration) {
	if t == nil || t.maxFailures <= 0 {
		return func(bool) {}, true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		now := t.now()
		f := t.addrs[addr]
		if f == nil {
			if len(t.addrs) >= maxTrackedAddrs && !t.sweep(now) {
				return func(bool) {}, true, 0 // table full of live entries: fail open on tracking, not on auth
			}
			f = &failures{since: now, finished: make(chan struct{})}
			t.addrs[addr] = f
		}
		if wait := f.lockedUntil.Sub(now); wait > 0 {
			return nil, false, wait
		}
		if now.Sub(f.since) > t.window {
			f.count, f.since = 0, now
		}
		if f.count+f.pending < t.maxFailures {
			f.pending++
			return func(failed bool) { t.finish(f, failed) }, true, 0
		}
		finished := f.finished
		t.mu.Unlock()
		select {
		case <-finished:
			t.mu.Lock()
		case <-ctx.Done():
			t.mu.Lock()
			return nil, false, time.Second // the attempts in progress took too long
		}
	}
}

func (t *Throttle) finish(f *failures, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.pending--
	close(f.finished)
	f.finished = make(chan struct{})
	if !failed {
		return
	}
	now := t.now()
	if now.Sub(f.since) > t.window {
		f.count, f.since = 0, now
	}
	f.count++
	if f.count >= t.maxFailures {
		f.lockedUntil = now.Add(t.lockout)
		f.count, f.since = 0, now
	}
}

// sweep drops entries whose window and lockout are over; it reports whether
// it freed room.
func (t *Throttle) sweep(now time.Time) bool {
	before := len(t.addrs)
	for addr, f := range t.addrs {
		if f.pending == 0 && now.Sub(f.since) > t.window && !now.Before(f.lockedUntil) {
			delete(t.addrs, addr)
		}
	}
	return len(t.addrs) < before
}
