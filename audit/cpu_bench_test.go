package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// BenchmarkRecordCPU measures what recording a publish at metadata costs
// the process in CPU, all goroutines together: the session's part (a
// record built as proxy's recordDecision builds it, and Record) and the
// writer's (encoding, chaining, write and group fsync into a real file,
// with the default bounds), until Close has written, sealed and fsynced
// all b.N records. cpu-ns/record is the process's user+system CPU time
// over that span divided by b.N (garbage collection included); ns/op is
// wall time, which on an idle machine is bounded by the slower of the two
// goroutines.
func BenchmarkRecordCPU(b *testing.B) {
	file, err := OpenFile(FileOptions{Path: filepath.Join(b.TempDir(), "audit.log"), MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(Options{Key: testKey, File: file, FailClosed: true, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testutil.ProcessCPU(b)
	for range b.N {
		r := Record{Event: EventAuthz, Outcome: Allow, Action: "publish", Channel: "orders.eu",
			Revision: "3089772db610"}
		r.SetPayload(Metadata, payload)
		r.Time = time.Now()
		r.ClientID, r.ClientAddr = 42, "127.0.0.1:50312"
		r.Tenant, r.User, r.AuthMethod = "acme", "alice", "password"
		if err := l.Record(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu = testutil.ProcessCPU(b) - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
	if s := l.Stats(); s.Written != int64(b.N) {
		b.Fatalf("written %d of %d", s.Written, b.N)
	}
}
