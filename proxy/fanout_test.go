package proxy

import (
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// TestFanoutClientWrites: the messages one publication brings a client
// (its channel and its pattern match, one burst of the engine) reach it in
// one write, and ClientWrites counts it: writes per delivered message can
// be computed from the server's figures.
func TestFanoutClientWrites(t *testing.T) {
	env := startProxy(t, nil, nil)
	sub := env.login(t, "alice")
	if got := sub.Do("SUBSCRIBE", "orders"); got != `["subscribe" "orders" :1]` {
		t.Fatal(got)
	}
	if got := sub.Do("PSUBSCRIBE", "ord*"); got != `["psubscribe" "ord*" :2]` {
		t.Fatal(got)
	}
	pub := env.login(t, "alice")

	before := env.srv.Stats()
	if got := pub.Do("PUBLISH", "orders", "hello"); got != ":2" {
		t.Fatal(got)
	}
	expect(t, sub, `["message" "orders" "hello"]`, `["pmessage" "ord*" "orders" "hello"]`)
	var after ServerStats
	testutil.Eventually(t, "the deliveries are counted", func() bool {
		after = env.srv.Stats()
		return statsOf(after, "acme").Delivered-statsOf(before, "acme").Delivered == 2
	})
	// The PUBLISH reply, and both messages together.
	if writes := after.ClientWrites - before.ClientWrites; writes != 2 {
		t.Fatalf("%d writes for a reply and two messages of one burst, want 2", writes)
	}
}
