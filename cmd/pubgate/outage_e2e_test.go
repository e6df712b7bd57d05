package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// publishLog is what a publisher was told about each message it sent.
type publishLog struct {
	mu        sync.Mutex
	receivers map[int]int64 // seq → receivers in the reply; absent: an error
	errors    int
	sent      int
}

func (l *publishLog) record(seq int, n int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = seq + 1
	if err != nil {
		l.errors++
		return
	}
	l.receivers[seq] = n
}

func (l *publishLog) counts() (sent, errors int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.errors
}

// publishUntil publishes numbered messages one after another until ctx ends.
func publishUntil(ctx context.Context, c *redis.Client, channel string, log *publishLog) {
	for seq := 0; ctx.Err() == nil; seq++ {
		n, err := c.Publish(ctx, channel, strconv.Itoa(seq)).Result()
		log.record(seq, n, err) // cut short by ctx: an error, the outcome unknown
	}
}

// TestRedisRestartUnderLoad stops and restarts Redis while a client
// publishes without pause through pubgate and another subscribes: publishes
// fail while Redis is down (no false OK), no client is disconnected, the
// subscription comes back on its own, and every message acknowledged as
// delivered to a subscriber was received, in order. (Right after the
// restart, before pubgate's subscription is restored, a publish reaches
// nobody, and its reply must say 0.)
func TestRedisRestartUnderLoad(t *testing.T) {
	srv := testutil.StartRedis(t)
	g := startGateway(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := g.client(t, "bob").Subscribe(ctx, "load")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	received := make(chan int, 1<<16)
	go func() {
		for m := range sub.Channel() {
			n, _ := strconv.Atoi(m.Payload)
			received <- n
		}
	}()

	pubCtx, stopPublishing := context.WithCancel(ctx)
	log := &publishLog{receivers: make(map[int]int64)}
	publisher := g.client(t, "bob")
	done := make(chan struct{})
	go func() { defer close(done); publishUntil(pubCtx, publisher, "load", log) }()

	testutil.Eventually(t, "publishes flowing", func() bool { sent, _ := log.counts(); return sent > 100 })
	srv.Shutdown() // a kill could drop messages Redis had acknowledged: at most once
	stoppedAt, _ := log.counts()
	testutil.Eventually(t, "publishes failing while Redis is down", func() bool { _, errs := log.counts(); return errs >= 3 })
	srv.Start()
	testutil.Eventually(t, "publishes delivered again after the restart", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		delivered := 0
		for seq, n := range log.receivers {
			if seq > stoppedAt && n == 1 {
				delivered++
			}
		}
		return delivered > 100
	})
	stopPublishing()
	<-done
	// A last message, published once the publisher stopped, marks the end.
	if err := publisher.Publish(ctx, "load", "-1").Err(); err != nil {
		t.Fatal(err)
	}

	got := make(map[int]bool)
	last := -1
	for n := range received {
		if n == -1 {
			break
		}
		if n <= last {
			t.Fatalf("message %d received after %d", n, last)
		}
		last = n
		got[n] = true
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	lostAcked := 0
	for seq, n := range log.receivers {
		if n >= 1 && !got[seq] {
			lostAcked++
		}
	}
	for n := range got {
		if n >= log.sent {
			t.Errorf("message %d received but never sent", n)
		}
	}
	if lostAcked > 0 {
		t.Errorf("%d messages acknowledged with a receiver were not received", lostAcked)
	}
	t.Logf("%d publishes: %d acknowledged, %d errors; %d received", log.sent, len(log.receivers), log.errors, len(got))
	if err := sub.Ping(ctx); err != nil {
		t.Errorf("the subscriber's connection did not survive the outage: %v", err)
	}
}

// TestLongOutageDisconnectsClients: with upstream.disconnect_clients_after,
// a Redis that stays down that long gets this node's clients disconnected,
// each told why, so that they reconnect elsewhere; once Redis is back new
// clients are served.
func TestLongOutageDisconnectsClients(t *testing.T) {
	srv := testutil.StartRedis(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
listen: {address: "127.0.0.1:0", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
upstream: {url: "%s", health_interval: 100ms, disconnect_clients_after: 500ms}
tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "%s"}
`, dir, srv.URL(), aliceHash)
	g := startGatewayWith(t, cfg, localGateway(dir))
	sub := g.rawSubscriber(t, "alice", "orders")
	srv.Stop()
	if r := sub.Read(); r != "-ERR pubgate: upstream unavailable for more than 500ms; closing the connection" {
		t.Fatalf("during the outage: %s", r)
	}
	if !sub.Closed() {
		t.Fatal("still connected")
	}
	srv.Start()
	testutil.Eventually(t, "publishes served again", func() bool {
		return g.client(t, "alice").Publish(context.Background(), "orders", "back").Err() == nil
	})
}

// TestRedisDownAtStart: with Redis not running when pubgate starts,
// pubgate says so itself, with the same line as for a later outage (what it
// tried, what clients get, that it keeps retrying); clients get "upstream
// unavailable" meanwhile; once Redis comes, pubgate says it is reachable and
// serves them.
func TestRedisDownAtStart(t *testing.T) {
	srv := testutil.StartRedis(t)
	srv.Stop() // keeps its port: configured, not running
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
listen: {address: "127.0.0.1:0", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
upstream: {url: "%s"}
tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "%s"}
`, dir, srv.URL(), aliceHash)
	g := startGatewayWith(t, cfg, localGateway(dir))
	unreachable := `upstream unreachable: clients get "upstream unavailable" for publishes and subscribes until it is back; pubgate keeps retrying`
	testutil.Eventually(t, "pubgate's own line about the unreachable upstream", func() bool {
		return strings.Contains(g.logs.String(), unreachable)
	})
	line := logLine(g.logs.String(), unreachable)
	for _, want := range []string{`"upstream": "` + srv.URL() + `"`, `"at_start": true`, `"retry_every": "1s"`, "connection refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line lacks %s: %s", want, line)
		}
	}
	alice := g.client(t, "alice")
	if err := alice.Publish(context.Background(), "orders", "early").Err(); err == nil || !strings.Contains(err.Error(), "upstream unavailable") {
		t.Fatalf("publish before Redis came: %v", err)
	}
	srv.Start()
	testutil.Eventually(t, "upstream reachable logged", func() bool {
		return strings.Contains(g.logs.String(), "upstream reachable")
	})
	testutil.Eventually(t, "publishes served once Redis came", func() bool {
		return alice.Publish(context.Background(), "orders", "back").Err() == nil
	})
	if n := strings.Count(g.logs.String(), unreachable); n != 1 {
		t.Errorf("the unreachable line was logged %d times, want once:\n%s", n, g.logs)
	}
}

// logLine is the first line of logs containing s.
func logLine(logs, s string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
