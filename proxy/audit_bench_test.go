package proxy

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pubgate/pubgate/audit"
)

// BenchmarkPublishAudit measures PUBLISH through a whole session (as
// BenchmarkPublishPolicy, policy off) with publishes recorded at each level
// in a real audit file, fsynced in groups with the default bounds (1 s or
// 1,000 records). The queue is sized to the run, so this is the cost paid
// on the session's goroutine, with the writer running beside it.
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
			benchmarkPublish(b, env)
			b.StopTimer()
			if s := log.Stats(); s.Refused > 0 || s.Dropped > 0 {
				b.Fatalf("audit records lost: %+v", s)
			}
		})
	}
}
