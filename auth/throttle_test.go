package auth

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	th := NewThrottle(3, time.Minute, 30*time.Second)
	th.now = func() time.Time { return clock }
	step := func(d time.Duration) { clock = clock.Add(d) }
	allowed := func(addr string) bool { ok, _ := th.Allow(addr); return ok }

	th.Failed("10.0.0.1")
	th.Failed("10.0.0.1")
	if !allowed("10.0.0.1") {
		t.Fatal("locked out before max_failures")
	}
	th.Failed("10.0.0.1")
	if ok, wait := th.Allow("10.0.0.1"); ok || wait != 30*time.Second {
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
		th.Failed("10.0.0.3")
		th.Failed("10.0.0.3")
		step(61 * time.Second)
	}
	if !allowed("10.0.0.3") {
		t.Fatal("locked by failures outside one window")
	}

	var off *Throttle
	off.Failed("x")
	if ok, _ := off.Allow("x"); !ok {
		t.Fatal("a nil throttle refused")
	}
	disabled := NewThrottle(0, time.Minute, time.Minute)
	for range 10 {
		disabled.Failed("x")
	}
	if ok, _ := disabled.Allow("x"); !ok {
		t.Fatal("a disabled throttle refused")
	}
}

func TestThrottleTableIsBounded(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	th := NewThrottle(2, time.Second, time.Second)
	th.now = func() time.Time { return clock }
	for i := range maxTrackedAddrs + 10 {
		th.Failed(string(rune(i)) + "addr")
	}
	if n := len(th.addrs); n > maxTrackedAddrs {
		t.Fatalf("tracking %d addresses", n)
	}
	clock = clock.Add(time.Hour)
	th.Failed("late")
	if _, ok := th.addrs["late"]; !ok {
		t.Fatal("expired entries were not swept to make room")
	}
}
