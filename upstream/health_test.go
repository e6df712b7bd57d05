package upstream

import (
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// TestHealthReportsAnEngineDownFromTheStart: an engine that cannot be
// reached when pubgate starts is reported down at once (not silently left
// in its initial state), then up when it comes.
func TestHealthReportsAnEngineDownFromTheStart(t *testing.T) {
	srv := testutil.StartRedis(t)
	srv.Stop() // keeps the port: the engine is configured but not running
	_, changes := watchedEngine(t, srv.URL())
	select {
	case h := <-changes:
		if h.Up || h.Err == nil {
			t.Fatalf("first report = %+v, want down with the reason", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report while the engine is unreachable from the start")
	}
	srv.Start()
	select {
	case h := <-changes:
		if !h.Up {
			t.Fatalf("second report = %+v, want up", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report once the engine came")
	}
	select {
	case h := <-changes:
		t.Fatalf("report without a change: %+v", h)
	case <-time.After(200 * time.Millisecond):
	}
}

// watchedEngine is a Redis engine on url, probed every 50 ms, whose health
// changes arrive on changes; it is closed when the test ends.
func watchedEngine(t *testing.T, url string) (b *Redis, changes chan Health) {
	t.Helper()
	changes = make(chan Health, 16)
	b, err := NewRedis(RedisOptions{URL: url, Timeout: time.Second,
		HealthInterval: 50 * time.Millisecond, OnHealthChange: func(h Health) { changes <- h }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, changes
}
