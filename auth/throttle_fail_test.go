package auth

import (
	"testing"
	"time"
)

// TestThrottleFailCounts: failures of logins that shared another login's
// check count under their own keys as if checked, so sharing a check
// gives a guesser no failures for free.
func TestThrottleFailCounts(t *testing.T) {
	th := NewThrottle(3, time.Minute, time.Second)
	fakeClock(th)
	for range 3 {
		th.Fail("10.0.0.1", "alice")
	}
	if turn := attempt(t, th, "10.0.0.1", "alice", true); turn.Delay != 100*time.Millisecond {
		t.Fatalf("after 3 shared failures the next attempt waited %s, want 100ms", turn.Delay)
	}
	// The user's key counted them too: another address waits as well.
	if turn := attempt(t, th, "10.0.0.2", "alice", false); !turn.Throttled {
		t.Fatalf("alice from another address: %+v, want throttled", turn)
	}
	if turn := attempt(t, th, "10.0.0.1", "bob", false); turn.Delay != 0 || turn.Throttled {
		t.Fatalf("bob from the same address: %+v", turn)
	}
	var off *Throttle
	off.Fail("10.0.0.1", "alice") // no throttle: nothing to count
	NewThrottle(0, time.Minute, time.Second).Fail("10.0.0.1", "alice")
}
