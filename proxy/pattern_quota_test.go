package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
	"github.com/redis/go-redis/v9"
)

// startRedisServerBroker is startRedisBroker that also returns the server.
func startRedisServerBroker(t *testing.T) (*testutil.RedisServer, upstream.Broker) {
	t.Helper()
	srv := testutil.StartRedis(t)
	b, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return srv, b
}

// TestTenantPatternQuota: a PSUBSCRIBE over tenants.<name>.quotas.max_patterns
// is refused whole, with the quota's key, and recorded; channels do not
// count against it; a PUNSUBSCRIBE frees a place.
func TestTenantPatternQuota(t *testing.T) {
	env, rec := startAuditedProxy(t, audit.Levels{}, Quotas{MaxPatterns: 2})
	a, b := env.login(t, "alice"), env.login(t, "alice")
	a.Do("PSUBSCRIBE", "a*", "b*")
	a.Read()
	want := "-ERR pubgate: tenant acme holds its maximum of 2 patterns (tenants.acme.quotas.max_patterns)"
	if r := b.Do("PSUBSCRIBE", "c*"); r != want {
		t.Fatalf("over the quota: %s", r)
	}
	denied := rec.find(audit.EventAuthz, audit.Deny)
	if len(denied) != 1 || denied[0].Reason != strings.TrimPrefix(want, "-ERR pubgate: ") || denied[0].Tenant != "acme" {
		t.Fatalf("denial records %+v", denied)
	}
	if r := b.Do("SUBSCRIBE", "x", "y"); r != `["subscribe" "x" :1]` {
		t.Fatalf("channels are not patterns: %s", r)
	}
	b.Read()
	a.Do("PUNSUBSCRIBE", "a*")
	if r := b.Do("PSUBSCRIBE", "c*"); r != `["psubscribe" "c*" :3]` {
		t.Fatalf("after a PUNSUBSCRIBE freed one: %s", r)
	}
	if r := env.login(t, "bob").Do("PSUBSCRIBE", "a*", "b*", "c*"); r != `["psubscribe" "a*" :1]` {
		t.Fatalf("another tenant's quota is its own: %s", r)
	}
}

// TestTenantPatternQuotaZeroIsUnlimited: 0 lifts the default.
func TestTenantPatternQuotaZeroIsUnlimited(t *testing.T) {
	env := startQuotaProxy(t, Quotas{MaxPatterns: 0}, nil)
	alice := env.login(t, "alice")
	args := []string{"PSUBSCRIBE"}
	for i := range 50 {
		args = append(args, fmt.Sprint("p", i, "*"))
	}
	alice.Do(args...)
	for range 49 {
		alice.Read()
	}
	if r := alice.Do("PSUBSCRIBE", "last*"); r != `["psubscribe" "last*" :51]` {
		t.Fatalf("unlimited: %s", r)
	}
}

// TestCoveredPatternsThroughTheProxy: over limits.cover_patterns_over, a
// tenant's patterns cost Redis one pattern, and clients see what they
// would see with every pattern subscribed upstream: their pattern's name
// in each pmessage, PUBLISH and PUBSUB NUMPAT counts.
func TestCoveredPatternsThroughTheProxy(t *testing.T) {
	srvRedis, broker := startRedisServerBroker(t)
	env := startProxy(t, broker, func(o *Options) { o.Limits.CoverPatternsOver = 2 })
	alice, sub := env.login(t, "alice"), env.login(t, "alice")
	sub.Do("PSUBSCRIBE", "news.*", "news.?", "n*", "other.*")
	for range 3 {
		sub.Read()
	}
	plain := redis.NewClient(&redis.Options{Addr: srvRedis.Addr()})
	defer plain.Close()
	if n, err := plain.PubSubNumPat(t.Context()).Result(); err != nil || n != 1 {
		t.Fatalf("Redis holds %d patterns (%v), want 1: the cover", n, err)
	}
	if r := alice.Do("PUBLISH", "news.a", "hello"); r != ":3" {
		t.Fatalf("PUBLISH counts %s receivers, want 3 (three patterns match)", r)
	}
	got := readSet(t, sub, 3)
	for _, p := range []string{"news.*", "news.?", "n*"} {
		if m := fmt.Sprintf(`["pmessage" %q "news.a" "hello"]`, p); !got[m] {
			t.Fatalf("missing %s in %v", m, got)
		}
	}
	if r := alice.Do("PUBSUB", "NUMPAT"); r != ":4" {
		t.Fatalf("PUBSUB NUMPAT: %s, want 4", r)
	}
	if r := env.login(t, "bob").Do("PUBLISH", "news.a", "globex's"); r != ":0" {
		t.Fatalf("another tenant's PUBLISH counts %s", r)
	}
	expectQuiet(t, sub)
}
