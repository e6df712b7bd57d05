package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// Throttle slows password guessing down without locking anyone out. It
// counts failed logins under two keys: the (client address, user) pair and
// the user, whatever the address. Once a key has had MaxFailures failures
// within Window, the attempts under it take turns: one password check at a
// time, none starting sooner than the key's delay after its last failure.
// The delay starts at 100ms and doubles with every further failure, up to
// MaxDelay. No attempt is refused for the failures, correct passwords
// included: the only refusal is an attempt whose context (the login
// deadline) ends before its turn. So a key allows a guesser, however many
// connections it opens, MaxFailures quick checks and then one check per
// delay (plus one after each successful login under the key, which needs
// the password).
//
// Other users at the same address are not affected. A user guessed at
// from many addresses is slowed down everywhere (the per-user key), but its
// turns go first to the attempts from addresses with the fewest failures
// for that user, so a client with a clean record waits about one delay.
//
// A login whose password the authenticator already knows correct
// (Verifier) is no guess and takes no turn; logins presenting the same
// credentials at once may share one turn and check, each failure among
// them counted with Fail (the proxy does both). A storm of one user's
// clients is thus not held to MaxFailures checks at a time.
//
// A throttled key is forgotten a Window after its last failure (below
// MaxFailures, a Window after the first). A successful login does not reset
// the counts, or an attacker holding one account could guess at others
// from the same address.
type Throttle struct {
	maxFailures               int
	window, maxDelay, initial time.Duration
	maxKeys                   int
	now                       func() time.Time
	sleep                     func(context.Context, time.Duration) error

	mu   sync.Mutex
	keys map[key]*entry
	seq  uint64 // arrival order of waiters
	// sweepAfter is the earliest a tracked window can end, as of the last
	// scan of the full table; fullSweeps counts those scans.
	sweepAfter time.Time
	fullSweeps int
}

// ErrThrottled refuses an attempt whose context ended before its turn.
var ErrThrottled = errors.New("auth: login throttled: no turn before the deadline")

// A key is what failures are counted under: an address and a user, or a
// user alone (anyAddr).
type key struct {
	addr, user string
	anyAddr    bool
}

type entry struct {
	key         key
	count       int       // failures in the window
	since       time.Time // start of the window; once throttled, the last failure
	lastFailure time.Time
	pending     int       // checks let through and not done, each a possible failure
	waiters     []*waiter // in arrival order
}

// A waiter is an attempt waiting for its turn on one key.
type waiter struct {
	seq uint64
	// pair is the attempt's (address, user) entry while it waits on the
	// user's key: the fewer failures it has, the sooner the turn. Nil on a
	// pair's own key.
	pair      *entry
	turn      chan struct{} // closed when the waiter is let through (and counted in pending)
	readyAt   time.Time     // set before turn is closed
	throttled bool          // likewise
}

const (
	// maxTrackedKeys bounds the table (two keys per user and address).
	// When it is full, entries that no longer matter are dropped, then
	// entries below the threshold (the cheapest counts to lose); if none
	// can be, a new key goes untracked.
	maxTrackedKeys = 100_000
	// initialDelay is the delay of a key that has just reached MaxFailures.
	initialDelay = 100 * time.Millisecond
	// maxKeyedName is the longest user name kept in a key as it is; a
	// longer one (no configured user's) is keyed by its hash, so that
	// clients cannot fill memory with names.
	maxKeyedName = 64
)

// NewThrottle returns a throttle; maxFailures <= 0 disables it.
func NewThrottle(maxFailures int, window, maxDelay time.Duration) *Throttle {
	return &Throttle{
		maxFailures: maxFailures, window: window, maxDelay: maxDelay, initial: min(initialDelay, maxDelay),
		maxKeys: maxTrackedKeys, now: time.Now, sleep: sleepCtx, keys: make(map[key]*entry),
	}
}

// A Turn lets one login attempt check a password. Done must be called
// once with the outcome.
type Turn struct {
	// Delay is how long the throttle held the attempt back, by its own
	// clock: waiting for logins in progress under its keys, and for their
	// delay after earlier failures.
	Delay time.Duration
	// Throttled says that earlier failures, not only other logins in
	// progress, held the attempt back (or, with an error, would have).
	Throttled bool
	done      func(failed bool)
}

// Done reports the outcome: failed for wrong credentials only (an
// authenticator that could not check is not a guess).
func (tu Turn) Done(failed bool) {
	if tu.done != nil {
		tu.done(failed)
	}
}

// Begin waits for the turn of a login attempt for user from addr (see
// Throttle). Attempts in progress count as possible failures: a key that
// may still fail n times lets n attempts through at once, and the others
// wait for them to finish, so that many connections guessing at once are
// held to the budget of one. On ErrThrottled, ctx ended first (or would
// have before the delay ran out) and the Turn says how long it waited.
func (t *Throttle) Begin(ctx context.Context, addr, user string) (Turn, error) {
	if t == nil || t.maxFailures <= 0 {
		return Turn{}, nil
	}
	start := t.now()
	user = keyedName(user)
	pair, pairReady, pairThrottled, err := t.take(ctx, key{addr: addr, user: user}, nil)
	if err != nil {
		return Turn{Delay: t.now().Sub(start), Throttled: pairThrottled}, err
	}
	usr, userReady, userThrottled, err := t.take(ctx, key{user: user, anyAddr: true}, pair)
	if err != nil {
		t.end([2]*entry{pair}, false)
		return Turn{Delay: t.now().Sub(start), Throttled: pairThrottled || userThrottled}, err
	}
	entries := [2]*entry{pair, usr}
	ready, now := later(pairReady, userReady), t.now()
	throttled := pairThrottled || userThrottled || ready.After(now)
	if ready.After(now) {
		if deadline, ok := ctx.Deadline(); ok && ready.After(deadline) {
			t.end(entries, false)
			return Turn{Delay: now.Sub(start), Throttled: true}, ErrThrottled
		}
		if err := t.sleep(ctx, ready.Sub(now)); err != nil {
			t.end(entries, false)
			return Turn{Delay: t.now().Sub(start), Throttled: true}, ErrThrottled
		}
		now = ready
	}
	var once sync.Once
	return Turn{Delay: now.Sub(start), Throttled: throttled, done: func(failed bool) {
		once.Do(func() { t.end(entries, failed) })
	}}, nil
}

// Fail counts a failed login for user from addr that had no turn of its
// own because it shared the check of another attempt with the same
// credentials, which had one (proxy: identical logins at once are checked
// once). Each attempt counts as a failure under its own keys, as if it had
// been checked itself; nothing waits.
func (t *Throttle) Fail(addr, user string) {
	if t == nil || t.maxFailures <= 0 {
		return
	}
	user = keyedName(user)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range [2]key{{addr: addr, user: user}, {user: user, anyAddr: true}} {
		if e := t.entry(k, now); e != nil {
			e.pending++ // as a check let through, which leave ends
			t.leave(e, true, now)
		}
	}
}

// take lets the attempt through key k: at once if the key admits it and
// nobody is waiting, else when its turn comes. It returns the key's entry
// (nil if the key is not tracked), counted in pending, the earliest time
// the check may start, and whether failures held the attempt back.
func (t *Throttle) take(ctx context.Context, k key, pair *entry) (e *entry, readyAt time.Time, throttled bool, err error) {
	t.mu.Lock()
	now := t.now()
	if e = t.entry(k, now); e == nil {
		t.mu.Unlock()
		return nil, time.Time{}, false, nil
	}
	t.expire(e, now)
	if len(e.waiters) == 0 && t.admits(e) {
		e.pending++
		readyAt = t.readyAt(e)
		t.mu.Unlock()
		return e, readyAt, false, nil
	}
	t.seq++
	w := &waiter{seq: t.seq, pair: pair, turn: make(chan struct{})}
	e.waiters = append(e.waiters, w)
	throttled = e.count >= t.maxFailures
	t.mu.Unlock()

	select {
	case <-w.turn:
		return e, w.readyAt, throttled || w.throttled, nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-w.turn: // the turn came as ctx ended: pass it on
		t.leave(e, false, t.now())
	default:
		for i, x := range e.waiters {
			if x == w {
				e.waiters = append(e.waiters[:i], e.waiters[i+1:]...)
				break
			}
		}
		t.drop(e)
	}
	return nil, time.Time{}, throttled || e.count >= t.maxFailures, ErrThrottled
}

// admits tells whether an attempt may go through e now: while e may still
// fail more times than it has attempts in progress, or, once it may not
// (throttled), when none is in progress.
func (t *Throttle) admits(e *entry) bool {
	return e.pending == 0 || e.count+e.pending < t.maxFailures
}

// readyAt is when a check let through e may start: a delay after its last
// failure once it is throttled.
func (t *Throttle) readyAt(e *entry) time.Time {
	if e.count < t.maxFailures {
		return time.Time{}
	}
	return e.lastFailure.Add(t.delay(e.count))
}

// delay is initial after maxFailures failures, doubled for each further
// one, at most maxDelay.
func (t *Throttle) delay(failures int) time.Duration {
	d := t.initial
	for range failures - t.maxFailures {
		if d >= t.maxDelay {
			break
		}
		d *= 2
	}
	return min(d, t.maxDelay)
}

// end finishes a check let through entries.
func (t *Throttle) end(entries [2]*entry, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, e := range entries {
		if e != nil {
			t.leave(e, failed, now)
		}
	}
}

// leave takes a check off e's pending, counts it if it failed, and lets
// the waiters through that e now admits.
func (t *Throttle) leave(e *entry, failed bool, now time.Time) {
	e.pending--
	t.expire(e, now)
	if failed {
		if e.count == 0 {
			e.since = now
		}
		e.count++
		e.lastFailure = now
		if e.count >= t.maxFailures {
			e.since = now // a throttled key is kept a window after its last failure
		}
	}
	for len(e.waiters) > 0 && t.admits(e) {
		i := t.next(e)
		w := e.waiters[i]
		e.waiters = append(e.waiters[:i], e.waiters[i+1:]...)
		e.pending++
		w.readyAt, w.throttled = t.readyAt(e), e.count >= t.maxFailures
		close(w.turn)
	}
	t.drop(e)
}

// next is the waiter whose turn it is: the one whose (address, user) has
// the fewest failures, the earliest among equals.
func (t *Throttle) next(e *entry) int {
	best := 0
	for i, w := range e.waiters {
		if w.pair.failures() < e.waiters[best].pair.failures() {
			best = i
		}
	}
	return best
}

func (e *entry) failures() int {
	if e == nil {
		return 0 // not tracked
	}
	return e.count
}

// expire forgets e's failures once its window is over.
func (t *Throttle) expire(e *entry, now time.Time) {
	if e.count > 0 && now.Sub(e.since) > t.window {
		e.count = 0
	}
}

// drop removes e from the table when it holds nothing worth keeping.
func (t *Throttle) drop(e *entry) {
	if e.count == 0 && idle(e) && t.keys[e.key] == e {
		delete(t.keys, e.key)
	}
}

func idle(e *entry) bool { return e.pending == 0 && len(e.waiters) == 0 }

// entry returns k's entry, made if need be; nil if the table is full of
// entries that matter.
func (t *Throttle) entry(k key, now time.Time) *entry {
	if e := t.keys[k]; e != nil {
		return e
	}
	if len(t.keys) >= t.maxKeys && !t.sweep(now) {
		return nil // fail open on tracking, not on authentication
	}
	e := &entry{key: k}
	t.keys[k] = e
	return e
}

// sweep drops the entries whose window is over; if there are none, one
// entry below the threshold. It reports whether it freed room. The scan
// for ended windows runs only once one may have ended (sweepAfter), so
// that a table full of recent low counts costs a new key one step of map
// iteration, not a scan of the table under the lock.
func (t *Throttle) sweep(now time.Time) bool {
	if !now.Before(t.sweepAfter) && t.dropExpired(now) {
		return true
	}
	for k, e := range t.keys {
		if idle(e) && e.count < t.maxFailures {
			delete(t.keys, k)
			return true
		}
	}
	return false
}

// dropExpired drops the idle entries whose window is over, and notes when
// the next window of the others ends at the earliest. A busy entry is
// dropped when it goes idle (drop).
func (t *Throttle) dropExpired(now time.Time) bool {
	t.fullSweeps++
	before := len(t.keys)
	next := now.Add(t.window) // no entry made from now on ends sooner
	for k, e := range t.keys {
		expired := e.count == 0 || now.Sub(e.since) > t.window
		switch {
		case expired && idle(e):
			delete(t.keys, k)
		case !expired && e.since.Add(t.window).Before(next):
			next = e.since.Add(t.window)
		}
	}
	t.sweepAfter = next
	return len(t.keys) < before
}

// keyedName is user as a key holds it: short names as they are, long ones
// by their hash.
func keyedName(user string) string {
	if len(user) <= maxKeyedName {
		return user
	}
	sum := sha256.Sum256([]byte(user))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
