package upstream

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// TestSubscribeThenRunsAtTheConfirmation: at runs on the receive goroutine
// at the point of the stream where Redis confirmed the subscription, before
// SubscribeThen returns: every message of the new pattern is handed over
// after it, and none before.
func TestSubscribeThenRunsAtTheConfirmation(t *testing.T) {
	srv := testutil.StartRedis(t)
	b, err := NewRedis(RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var kinds []Kind // of every message handed over, in order
	mark := -1       // len(kinds) when at ran
	b.SetHandler(func(burst []Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range burst {
			kinds = append(kinds, m.Kind)
		}
	})
	if err := b.Subscribe(t.Context(), KindChannel, "feed"); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	pub := testutil.StartCountingPublisher(ctx, c, "feed")
	testutil.Eventually(t, "messages flow", func() bool { return pub.Acked() > 100 })
	err = b.SubscribeThen(t.Context(), KindPattern, []string{"fe*"}, func() {
		mu.Lock()
		defer mu.Unlock()
		mark = len(kinds)
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ran := mark >= 0
	mu.Unlock()
	if !ran {
		t.Fatal("SubscribeThen returned before at ran")
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	<-pub.Done()
	mu.Lock()
	defer mu.Unlock()
	after := 0
	for i, k := range kinds {
		switch {
		case k == KindPattern && i < mark:
			t.Fatalf("message %d came by the pattern, but at ran at message %d", i, mark)
		case k == KindPattern:
			after++
		}
	}
	if after == 0 {
		t.Fatal("no message came by the pattern after the confirmation")
	}
}
