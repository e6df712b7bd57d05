package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// pipelineConns counts the connections of pubgate's publishing pipelines
// on srv: they are the "normal" ones named pubgate (the subscribers' are
// of type pubsub).
func pipelineConns(t *testing.T, admin *redis.Client) int {
	t.Helper()
	list, err := admin.ClientList(ctx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "name=pubgate ") && strings.Contains(line, "cmd=publish") {
			n++
		}
	}
	return n
}

// redisEngine is a Redis engine on url whose messages receive reads,
// closed when the test ends.
func redisEngine(t *testing.T, url string) *Redis {
	t.Helper()
	b, err := NewRedis(RedisOptions{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return collect(b)
}

// Many sessions publishing at once share one connection, and each one's
// messages arrive in its order, every one counted.
func TestPublishersShareOneConnectionAndKeepTheirOrder(t *testing.T) {
	srv := testutil.StartRedis(t)
	b := redisEngine(t, srv.URL())
	if err := b.Subscribe(ctx(t), KindChannel, "seq"); err != nil {
		t.Fatal(err)
	}
	const publishers, batches, perBatch = 8, 50, 16
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			next := uint32(0)
			for range batches {
				batch := make([]Publication, perBatch)
				for i := range batch {
					payload := binary.BigEndian.AppendUint32([]byte{byte(p)}, next)
					next++
					batch[i] = Publication{Kind: KindChannel, Channel: "seq", Payload: payload}
				}
				if err := b.Publish(ctx(t), batch); err != nil {
					t.Error(err)
					return
				}
				for _, pub := range batch {
					if pub.Err != nil || pub.Receivers != 1 {
						t.Errorf("publish: %d receivers, error %v", pub.Receivers, pub.Err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	next := make([]uint32, publishers)
	for range publishers * batches * perBatch {
		m := receive(t, b)
		p, seq := m.Payload[0], binary.BigEndian.Uint32(m.Payload[1:])
		if seq != next[p] {
			t.Fatalf("publisher %d: message %d arrived when %d was due", p, seq, next[p])
		}
		next[p]++
	}
	admin := nodeClient(t, srv)
	if n := pipelineConns(t, admin); n != 1 {
		t.Errorf("%d publishing connections, want 1 shared by every publisher", n)
	}
}

// A connection killed while publications are in flight: each publication
// gets its true count or an error, never a count for a message that was
// not delivered, and what is delivered is in order and never twice.
func TestPublishesInFlightWhenTheConnectionDies(t *testing.T) {
	srv := testutil.StartRedis(t)
	b := redisEngine(t, srv.URL())
	if err := b.Subscribe(ctx(t), KindChannel, "kill"); err != nil {
		t.Fatal(err)
	}
	admin := nodeClient(t, srv)

	const publishers = 4
	acked := make([]map[uint32]bool, publishers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failedMu sync.Mutex
	failed := 0
	for p := range publishers {
		acked[p] = map[uint32]bool{}
		wg.Go(func() {
			for next := uint32(0); ; {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]Publication, 32)
				for i := range batch {
					batch[i] = Publication{Kind: KindChannel, Channel: "kill", Payload: binary.BigEndian.AppendUint32([]byte{byte(p)}, next)}
					next++
				}
				_ = b.Publish(ctx(t), batch)
				for _, pub := range batch {
					switch {
					case pub.Err != nil:
						failedMu.Lock()
						failed++
						failedMu.Unlock()
					case pub.Receivers == 1:
						acked[p][binary.BigEndian.Uint32(pub.Payload[1:])] = true
					default:
						t.Errorf("publish counted %d receivers, want 1", pub.Receivers)
					}
				}
			}
		})
	}
	for range 20 {
		time.Sleep(20 * time.Millisecond)
		_, _ = admin.ClientKillByFilter(ctx(t), "TYPE", "normal", "SKIPME", "yes").Result()
	}
	close(stop)
	wg.Wait()

	// Drain: everything acknowledged must be there, in order, once.
	_ = b.Publish(ctx(t), []Publication{{Kind: KindChannel, Channel: "kill", Payload: []byte{0xff}}})
	last := make([]int64, publishers)
	for i := range last {
		last[i] = -1
	}
	seen := make([]map[uint32]bool, publishers)
	for i := range seen {
		seen[i] = map[uint32]bool{}
	}
	for {
		m := receive(t, b)
		if len(m.Payload) == 1 {
			break
		}
		p, seq := m.Payload[0], binary.BigEndian.Uint32(m.Payload[1:])
		if int64(seq) <= last[p] {
			t.Fatalf("publisher %d: message %d after %d (duplicate or out of order)", p, seq, last[p])
		}
		last[p] = int64(seq)
		seen[p][seq] = true
	}
	total := 0
	for p := range publishers {
		for seq := range acked[p] {
			if !seen[p][seq] {
				t.Fatalf("publisher %d: message %d acknowledged with a count but never delivered", p, seq)
			}
		}
		total += len(acked[p])
	}
	if total == 0 || failed == 0 {
		t.Fatalf("%d acknowledged, %d failed: the test did not kill a connection under load", total, failed)
	}
	t.Logf("%d acknowledged and delivered, %d failed with an error", total, failed)
}

// Redis refusing one publication of a batch fails that one only.
func TestRedisErrorFailsOnlyItsPublication(t *testing.T) {
	srv := testutil.StartRedis(t)
	admin := nodeClient(t, srv)
	if err := admin.Do(ctx(t), "ACL", "SETUSER", "acme", "on", ">secret", "resetchannels", "&acme:*", "+publish", "+ping", "+client", "+subscribe").Err(); err != nil {
		t.Fatal(err)
	}
	b := redisEngine(t, strings.Replace(srv.URL(), "redis://", "redis://acme:secret@", 1))
	testutil.Eventually(t, "engine up", func() bool { return b.Health().Up })
	batch := []Publication{
		{Kind: KindChannel, Channel: "acme:a", Payload: []byte("1")},
		{Kind: KindChannel, Channel: "globex:a", Payload: []byte("2")},
		{Kind: KindChannel, Channel: "acme:b", Payload: []byte("3")},
	}
	if err := b.Publish(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	var refused *ReplyError
	if batch[0].Err != nil || batch[2].Err != nil || !errors.As(batch[1].Err, &refused) || !strings.HasPrefix(refused.Msg, "NOPERM") {
		t.Fatalf("results %v / %v / %v, want only the second refused with NOPERM", batch[0].Err, batch[1].Err, batch[2].Err)
	}
	if h := b.Health(); !h.Up {
		t.Errorf("a refusal marked the engine down: %v", h.Err)
	}
}

// Wrong credentials fail every publication with Redis's refusal.
func TestPipelineLoginRefused(t *testing.T) {
	srv := testutil.StartRedis(t, "--requirepass", "right")
	b := redisEngine(t, strings.Replace(srv.URL(), "redis://", "redis://:wrong@", 1))
	batch := []Publication{{Kind: KindChannel, Channel: "a", Payload: []byte("x")}, {Kind: KindChannel, Channel: "b", Payload: []byte("y")}}
	if err := b.Publish(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	for i, pub := range batch {
		if pub.Err == nil || !strings.Contains(pub.Err.Error(), "WRONGPASS") {
			t.Errorf("publication %d: %v, want WRONGPASS", i, fmt.Sprint(pub.Err))
		}
	}
}

// The publish path allocates nothing per publication once warm (a batch
// may cost a pooled call, which the race detector's pools sometimes drop).
func TestPublishAllocatesNothingPerPublication(t *testing.T) {
	b := redisEngine(t, testutil.StartRedis(t).URL())
	batch := make([]Publication, 16)
	payload := make([]byte, 64)
	fill := func() {
		for i := range batch {
			batch[i] = Publication{Kind: KindChannel, Channel: "alloc", Payload: payload}
		}
	}
	c := ctx(t)
	fill()
	_ = b.Publish(c, batch)
	allocs := testing.AllocsPerRun(200, func() {
		fill()
		if err := b.Publish(c, batch); err != nil || batch[0].Err != nil {
			t.Fatal(err, batch[0].Err)
		}
	})
	if allocs >= float64(len(batch))/2 {
		t.Errorf("%.1f allocations per batch of %d, want none per publication", allocs, len(batch))
	}
}
