package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock makes a throttle's time a value the test moves: sleeping
// advances it. Only for tests of one goroutine.
func fakeClock(th *Throttle) (step func(time.Duration)) {
	clock := time.Unix(1_700_000_000, 0)
	th.now = func() time.Time { return clock }
	th.sleep = func(_ context.Context, d time.Duration) error { clock = clock.Add(d); return nil }
	return func(d time.Duration) { clock = clock.Add(d) }
}

// attempt begins a login and ends it with the outcome; it returns the
// turn.
func attempt(t *testing.T, th *Throttle, addr, user string, failed bool) Turn {
	t.Helper()
	turn, err := th.Begin(context.Background(), addr, user)
	if err != nil {
		t.Fatalf("%s@%s refused: %v", user, addr, err)
	}
	turn.Done(failed)
	return turn
}

// TestThrottleDelaysInsteadOfRefusing: 30 wrong passwords for alice from
// one address make her next attempts wait (a delay doubling from 100ms up
// to max_delay), never refuse them; her right password then succeeds after
// at most max_delay; bob at the same address is not delayed; the delay is
// forgotten a window after the last failure.
func TestThrottleDelaysInsteadOfRefusing(t *testing.T) {
	th := NewThrottle(3, time.Minute, 2*time.Second)
	step := fakeClock(th)
	var delays []time.Duration
	for range 30 {
		delays = append(delays, attempt(t, th, "10.0.0.1", "alice", true).Delay)
	}
	ms := time.Millisecond
	want := []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms}
	if got := fmt.Sprint(delays[:len(want)]); got != fmt.Sprint(want) {
		t.Fatalf("delays of the first attempts: %s, want %s", got, fmt.Sprint(want))
	}
	for i, d := range delays[len(want):] {
		if d != 2*time.Second {
			t.Fatalf("attempt %d waited %s, want max_delay", len(want)+i+1, d)
		}
	}

	right := attempt(t, th, "10.0.0.1", "alice", false)
	if !right.Throttled || right.Delay <= 0 || right.Delay > 2*time.Second {
		t.Fatalf("the right password after 30 failures: %+v, want throttled for at most max_delay", right)
	}
	if bob := attempt(t, th, "10.0.0.1", "bob", false); bob.Delay != 0 || bob.Throttled {
		t.Fatalf("bob at the same address was held back: %+v", bob)
	}
	// A check right after a success need not wait (guessing stays bounded
	// by the failures), but the success reset nothing: after one more
	// failure, alice waits max_delay again, from any address (the per-user
	// key), yet is never refused.
	attempt(t, th, "10.0.0.1", "alice", true)
	if n := th.keys[key{addr: "10.0.0.1", user: "alice"}].count; n != 31 {
		t.Fatalf("alice's failures at 10.0.0.1: %d, want 31", n)
	}
	if elsewhere := attempt(t, th, "10.0.0.9", "alice", false); !elsewhere.Throttled || elsewhere.Delay != 2*time.Second {
		t.Fatalf("alice from another address: %+v, want max_delay", elsewhere)
	}

	step(61 * time.Second)
	if later := attempt(t, th, "10.0.0.1", "alice", false); later.Delay != 0 || later.Throttled {
		t.Fatalf("still throttled a window after the last failure: %+v", later)
	}
	if n := len(th.keys); n != 0 {
		t.Fatalf("%d keys kept with nothing to remember", n)
	}
}

// TestThrottleWindow: failures spread wider than the window never
// throttle; a throttled key stays throttled while failures keep coming
// within a window of each other.
func TestThrottleWindow(t *testing.T) {
	th := NewThrottle(3, time.Minute, 2*time.Second)
	step := fakeClock(th)
	for range 5 {
		attempt(t, th, "10.0.0.3", "carol", true)
		attempt(t, th, "10.0.0.3", "carol", true)
		step(61 * time.Second)
	}
	if turn := attempt(t, th, "10.0.0.3", "carol", false); turn.Throttled {
		t.Fatal("throttled by failures outside one window")
	}

	for range 3 {
		attempt(t, th, "10.0.0.4", "dave", true)
	}
	for range 5 { // one guess every 50s: each within a window of the last
		step(50 * time.Second)
		attempt(t, th, "10.0.0.4", "dave", true)
	}
	if e := th.keys[key{addr: "10.0.0.4", user: "dave"}]; e == nil || e.count != 8 {
		t.Fatalf("dave's failures: %+v, want all 8 counted", e)
	}
	if turn := attempt(t, th, "10.0.0.4", "dave", false); !turn.Throttled || turn.Delay != 2*time.Second {
		t.Fatalf("dave 250s after his first failure: %+v, want still throttled", turn)
	}
}

// TestThrottleLogsInABurst: attempts in progress count, so concurrent
// attempts share one budget; beyond it they wait for those in progress
// instead of being refused, and are not throttled when those succeed.
func TestThrottleLogsInABurst(t *testing.T) {
	th := NewThrottle(3, time.Minute, 2*time.Second)
	var inFlight []Turn
	for range 3 {
		turn, err := th.Begin(context.Background(), "10.0.0.5", "erin")
		if err != nil {
			t.Fatal("refused within the budget")
		}
		inFlight = append(inFlight, turn)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := th.Begin(expired, "10.0.0.5", "erin"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("a fourth concurrent attempt with max_failures 3: %v", err)
	}
	fourth := make(chan Turn)
	go func() {
		turn, err := th.Begin(context.Background(), "10.0.0.5", "erin")
		if err != nil {
			t.Error(err)
		}
		turn.Done(false)
		fourth <- turn
	}()
	for waiting := 0; waiting == 0; time.Sleep(time.Millisecond) {
		th.mu.Lock()
		waiting = len(th.keys[key{addr: "10.0.0.5", user: "erin"}].waiters)
		th.mu.Unlock()
	}
	inFlight[0].Done(false) // one succeeded: the waiting attempt goes ahead
	if turn := <-fourth; turn.Throttled {
		t.Fatalf("an attempt that waited for successful ones was throttled: %+v", turn)
	}
	for _, turn := range inFlight[1:] {
		turn.Done(false)
		turn.Done(true) // a second Done is ignored
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	if n := len(th.keys); n != 0 {
		t.Fatalf("successful attempts left %d keys", n)
	}
}

// TestThrottleRefusesOnlyAtTheDeadline: an attempt whose context ends
// before its turn is refused with ErrThrottled, and gives the turn on.
func TestThrottleRefusesOnlyAtTheDeadline(t *testing.T) {
	th := NewThrottle(1, time.Minute, time.Second)
	hold, err := th.Begin(context.Background(), "10.0.0.6", "frank")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if turn, err := th.Begin(ctx, "10.0.0.6", "frank"); !errors.Is(err, ErrThrottled) || turn.Delay <= 0 {
		t.Fatalf("an attempt behind one in progress past its deadline: %+v, %v", turn, err)
	}
	hold.Done(true) // frank is throttled now: the next check is 100ms after this failure
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if turn, err := th.Begin(ctx, "10.0.0.6", "frank"); !errors.Is(err, ErrThrottled) || !turn.Throttled {
		t.Fatalf("an attempt whose delay outlasts its deadline: %+v, %v", turn, err)
	}
	if !strings.Contains(ErrThrottled.Error(), "throttled") {
		t.Fatal(ErrThrottled)
	}
	// Nothing is held by the refused attempts: with time, frank gets in.
	turn, err := th.Begin(context.Background(), "10.0.0.6", "frank")
	if err != nil || !turn.Throttled {
		t.Fatalf("frank after the refusals: %+v, %v", turn, err)
	}
	turn.Done(false)
}

// checks is an authenticator's side of a concurrency test: it records each
// password check's interval, by the real clock.
type checks struct {
	mu        sync.Mutex
	intervals [][2]time.Time
	byAddr    map[string]int
}

func (c *checks) check(addr string, d time.Duration) {
	start := time.Now()
	time.Sleep(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.intervals = append(c.intervals, [2]time.Time{start, time.Now()})
	if c.byAddr == nil {
		c.byAddr = make(map[string]int)
	}
	c.byAddr[addr]++
}

func (c *checks) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.intervals)
}

// TestThrottleBoundsConcurrentGuessing: 50 goroutines guessing at once get
// what one would: after max_failures checks, one check at a time, each
// starting at least the key's delay after the previous failure. A correct
// password from a clean address meanwhile gets the next turn.
func TestThrottleBoundsConcurrentGuessing(t *testing.T) {
	const maxFailures, initial, maxDelay = 3, 5 * time.Millisecond, 20 * time.Millisecond
	th := NewThrottle(maxFailures, time.Minute, maxDelay)
	th.initial = initial
	var c checks
	var stop atomic.Bool
	var refused atomic.Int64
	var wg sync.WaitGroup
	addrs := []string{"10.1.0.1", "10.1.0.2", "10.1.0.3"}
	for i := range 50 {
		addr := addrs[i%len(addrs)]
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				turn, err := th.Begin(ctx, addr, "alice")
				cancel()
				if err != nil {
					refused.Add(1)
					continue
				}
				c.check(addr, time.Millisecond)
				turn.Done(true)
			}
		})
	}
	// Once every attacking address has failed, alice from a clean address
	// goes ahead of them all: at most the check already let through starts
	// between her arrival and hers.
	for {
		c.mu.Lock()
		ready := len(c.byAddr) == len(addrs)
		c.mu.Unlock()
		if ready {
			break
		}
		time.Sleep(time.Millisecond)
	}
	before := c.count()
	turn, err := th.Begin(context.Background(), "10.9.9.9", "alice")
	if err != nil {
		t.Fatalf("a correct password was refused: %v", err)
	}
	between := c.count() - before
	turn.Done(false)
	if between > 1 {
		t.Errorf("%d guesses went before alice from a clean address", between)
	}
	for c.count() < 30 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	c.mu.Lock()
	defer c.mu.Unlock()
	iv := c.intervals
	for i := maxFailures; i < len(iv); i++ {
		if gap := iv[i][0].Sub(iv[i-1][1]); gap < initial {
			t.Fatalf("check %d started %s after check %d ended, before the delay (%s): 50 guessers got more than one", i+1, gap, i, initial)
		}
	}
	if n := refused.Load(); n != 0 {
		t.Logf("%d attempts got no turn within 5s", n)
	}
}

// TestThrottleTableIsBounded: the table never holds more than its bound;
// when full it drops expired entries, then entries below the threshold;
// throttled ones are kept, and a new key goes untracked rather than
// refused.
func TestThrottleTableIsBounded(t *testing.T) {
	th := NewThrottle(2, time.Second, time.Second)
	step := fakeClock(th)
	th.maxKeys = 100
	for i := range 200 {
		attempt(t, th, "10.0.0.7", fmt.Sprint("user", i), true)
		if n := len(th.keys); n > th.maxKeys {
			t.Fatalf("tracking %d keys", n)
		}
	}
	// Full of keys below the threshold: one is dropped for a new one.
	attempt(t, th, "10.0.0.7", "new", true)
	if th.keys[key{addr: "10.0.0.7", user: "new"}] == nil {
		t.Fatal("a partial count was not dropped to make room")
	}

	// Full of throttled keys: none is dropped, a new key goes untracked.
	for i := range 50 {
		user := fmt.Sprint("throttled", i)
		attempt(t, th, "10.0.0.8", user, true)
		attempt(t, th, "10.0.0.8", user, true)
	}
	throttled := 0
	for _, e := range th.keys {
		if e.count >= 2 {
			throttled++
		}
	}
	if len(th.keys) > th.maxKeys || throttled < th.maxKeys-2 {
		t.Fatalf("%d keys, %d throttled", len(th.keys), throttled)
	}
	if turn := attempt(t, th, "10.0.0.8", "untracked", true); turn.Throttled {
		t.Fatal("an untracked key was throttled")
	}
	if len(th.keys) > th.maxKeys {
		t.Fatalf("tracking %d keys", len(th.keys))
	}
	step(2 * time.Second)
	attempt(t, th, "10.0.0.8", "late", true)
	if th.keys[key{addr: "10.0.0.8", user: "late"}] == nil {
		t.Fatal("expired entries were not swept to make room")
	}

	// A long user name is kept as its hash.
	long := strings.Repeat("x", 10_000)
	attempt(t, th, "10.0.0.9", long, true)
	for k := range th.keys {
		if len(k.user) > 80 {
			t.Fatalf("a key holds a %d-byte name", len(k.user))
		}
	}
}

func TestThrottleOff(t *testing.T) {
	var off *Throttle
	if _, err := off.Begin(context.Background(), "x", "u"); err != nil {
		t.Fatal("a nil throttle refused")
	}
	disabled := NewThrottle(0, time.Minute, time.Minute)
	for range 10 {
		turn, _ := disabled.Begin(context.Background(), "x", "u")
		turn.Done(true)
	}
	if turn, err := disabled.Begin(context.Background(), "x", "u"); err != nil || turn.Throttled {
		t.Fatal("a disabled throttle held back a login")
	}
}
