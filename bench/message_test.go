package bench

import (
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	payload := make([]byte, 64)
	h := header{publisher: 7, channel: 1234, seq: 1 << 40, intended: time.Unix(1700000000, 123456789)}
	h.encode(payload)
	got, ok := decodeHeader(payload)
	if !ok || got.publisher != h.publisher || got.channel != h.channel || got.seq != h.seq || !got.intended.Equal(h.intended) {
		t.Fatalf("decoded %+v, %v from %+v", got, ok, h)
	}
	if _, ok := decodeHeader([]byte("someone else's message, long enough")); ok {
		t.Fatal("a foreign payload decoded")
	}
}

// TestStreamCounts: each row is the order a subscriber received a stream
// in, and what it must count once the publisher was acknowledged for
// `acked` messages.
func TestStreamCounts(t *testing.T) {
	for _, c := range []struct {
		name                         string
		seen                         []uint64
		acked                        uint64
		lost, duplicates, outOfOrder uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, 0, 0, 0},
		{"lost in the middle", []uint64{0, 1, 3}, 4, 1, 0, 0},
		{"lost at the end", []uint64{0, 1}, 4, 2, 0, 0},
		{"lost at the start", []uint64{2, 3}, 4, 2, 0, 0},
		{"duplicated", []uint64{0, 1, 1, 2, 2, 2, 3}, 4, 0, 3, 0},
		{"out of order", []uint64{0, 2, 1, 3}, 4, 0, 0, 1},
		{"late, then again", []uint64{0, 2, 1, 1, 3}, 4, 0, 1, 1},
		{"nothing", nil, 3, 3, 0, 0},
		{"more than acknowledged (a failed publish that arrived)", []uint64{0, 1, 2}, 2, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s stream
			for _, q := range c.seen {
				s.see(q)
			}
			if got := s.lost(c.acked); got != c.lost || s.duplicates != c.duplicates || s.outOfOrder != c.outOfOrder {
				t.Fatalf("lost %d, duplicates %d, out of order %d; want %d, %d, %d",
					got, s.duplicates, s.outOfOrder, c.lost, c.duplicates, c.outOfOrder)
			}
		})
	}
}
