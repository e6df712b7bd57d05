package proxy

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

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
	ns := NewNamespace("acme", "acme:")
	entries, err := h.acquire(b.Context(), []subscription{{kind: upstream.KindChannel, clientName: "orders", ns: ns}})
	if err != nil {
		b.Fatal(err)
	}
	for range subscribers {
		s := &session{}
		s.out = newOutbox(1<<40, 1<<40, time.Hour, func(string) {})
		go func() { _ = s.out.writeLoop(io.Discard) }()
		defer s.out.close()
		h.attach(entries[0], s, func() {})
	}
	msg := upstream.Message{Kind: upstream.KindChannel, Channel: "acme:orders", Payload: make([]byte, payload)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.dispatch(msg)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subscribers), "ns/delivery")
}
