package policy

import (
	"context"
	"strconv"
	"testing"
	"time"

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
		Sources: Sources{Paths: []string{"../examples/policies"}, Data: data}, CacheSize: 1024, Logger: zap.NewNop(), Timeout: 10 * time.Second,
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

// BenchmarkDecisionCold decides a channel not decided before every time:
// after its first few, an identity's decisions are planned (plan.go).
func BenchmarkDecisionCold(b *testing.B) { benchCold(b, benchAuthorizer(b), planAfter) }

// BenchmarkDecisionColdUnplanned evaluates the policy in full every time,
// as the first few cold decisions of each identity are.
func BenchmarkDecisionColdUnplanned(b *testing.B) { benchCold(b, benchAuthorizer(b), b.N+1) }

// BenchmarkDecisionColdBuiltin is the cold path of the built-in policy.
func BenchmarkDecisionColdBuiltin(b *testing.B) {
	benchCold(b, newAuthorizer(b, Sources{Builtin: Builtin}), planAfter)
}

// BenchmarkDecisionColdBuiltinUnplanned is its full evaluation.
func BenchmarkDecisionColdBuiltinUnplanned(b *testing.B) {
	benchCold(b, newAuthorizer(b, Sources{Builtin: Builtin}), b.N+1)
}

// BenchmarkPlan is what making a plan costs (partial evaluation).
func BenchmarkPlan(b *testing.B) {
	c := benchAuthorizer(b).current.Load()
	in, err := (&Request{Subject: benchSubject, Action: Publish}).input()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for range b.N {
		if c.plans.make(context.Background(), in) == nil {
			b.Fatal("no plan")
		}
	}
}

// benchCold decides a new channel of one identity each time, planning
// after planAfter full evaluations.
func benchCold(b *testing.B, a *Authorizer, planAfter int) {
	a.current.Load().plans.after = planAfter
	channels := make([]string, b.N)
	for i := range channels {
		channels[i] = "acme:orders." + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		r := Request{Subject: benchSubject, Action: Publish, Channel: channels[i], Upstream: channels[i]}
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
