package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// BenchmarkLogger measures the audit writer's throughput: b.N metadata
// records of a publish through Record into a real file with group fsync
// (the default bounds), until Close has written, sealed and fsynced them.
func BenchmarkLogger(b *testing.B) {
	file, err := OpenFile(FileOptions{Path: filepath.Join(b.TempDir(), "audit.log"), MaxSize: 100 << 20})
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(Options{Key: testKey, File: file, FailClosed: true})
	if err != nil {
		b.Fatal(err)
	}
	r := Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice", AuthMethod: "password",
		ClientID: 42, ClientAddr: "127.0.0.1:50312", Action: "publish", Channel: "orders.eu", Revision: "3089772db610"}
	r.SetPayload(Metadata, make([]byte, 64))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := l.Record(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if s := l.Stats(); s.Written != int64(b.N) {
		b.Fatalf("written %d of %d", s.Written, b.N)
	}
}

// BenchmarkChain measures encoding and chaining one record, without the
// disk: the cost names add (a UTF-8 check; for a name that is not UTF-8,
// its base64 too).
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct{ name, channel string }{{"utf8", "orders.eu"}, {"not_utf8", "orders.\xff\xfe"}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newChain(testKey)
			r := Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice", AuthMethod: "password",
				ClientID: 42, ClientAddr: "127.0.0.1:50312", Action: "publish", Channel: bc.channel, Revision: "3089772db610"}
			r.SetPayload(Metadata, make([]byte, 64))
			var buf []byte
			b.ReportAllocs()
			cpu := testutil.ProcessCPU(b)
			for range b.N {
				buf = c.next(buf[:0], &r)
			}
			b.ReportMetric(float64((testutil.ProcessCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkEncode measures encoding one record, without the chain's HMAC.
func BenchmarkEncode(b *testing.B) {
	var e encoder
	r := Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice", AuthMethod: "password",
		ClientID: 42, ClientAddr: "127.0.0.1:50312", Action: "publish", Channel: "orders.eu", Revision: "3089772db610"}
	r.SetPayload(Metadata, make([]byte, 64))
	prev := []byte(Genesis)
	var buf []byte
	b.ReportAllocs()
	cpu := testutil.ProcessCPU(b)
	for i := range b.N {
		r.Time = r.Time.Add(time.Duration(i))
		buf = e.appendRecord(buf[:0], &r, uint64(i), prev)
	}
	b.ReportMetric(float64((testutil.ProcessCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
