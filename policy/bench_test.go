package policy

import (
	"context"
	"strconv"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"

	"go.uber.org/zap"
)

// benchAuthorizer loads the example library with the quickstart's tenants.
// The cache is small so that cold benchmarks measure evaluation, not the
// garbage collector scanning a million cached decisions.
func benchAuthorizer(b *testing.B) *Authorizer {
	b.Helper()
	data := map[string]any{
		"tenants":   map[string]any{"acme": map[string]any{"prefix": "acme:"}, "globex": map[string]any{"prefix": "globex:"}},
		"users":     map[string]any{},
		"namespace": map[string]any{"mode": "rewrite", "shared_prefix": "shared:"},
	}
	a, err := New(context.Background(), Options{
		Sources: Sources{Paths: []string{"../examples/policies"}, Data: data}, CacheSize: 1024, Logger: zap.NewNop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// reportCPU reports the process's CPU time per operation when the
// returned function runs: steadier than the time per operation on a busy
// machine, and it counts the garbage collector's work.
func reportCPU(b *testing.B) func() {
	start := testutil.ProcessCPU(b)
	return func() {
		b.ReportMetric(float64((testutil.ProcessCPU(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

var benchSubject = NewSubject(Subject{Tenant: "acme", User: "alice", Roles: []string{"publisher", "subscriber"}, Method: "password"})

// BenchmarkDecisionCold evaluates Rego every time: each request names a
// channel not decided before.
func BenchmarkDecisionCold(b *testing.B) {
	a := benchAuthorizer(b)
	channels := make([]string, b.N)
	for i := range channels {
		channels[i] = "orders." + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		r := Request{Subject: benchSubject, Action: Publish, Channel: channels[i], Upstream: "acme:" + channels[i]}
		if !a.Authorize(ctx, &r).Allow {
			b.Fatal("denied")
		}
	}
	if s := a.Stats(); s.CacheHits != 0 {
		b.Fatalf("cold benchmark hit the cache: %+v", s)
	}
}

// BenchmarkDecisionWarm is the PUBLISH hot path: the decision is cached.
func BenchmarkDecisionWarm(b *testing.B) {
	a := benchAuthorizer(b)
	ctx := context.Background()
	r := Request{Subject: benchSubject, Action: Publish, Channel: "orders", Upstream: "acme:orders"}
	a.Authorize(ctx, &r)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !a.Authorize(ctx, &r).Allow {
			b.Fatal("denied")
		}
	}
	if s := a.Stats(); s.CacheMisses != 1 {
		b.Fatalf("warm benchmark evaluated Rego: %+v", s)
	}
}

// BenchmarkDecisionColdBuiltin is the cold path of the built-in policy.
func BenchmarkDecisionColdBuiltin(b *testing.B) {
	a, err := New(context.Background(), Options{Sources: Sources{Builtin: Builtin, Data: testData}, CacheSize: 1024})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		ch := "acme:orders." + strconv.Itoa(i)
		r := Request{Subject: acmeAlice, Action: Publish, Channel: ch, Upstream: ch}
		if !a.Authorize(ctx, &r).Allow {
			b.Fatal("denied")
		}
	}
}
