package proxy

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/fanout"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// countingWriter discards what it is given, counting the bytes.
type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// BenchmarkFanout measures the hub's path for engine messages: look up
// the subscription, encode each frame once, and queue it to every local
// subscriber's outbox, while each subscriber's writer drains to a
// counting io.Discard. burst is how many messages the engine hands the hub
// at once; an op is one burst, ns/delivery is per message and subscriber,
// writes/delivery how many Write calls the writers made per message
// delivered (coalescing).
func BenchmarkFanout(b *testing.B) {
	for _, subscribers := range []int{1, 100, 10000} {
		for _, payload := range []int{16, 1024} {
			for _, burst := range []int{1, 16} {
				b.Run(fmt.Sprintf("subscribers=%d/payload=%d/burst=%d", subscribers, payload, burst), func(b *testing.B) {
					benchmarkFanout(b, subscribers, payload, burst)
				})
			}
		}
	}
}

func benchmarkFanout(b *testing.B, subscribers, payload, burstLen int) {
	broker := &handlerBroker{Broker: upstream.NewMemory()}
	defer broker.Close()
	h := fanout.NewHub(broker, time.Second, zap.NewNop())
	ns := NewNamespace("acme", "acme:", "")
	entries, err := h.Acquire(b.Context(), []fanout.Subscription{{Kind: upstream.KindChannel, ClientName: "orders", Upstream: "acme:orders", Names: ns}})
	if err != nil {
		b.Fatal(err)
	}
	var written, writes atomic.Int64
	acme := newTenant("acme", TenantOptions{Prefix: "acme:"}, NamespaceOptions{}, audit.Levels{}) // deliveries are counted per tenant
	for range subscribers {
		out := fanout.NewOutbox(countingWriter{&written}, fanout.Limits{Hard: 1 << 40, Soft: 1 << 40, SoftFor: time.Hour}, func(string) {}, &writes)
		defer out.Close() //nolint:gocritic // deferInLoop: every outbox lives until the benchmark ends
		h.Attach(entries[0], out, &acme.stats.delivered, func() {})
	}
	// Seq 1 is after every member's subscribe (the engine received nothing).
	msg := upstream.Message{Kind: upstream.KindChannel, Channel: []byte("acme:orders"), Payload: []byte(strings.Repeat("x", payload)), Seq: 1}
	burst := make([]upstream.Message, burstLen)
	for i := range burst {
		burst[i] = msg
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		broker.handler(burst)
	}
	b.StopTimer()
	frame := int64(len(fanout.EncodeMessage(resp2, msg.Kind, "", []byte("orders"), msg.Payload)))
	for written.Load() < frame*int64(subscribers)*int64(b.N*burstLen) {
		time.Sleep(time.Millisecond) // every message must reach everyone
	}
	deliveries := float64(b.N) * float64(burstLen) * float64(subscribers)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(writes.Load())/deliveries, "writes/delivery")
}

// handlerBroker keeps the handler, so that a benchmark hands it bursts.
type handlerBroker struct {
	upstream.Broker
	handler upstream.Handler
}

func (b *handlerBroker) SetHandler(h upstream.Handler) {
	b.handler = h
	b.Broker.SetHandler(h)
}
