package auth

import (
	"context"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	th := NewThrottle(3, time.Minute, 30*time.Second)
	th.now = func() time.Time { return clock }
	step := func(d time.Duration) { clock = clock.Add(d) }
	allowed := func(addr string) bool {
		done, ok, _ := th.Begin(context.Background(), addr)
		if ok {
			done(false)
		}
		return ok
	}
	fail := func(addr string) {
		done, ok, _ := th.Begin(context.Background(), addr)
		if !ok {
			t.Fatalf("%s refused before failing", addr)
		}
		done(true)
	}

	fail("10.0.0.1")
	fail("10.0.0.1")
	if !allowed("10.0.0.1") {
		t.Fatal("locked out before max_failures")
	}
	fail("10.0.0.1")
	if _, ok, wait := th.Begin(context.Background(), "10.0.0.1"); ok || wait != 30*time.Second {
		t.Fatalf("after 3 failures: allowed %v, retry after %v", ok, wait)
	}
	if !allowed("10.0.0.2") {
		t.Fatal("another address was locked out")
	}
	step(31 * time.Second)
	if !allowed("10.0.0.1") {
		t.Fatal("still locked after the lockout")
	}

	// Failures spread wider than the window never lock.
	for range 5 {
		fail("10.0.0.3")
		fail("10.0.0.3")
		step(61 * time.Second)
	}
	if !allowed("10.0.0.3") {
		t.Fatal("locked by failures outside one window")
	}

	// Attempts in progress count: concurrent guesses share one budget.
	var inFlight []func(bool)
	for range 3 {
		done, ok, _ := th.Begin(context.Background(), "10.0.0.5")
		if !ok {
			t.Fatal("refused within the budget")
		}
		inFlight = append(inFlight, done)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, _ := th.Begin(expired, "10.0.0.5"); ok {
		t.Fatal("a fourth concurrent attempt went ahead with max_failures 3")
	}
	fourth := make(chan bool)
	go func() {
		done, ok, _ := th.Begin(context.Background(), "10.0.0.5")
		if ok {
			done(false)
		}
		fourth <- ok
	}()
	inFlight[0](false) // one succeeded: the waiting attempt goes ahead
	if !<-fourth {
		t.Fatal("the waiting attempt was refused once the budget had room")
	}
	for _, done := range inFlight[1:] {
		done(false)
	}
	if !allowed("10.0.0.5") {
		t.Fatal("successful attempts still held the budget")
	}

	var off *Throttle
	if _, ok, _ := off.Begin(context.Background(), "x"); !ok {
		t.Fatal("a nil throttle refused")
	}
	disabled := NewThrottle(0, time.Minute, time.Minute)
	for range 10 {
		done, _, _ := disabled.Begin(context.Background(), "x")
		done(true)
	}
	if _, ok, _ := disabled.Begin(context.Background(), "x"); !ok {
		t.Fatal("a disabled throttle refused")
	}
}

func TestThrottleTableIsBounded(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	th := NewThrottle(2, time.Second, time.Second)
	th.now = func() time.Time { return clock }
	for i := range maxTrackedAddrs + 10 {
		if done, ok, _ := th.Begin(context.Background(), string(rune(i))+"addr"); ok {
			done(true)
		}
	}
	if n := len(th.addrs); n > maxTrackedAddrs {
		t.Fatalf("tracking %d addresses", n)
	}
	clock = clock.Add(time.Hour)
	if done, ok, _ := th.Begin(context.Background(), "late"); ok {
		done(true)
	}
	if _, ok := th.addrs["late"]; !ok {
		t.Fatal("expired entries were not swept to make room")
	}
}
