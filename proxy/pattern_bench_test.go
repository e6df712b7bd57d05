package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
)

// BenchmarkPublishBesidePatterns measures acme's PUBLISH through pubgate to
// a real Redis (as BenchmarkPublishRedis) while a globex client holds
// patterns on the node: none, or 30,000 with covering off (each pattern
// subscribed upstream, which Redis matches every publish against) and on
// at the default threshold. It reports the process's CPU per message.
func BenchmarkPublishBesidePatterns(b *testing.B) {
	for _, tc := range []struct {
		name            string
		patterns, cover int
	}{
		{"patterns=0", 0, 32},
		{"patterns=30000/cover=off", 30000, 0},
		{"patterns=30000/cover=32", 30000, 32},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := testutil.StartRedis(b)
			broker, err := upstream.NewRedis(upstream.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			env := startProxy(b, broker, func(o *Options) {
				o.Logger = nil
				o.Limits.CoverPatternsOver = tc.cover
				o.Limits.MaxSubscriptionsPerClient = 1 << 20
			})
			defer holdPatterns(b, env, tc.patterns).Close()
			benchPublishCPU(b, env)
		})
	}
}

// holdPatterns subscribes one globex connection to n patterns that match
// none of the benchmark's channels, 200 per PSUBSCRIBE.
func holdPatterns(b *testing.B, env *testEnv, n int) net.Conn {
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("AUTH bob bob-secret\r\n")); err != nil {
		b.Fatal(err)
	}
	if line, _ := r.ReadString('\n'); line != "+OK\r\n" {
		b.Fatalf("AUTH: %q", line)
	}
	for start := 0; start < n; start += 200 {
		end := min(start+200, n)
		var cmd strings.Builder
		fmt.Fprintf(&cmd, "*%d\r\n$10\r\nPSUBSCRIBE\r\n", end-start+1)
		for i := start; i < end; i++ {
			p := fmt.Sprintf("feed.%d.*", i)
			fmt.Fprintf(&cmd, "$%d\r\n%s\r\n", len(p), p)
		}
		if _, err := conn.Write([]byte(cmd.String())); err != nil {
			b.Fatal(err)
		}
		last := fmt.Sprintf(":%d\r\n", end)
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "-") {
				b.Fatalf("PSUBSCRIBE: %q %v", line, err)
			}
			if line == last {
				break
			}
		}
	}
	return conn
}
