package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
)

const wrongPass = "-WRONGPASS invalid username-password pair or user is disabled."

// throttledDelay is the delay an auth record's reason names ("…; throttled
// 50ms after repeated failures"), and whether it names one.
func throttledDelay(t *testing.T, reason string) (time.Duration, bool) {
	t.Helper()
	_, rest, ok := strings.Cut(reason, "throttled ")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSuffix(rest, " after repeated failures"))
	if err != nil {
		t.Fatalf("reason %q: %v", reason, err)
	}
	return d, true
}

// TestThrottleSlowsGuessingWithoutLockout: 30 wrong passwords for alice
// from one address, then the right one from the same address: each is
// checked, none refused; the right one succeeds after waiting at most
// max_delay (by the throttle's accounting, in its audit record). bob at
// the same address is never delayed.
func TestThrottleSlowsGuessingWithoutLockout(t *testing.T) {
	const maxDelay = 50 * time.Millisecond
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		o.Throttle = auth.NewThrottle(3, time.Minute, maxDelay)
		o.Audit = rec
	})
	attacker := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
	// Pipelined, so that each attempt arrives as the previous one failed.
	for range 30 {
		attacker.Send("AUTH", "alice", "guess")
	}
	attacker.Send("AUTH", "alice", "alice-secret")
	for i := range 30 {
		if got := attacker.Read(); got != wrongPass {
			t.Fatalf("guess %d: %s", i+1, got)
		}
	}
	if got := attacker.Read(); got != "OK" {
		t.Fatalf("the right password after 30 wrong ones: %s", got)
	}
	if got := testutil.DialRESPFrom(t, env.addr, "127.0.0.2").Do("HELLO", "3", "AUTH", "alice", "alice-secret"); strings.HasPrefix(got, "-") {
		t.Fatalf("a new connection from the same address: %s", got)
	}
	if got := testutil.DialRESPFrom(t, env.addr, "127.0.0.2").Do("AUTH", "bob", "bob-secret"); got != "OK" {
		t.Fatalf("bob from the same address: %s", got)
	}

	failures := rec.find(audit.EventAuth, audit.Failure)
	throttled := 0
	for _, r := range failures {
		if !strings.HasPrefix(r.Reason, "invalid credentials") {
			t.Fatalf("a guess was refused, not checked: %+v", r)
		}
		if d, ok := throttledDelay(t, r.Reason); ok {
			throttled++
			if d <= 0 || d > maxDelay {
				t.Errorf("a guess waited %s, max_delay %s", d, maxDelay)
			}
		}
	}
	// A guess arriving a delay after the previous failure has nothing
	// left to wait, so how many waited depends on the scheduler; the
	// throttle is on after 3 failures.
	if len(failures) != 30 || throttled == 0 {
		t.Fatalf("%d failures recorded, %d of them throttled; want 30, some throttled", len(failures), throttled)
	}
	var alice, bob []audit.Record
	for _, r := range rec.find(audit.EventAuth, audit.Success) {
		switch r.User {
		case "alice":
			alice = append(alice, r)
		case "bob":
			bob = append(bob, r)
		}
	}
	if len(alice) != 2 || len(bob) != 1 {
		t.Fatalf("successes: alice %+v, bob %+v", alice, bob)
	}
	for _, r := range alice {
		if d, ok := throttledDelay(t, r.Reason); ok && (d <= 0 || d > maxDelay) {
			t.Fatalf("alice's login after 30 failures: reason %q, want a wait of at most %s", r.Reason, maxDelay)
		}
	}
	if bob[0].Reason != "" {
		t.Fatalf("bob's login was held back: %q", bob[0].Reason)
	}
	if st := env.srv.Stats(); st.LoginsThrottled < int64(throttled) || st.LoginsThrottleRefused != 0 {
		t.Fatalf("throttle counters: delayed %d, refused %d", st.LoginsThrottled, st.LoginsThrottleRefused)
	}
}

// countingAuth records the interval of every password check that fails.
type countingAuth struct {
	auth.Authenticator
	mu      sync.Mutex
	guesses [][2]time.Time
}

func (a *countingAuth) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	start := time.Now()
	time.Sleep(time.Millisecond) // a check takes time, as bcrypt does
	id, err := a.Authenticator.Authenticate(ctx, c)
	if err != nil {
		a.mu.Lock()
		a.guesses = append(a.guesses, [2]time.Time{start, time.Now()})
		a.mu.Unlock()
	}
	return id, err
}

func (a *countingAuth) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.guesses)
}

// TestThrottleBoundsConcurrentGuessing: 50 connections guessing at alice
// at once get no more checks than one would: after max_failures, one at a
// time, each starting at least a delay after the previous one ended. A
// correct password for alice, from another address, and bob from the
// attackers' address, still get in meanwhile.
func TestThrottleBoundsConcurrentGuessing(t *testing.T) {
	const maxFailures, maxDelay = 3, 20 * time.Millisecond
	counting := &countingAuth{}
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		o.Throttle = auth.NewThrottle(maxFailures, time.Minute, maxDelay)
		counting.Authenticator = o.Auth
		o.Auth = counting
		o.Audit = rec
	})
	const guess = "*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$5\r\nguess\r\n"
	var stop atomic.Bool
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		c := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
		wg.Go(func() {
			for !stop.Load() {
				if _, err := c.Conn.Write([]byte(guess)); err != nil {
					return
				}
				got, err := c.TryRead(30 * time.Second)
				if err != nil {
					return
				}
				if got != wrongPass {
					refused.Add(1)
				}
			}
		})
	}
	for counting.count() < 10 {
		time.Sleep(time.Millisecond)
	}
	if got := testutil.DialRESPFrom(t, env.addr, "127.0.0.3").Do("AUTH", "alice", "alice-secret"); got != "OK" {
		t.Fatalf("alice from another address during the attack: %s", got)
	}
	if got := testutil.DialRESPFrom(t, env.addr, "127.0.0.2").Do("AUTH", "bob", "bob-secret"); got != "OK" {
		t.Fatalf("bob from the attackers' address: %s", got)
	}
	for counting.count() < 30 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if n := refused.Load(); n != 0 {
		t.Errorf("%d guesses were refused instead of slowed down", n)
	}
	counting.mu.Lock()
	defer counting.mu.Unlock()
	g := counting.guesses
	for i := maxFailures; i < len(g); i++ {
		if gap := g[i][0].Sub(g[i-1][1]); gap < maxDelay {
			t.Fatalf("guess %d started %s after guess %d ended, within max_delay (%s): 50 connections guessed faster than one", i+1, gap, i, maxDelay)
		}
	}
	for _, r := range rec.find(audit.EventAuth, audit.Success) {
		if r.User == "bob" && r.Reason != "" {
			t.Fatalf("bob was held back by guesses at alice: %q", r.Reason)
		}
	}
}

// gateAuth holds the check of the password "hold" until the gate opens.
type gateAuth struct {
	auth.Authenticator
	entered, open chan struct{}
}

func (a gateAuth) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	if c.Password == "hold" {
		a.entered <- struct{}{}
		<-a.open
	}
	return a.Authenticator.Authenticate(ctx, c)
}

// TestThrottleRefusalSaysWhy: an attempt that gets no turn before its
// deadline (the login timeout, when shorter than 10s) is the only kind
// refused, with an error that says it was throttled and to try again; the
// connection and its identity stay.
func TestThrottleRefusalSaysWhy(t *testing.T) {
	gate := gateAuth{entered: make(chan struct{}, 1), open: make(chan struct{})}
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		o.Throttle = auth.NewThrottle(1, time.Minute, 100*time.Millisecond)
		o.LoginTimeout = time.Second
		gate.Authenticator = o.Auth
		o.Auth = gate
		o.Audit = rec
	})
	defer close(gate.open)
	bob := testutil.DialRESPFrom(t, env.addr, "127.0.0.3")
	if got := bob.Do("AUTH", "bob", "bob-secret"); got != "OK" {
		t.Fatal(got)
	}
	// The attacker logs in first, so that the login timeout does not close
	// its connection: a failed AUTH keeps the identity a connection had.
	attacker := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
	if got := attacker.Do("AUTH", "bob", "bob-secret"); got != "OK" {
		t.Fatal(got)
	}
	if got := attacker.Do("AUTH", "alice", "guess"); got != wrongPass {
		t.Fatal(got)
	}
	attacker.Send("AUTH", "alice", "hold") // waits its delay, then holds alice's only turn
	<-gate.entered
	got := bob.Do("AUTH", "alice", "alice-secret")
	want := "-ERR pubgate: login throttled (repeated failed logins for this user): no turn within 1s; try again"
	if got != want {
		t.Fatalf("a login without a turn before its deadline got\n%s\nwant\n%s", got, want)
	}
	if got := bob.Do("PUBLISH", "news", "still bob"); got != ":0" {
		t.Fatalf("after the refusal the connection lost its identity: PUBLISH got %s", got)
	}
	var refusals []string
	for _, r := range rec.find(audit.EventAuth, audit.Failure) {
		if strings.HasPrefix(r.Reason, "throttled:") {
			refusals = append(refusals, fmt.Sprintf("%s: %s", r.User, r.Reason))
		}
	}
	if len(refusals) != 1 || refusals[0] != "alice: throttled: no turn within 1s (repeated failed logins for this user)" {
		t.Fatalf("refusals recorded: %q", refusals)
	}
	if st := env.srv.Stats(); st.LoginsThrottleRefused != 1 {
		t.Fatalf("refused counter %d", st.LoginsThrottleRefused)
	}
}
