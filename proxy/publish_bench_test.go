package proxy

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
)

// allowAll is the "policy off" baseline: no policy work at all.
type allowAll struct{}

func (allowAll) Authorize(context.Context, *policy.Request) policy.Decision {
	return policy.Decision{Allow: true}
}

// BenchmarkPublishPolicy measures PUBLISH through a whole session (RESP
// parsing, quotas, policy, the memory engine, replies) from a client that
// pipelines 64 at a time, with the policy off, the built-in policy, and the
// example library (decisions cached after the first).
func BenchmarkPublishPolicy(b *testing.B) {
	for _, tc := range []struct {
		name  string
		authz func(b *testing.B) Authorizer
	}{
		{"off", func(*testing.B) Authorizer { return allowAll{} }},
		{"builtin", func(b *testing.B) Authorizer {
			return newTestAuthorizer(b, testTenants, rewriteShared, policy.Sources{Builtin: policy.Builtin})
		}},
		{"examples", func(b *testing.B) Authorizer {
			return newTestAuthorizer(b, testTenants, rewriteShared, policy.Sources{Paths: []string{examplePolicies}})
		}},
	} {
		b.Run("policy="+tc.name, func(b *testing.B) {
			authz := tc.authz(b)
			env := startProxy(b, nil, func(o *Options) { o.Authorizer, o.Namespace, o.Logger = authz, rewriteShared, nil })
			benchmarkPublish(b, env)
		})
	}
}

func benchmarkPublish(b *testing.B, env *testEnv) {
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("AUTH alice alice-secret\r\n")); err != nil {
		b.Fatal(err)
	}
	if line, _ := r.ReadString('\n'); line != "+OK\r\n" {
		b.Fatalf("AUTH: %q", line)
	}
	const depth = 64
	var batch []byte
	for range depth {
		batch = append(batch, "*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$64\r\n"+string(make([]byte, 64))+"\r\n"...)
	}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += depth {
		if _, err := conn.Write(batch); err != nil {
			b.Fatal(err)
		}
		for range depth {
			if line, err := r.ReadString('\n'); err != nil || line != ":0\r\n" {
				b.Fatalf("reply %q, %v", line, err)
			}
		}
	}
}

// BenchmarkPublishRedis measures PUBLISH through sessions to a real Redis
// (the built-in policy, no audit): clients pipelining 16 at a time, as
// many as GOMAXPROCS×2 at once (-cpu 2 gives 4, compare's W1). It reports
// the process's CPU per message (user + system, every goroutine: the
// sessions and the upstream pipeline) next to ns/op.
func BenchmarkPublishRedis(b *testing.B) {
	srv := testutil.StartRedis(b)
	broker, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	benchPublishCPU(b, startProxy(b, broker, func(o *Options) { o.Logger = nil }))
}

// benchPublishCPU publishes through env from 2×GOMAXPROCS pipelined
// clients and reports the process's CPU time per message.
func benchPublishCPU(b *testing.B, env *testEnv) {
	before := testutil.ProcessCPU(b)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		publishPipelined(b, env, pb, 16)
	})
	b.StopTimer()
	b.ReportMetric(float64((testutil.ProcessCPU(b)-before).Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// publishPipelined publishes from one logged-in connection, depth at a
// time, while pb says so.
func publishPipelined(b *testing.B, env *testEnv, pb *testing.PB, depth int) {
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("AUTH alice alice-secret\r\n")); err != nil {
		b.Error(err)
		return
	}
	if line, _ := r.ReadString('\n'); line != "+OK\r\n" {
		b.Errorf("AUTH: %q", line)
		return
	}
	one := "*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$64\r\n" + string(make([]byte, 64)) + "\r\n"
	var batch []byte
	for more := true; more; {
		batch = batch[:0]
		n := 0
		for ; n < depth; n++ {
			if more = pb.Next(); !more {
				break
			}
			batch = append(batch, one...)
		}
		if _, err := conn.Write(batch); err != nil {
			b.Error(err)
			return
		}
		for range n {
			if line, err := r.ReadString('\n'); err != nil || line != ":0\r\n" {
				b.Errorf("reply %q, %v", line, err)
				return
			}
		}
	}
}
