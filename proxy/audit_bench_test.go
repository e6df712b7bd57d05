package proxy

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
)

// BenchmarkPublishAudit measures PUBLISH through a whole session (as
// BenchmarkPublishPolicy, policy off) with publishes recorded at each level
// in a real audit file, fsynced in groups with the default bounds (1 s or
// 1,000 records). The queue is sized to the run, so ns/op is the cost paid
// on the session's goroutine, with the writer running beside it.
//
// cpu-ns/op is the CPU time of the whole process (client, session, memory
// broker and audit writer) per PUBLISH, up to the audit log's close, which
// writes and fsyncs every record: what recording costs is the difference
// between a level and level=none.
func BenchmarkPublishAudit(b *testing.B) {
	for _, level := range []string{"none", "metadata", "payload_digest"} {
		b.Run("level="+level, func(b *testing.B) {
			file, err := audit.OpenFile(audit.FileOptions{Path: filepath.Join(b.TempDir(), "audit.log"), MaxSize: 100 << 20})
			if err != nil {
				b.Fatal(err)
			}
			log, err := audit.New(audit.Options{Key: make([]byte, 32), File: file, FailClosed: true})
			if err != nil {
				b.Fatal(err)
			}
			defer log.Close(context.Background())
			levels := audit.Levels{Global: audit.Scope{Actions: map[string]string{"publish": level}}}
			env := startProxy(b, nil, func(o *Options) {
				o.Authorizer, o.Logger, o.Audit, o.AuditLevels = allowAll{}, nil, log, levels
			})
			cpu := testutil.ProcessCPU(b)
			benchmarkPublish(b, env)
			s := log.Stats() // before the disconnect, which Close may drop
			if err := log.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			cpu = testutil.ProcessCPU(b) - cpu
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			if s.Refused > 0 || s.Dropped > 0 {
				b.Fatalf("audit records lost: %+v", s)
			}
		})
	}
}
