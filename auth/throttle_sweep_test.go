package auth

import (
	"fmt"
	"testing"
	"time"
)

// TestThrottleFullTableCostsNoScans: once the table is full of recent low
// counts, a new key evicts one of them without scanning the table for
// ended windows again, until one may have ended; then the scan drops them
// all.
func TestThrottleFullTableCostsNoScans(t *testing.T) {
	th := NewThrottle(3, time.Minute, time.Second)
	step := fakeClock(th)
	th.maxKeys = 100
	for i := range 50 { // 100 keys: (address, user) and user
		attempt(t, th, "10.0.0.7", fmt.Sprint("user", i), true)
		step(time.Millisecond)
	}
	for i := range 1000 {
		attempt(t, th, "10.0.0.8", fmt.Sprint("new", i), true)
		if n := len(th.keys); n > th.maxKeys {
			t.Fatalf("tracking %d keys", n)
		}
	}
	if th.fullSweeps != 1 {
		t.Fatalf("%d scans of the full table for 1000 new keys, want 1", th.fullSweeps)
	}
	step(time.Minute + time.Second) // every window has ended
	attempt(t, th, "10.0.0.9", "late", true)
	if th.fullSweeps != 2 || len(th.keys) != 2 {
		t.Fatalf("after the windows ended: %d scans, %d keys; want 2 and the late user's 2", th.fullSweeps, len(th.keys))
	}
}

// BenchmarkThrottleFullTable is a new key's cost when the table (100k
// keys) is full of low counts.
func BenchmarkThrottleFullTable(b *testing.B) {
	th := NewThrottle(5, time.Hour, time.Second)
	for i := range maxTrackedKeys / 2 {
		tu, _ := th.Begin(b.Context(), "10.0.0.1", fmt.Sprint("user", i))
		tu.Done(true)
	}
	b.ResetTimer()
	for i := range b.N {
		tu, _ := th.Begin(b.Context(), "10.0.0.2", fmt.Sprint("new", i))
		tu.Done(true)
	}
}
