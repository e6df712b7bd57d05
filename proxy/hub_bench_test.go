package proxy

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// countingWriter discards what it is given, counting the bytes.
type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// BenchmarkFanout measures the hub's path for one engine message: look up
// the subscription, encode the frame once, and queue it to every local
// subscriber's outbox, while each subscriber's writer drains to io.Discard.
func BenchmarkFanout(b *testing.B) {
	for _, subscribers := range []int{1, 100, 10000} {
		for _, payload := range []int{16, 1024} {
			b.Run(fmt.Sprintf("subscribers=%d/payload=%d", subscribers, payload), func(b *testing.B) {
				benchmarkFanout(b, subscribers, payload)
			})
		}
	}
}

func benchmarkFanout(b *testing.B, subscribers, payload int) {
	broker := upstream.NewMemory()
	defer broker.Close()
	h := NewHub(broker, time.Second, zap.NewNop())
	ns := NewNamespace("acme", "acme:", "")
	entries, err := h.acquire(b.Context(), []subscription{{kind: upstream.KindChannel, clientName: "orders", ns: ns}})
	if err != nil {
		b.Fatal(err)
	}
	var written atomic.Int64
	acme := newTenant("acme", &config.Tenant{Prefix: "acme:"}, config.Namespace{Mode: "rewrite"}, audit.Levels{}) // deliveries are counted per tenant
	for range subscribers {
		s := &session{tenant: acme}
		s.out = newOutbox(countingWriter{&written}, 1<<40, 1<<40, time.Hour, func(string) {})
		defer s.out.close()
		h.attach(entries[0], s, func() {})
	}
	// Seq 1 is after every member's subscribe (the engine received nothing).
	msg := upstream.Message{Kind: upstream.KindChannel, Channel: []byte("acme:orders"), Payload: []byte(strings.Repeat("x", payload)), Seq: 1}
	burst := []upstream.Message{msg}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.dispatch(burst)
	}
	b.StopTimer()
	frame := int64(len(encodeMessage(resp2, msg.Kind, "", []byte("orders"), msg.Payload)))
	for written.Load() < frame*int64(subscribers) {
		time.Sleep(time.Millisecond) // at least the last message must reach everyone
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subscribers), "ns/delivery")
}
