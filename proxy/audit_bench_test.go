package proxy

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
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
			cpu := auditBenchCPU(b)
			benchmarkPublish(b, env)
			s := log.Stats() // before the disconnect, which Close may drop
			if err := log.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			cpu = auditBenchCPU(b) - cpu
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			if s.Refused > 0 || s.Dropped > 0 {
				b.Fatalf("audit records lost: %+v", s)
			}
		})
	}
}

// auditBenchCPU is the process's user and system CPU time so far.
func auditBenchCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
