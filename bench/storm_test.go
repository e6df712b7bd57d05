package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

func storm(t *testing.T, o StormOptions) *StormResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Storm(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStormSubscribesEveryClient: against a real Redis with an ACL user,
// every client of the storm logs in and holds its subscription until the
// storm ends, and the time is that of the last one.
func TestStormSubscribesEveryClient(t *testing.T) {
	srv := testutil.StartRedis(t, "--user", "storm", "on", ">pw", "resetchannels", "&acme:storm:*", "+@pubsub", "+ping")
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	const clients = 60
	r := storm(t, StormOptions{Addr: srv.Addr(), Tenant: Tenant{User: "storm", Password: "pw", Prefix: "acme:"}, Clients: clients, Channels: 7})
	if r.Clients != clients || r.Subscribed != clients || r.Failures() != 0 || len(r.Errors) != 0 {
		t.Fatalf("%+v", r)
	}
	if r.Seconds <= 0 || r.Seconds > 30 {
		t.Errorf("took %v s", r.Seconds)
	}
	// Once the storm returned its clients are gone.
	if n := admin.PubSubChannels(context.Background(), "acme:storm:*").Val(); len(n) != 0 {
		t.Errorf("channels still subscribed after the storm: %v", n)
	}
}

// TestStormCountsFailures: a refused login and a closed port count as
// refused, a server that never answers as timed out; none is an error of
// the storm itself.
func TestStormCountsFailures(t *testing.T) {
	srv := testutil.StartRedis(t)
	r := storm(t, StormOptions{Addr: srv.Addr(), Tenant: Tenant{User: "nobody", Password: "wrong"}, Clients: 5})
	if r.Refused != 5 || r.TimedOut != 0 || r.Subscribed != 0 || !strings.Contains(r.Errors[0], "WRONGPASS") {
		t.Errorf("wrong password: %+v", r)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	if r := storm(t, StormOptions{Addr: addr, Clients: 3}); r.Refused != 3 || r.TimedOut != 0 {
		t.Errorf("closed port: %+v", r)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() //nolint:gocritic // deferInLoop: held open, never answered, until the listener goes
		}
	}()
	r = storm(t, StormOptions{Addr: silent.Addr().String(), Tenant: Tenant{User: "u", Password: "p"}, Clients: 4, Timeout: 300 * time.Millisecond})
	if r.TimedOut != 4 || r.Refused != 0 || len(r.Errors) != 4 {
		t.Errorf("silent server: %+v", r)
	}
	if _, err := Storm(context.Background(), StormOptions{Addr: srv.Addr()}); err == nil {
		t.Error("a storm of no clients ran")
	}
}

// TestHoldPatterns: the neighbour's patterns are all held, spread over
// connections, until Close.
func TestHoldPatterns(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	n, err := HoldPatterns(ctx, NoiseOptions{Addr: srv.Addr(), Tenant: Tenant{Prefix: "globex:"}, Patterns: 2345, PerConn: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PubSubNumPat(ctx).Val(); got != 2345 || len(n.conns) != 3 {
		t.Errorf("%d patterns on %d connections, want 2345 on 3", got, len(n.conns))
	}
	n.Close()
	deadline := time.Now().Add(5 * time.Second)
	for c.PubSubNumPat(ctx).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d patterns left after Close", c.PubSubNumPat(ctx).Val())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSplitChannelsInANamespace: with SplitChannels each publisher
// publishes only to its own block, the subscriber of that block receives
// exactly those messages, and the names carry the namespace.
func TestSplitChannelsInANamespace(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	var channels []string
	r := run(t, Options{Addr: srv.Addr(), Tenants: []Tenant{{Prefix: "acme:"}}, Namespace: "fresh7", Publishers: 4, Pipeline: 8,
		Channels: 1200, SubChannels: 300, SplitChannels: true, Subscribers: 4, Duration: 300 * time.Millisecond,
		OnSubscribed: func() { channels = c.PubSubChannels(context.Background(), "*").Val() }})
	if len(channels) != 1200 || !strings.HasPrefix(channels[0], "acme:fresh7:") {
		t.Errorf("%d channels subscribed (%.3q), want 1,200 acme:fresh7:<i>:c", len(channels), channels)
	}
	if r.Published == 0 || r.Expected != r.Published || r.Delivered != r.Published || r.Lost != 0 {
		t.Errorf("each message should reach exactly one subscriber: %+v", r)
	}
	if _, err := Run(context.Background(), Options{Addr: srv.Addr(), Publishers: 3, Channels: 10, SplitChannels: true, Duration: time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "split channels") {
		t.Errorf("10 channels split over 3 publishers: %v", err)
	}
}
