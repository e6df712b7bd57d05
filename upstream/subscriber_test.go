package upstream

import (
	"fmt"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// TestSubscriberResubscribesAfterKill kills the engine's subscriber
// connections at the server (CLIENT KILL TYPE pubsub), again and again:
// each time they come back holding every channel, pattern and shard
// channel, a subscribe made meanwhile is confirmed, and nothing published
// once they are back is lost or reordered.
func TestSubscriberResubscribesAfterKill(t *testing.T) {
	srv := testutil.StartRedis(t)
	b := redisEngine(t, srv.URL())
	admin := nodeClient(t, srv)
	for _, s := range []struct {
		kind Kind
		name string
	}{{KindChannel, "kill:ch"}, {KindPattern, "kill:c*"}, {KindShard, "kill:sh"}} {
		if err := b.Subscribe(ctx(t), s.kind, s.name); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		killed, err := admin.ClientKillByFilter(ctx(t), "TYPE", "pubsub").Result()
		if err != nil || killed != 2 {
			t.Fatalf("round %d: CLIENT KILL TYPE pubsub = %d, %v; want the engine's 2 connections", round, killed, err)
		}
		// Made while the connection is being replaced: confirmed anyway.
		added := fmt.Sprintf("kill:added%d", round)
		if err := b.Subscribe(ctx(t), KindChannel, added); err != nil {
			t.Fatalf("round %d: subscribe during the reconnect: %v", round, err)
		}
		testutil.Eventually(t, "every name held again upstream", func() bool {
			ch, err1 := admin.PubSubNumSub(ctx(t), "kill:ch", added).Result()
			sh, err2 := admin.PubSubShardNumSub(ctx(t), "kill:sh").Result()
			pat, err3 := admin.PubSubNumPat(ctx(t)).Result()
			return err1 == nil && err2 == nil && err3 == nil &&
				ch["kill:ch"] == 1 && ch[added] == 1 && sh["kill:sh"] == 1 && pat == 1
		})
		const n = 100
		batch := make([]Publication, 0, 2*n+1)
		for i := range n {
			p := fmt.Appendf(nil, "%d-%d", round, i)
			batch = append(batch, Publication{Kind: KindChannel, Channel: "kill:ch", Payload: p},
				Publication{Kind: KindShard, Channel: "kill:sh", Payload: p})
		}
		batch = append(batch, Publication{Kind: KindChannel, Channel: added, Payload: []byte("added")})
		if err := b.Publish(ctx(t), batch); err != nil {
			t.Fatal(err)
		}
		next := map[string]int{}
		for range 3*n + 1 { // the channel's messages match the pattern too; added matches nothing else
			m := receive(t, b)
			key := m.Kind.String() + " " + string(m.Channel)
			if string(m.Channel) == added {
				next[key]++
				continue
			}
			if want := fmt.Sprintf("%d-%d", round, next[key]); string(m.Payload) != want {
				t.Fatalf("round %d: %s: got %q, want %q", round, key, m.Payload, want)
			}
			next[key]++
		}
		if next["channel "+added] != 1 || next["pattern kill:ch"] != n || next["shard kill:sh"] != n {
			t.Fatalf("round %d: deliveries %v", round, next)
		}
		expectNoMessage(t, b)
	}
}
