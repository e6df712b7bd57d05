package gateway

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRedisLoggerRateLimits: go-redis's pool warns on every failed dial
// while the upstream is down; each message reaches the operational log at
// most once per period, the next one saying how many were left out.
func TestRedisLoggerRateLimits(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := newRedisLogger(zap.New(core), 50*time.Millisecond)
	for range 10 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
	}
	l.Printf(context.Background(), "sentinel: new master=%q", "mymaster")
	if n := logs.Len(); n != 2 {
		t.Fatalf("%d lines logged, want 2 (one per message): %v", n, logs.All())
	}
	time.Sleep(60 * time.Millisecond)
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
	all := logs.All()
	if len(all) != 3 {
		t.Fatalf("%d lines logged, want 3", len(all))
	}
	last := all[2]
	if last.Message != "redis: connection pool: failed to dial after 5 attempts: refused" || last.ContextMap()["repeats_not_logged"] != int64(9) {
		t.Fatalf("after the period: %q %v", last.Message, last.ContextMap())
	}
}
