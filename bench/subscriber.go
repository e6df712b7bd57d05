package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// subscriber is one subscribing connection: it checks every stream it
// receives and records each message's latency.
type subscriber struct {
	c        *conn
	tenant   int
	channels []int // channel indexes of its tenant

	streams map[streamKey]*stream
	latency *hdrhistogram.Histogram // µs; allocated at the first message
	unique  atomic.Uint64           // for progress and the end of the drain
	foreign uint64                  // messages without the benchmark's header
	readErr error                   // why reading stopped, if not because the run ended
	done    chan struct{}
}

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3
// significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 600_000_000, 3) }

// subscribeChunk bounds the names of one SUBSCRIBE: thousands of channels
// go in several commands, pipelined, rather than one request of hundreds
// of kilobytes.
const subscribeChunk = 500

// NoiseChunk is how many patterns one of HoldPatterns's PSUBSCRIBEs holds.
const NoiseChunk = subscribeChunk

func newSubscriber(ctx context.Context, o *Options, j int) (*subscriber, error) {
	s := &subscriber{tenant: j % len(o.Tenants), channels: o.subscriberChannels(j),
		streams: make(map[streamKey]*stream), done: make(chan struct{})}
	c, err := dial(ctx, o, s.tenant)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", j, err)
	}
	s.c = c
	verb := "SUBSCRIBE"
	if o.Patterns {
		verb = "PSUBSCRIBE"
	}
	for chunk := range slices.Chunk(s.channels, subscribeChunk) {
		args := []string{verb}
		for _, ch := range chunk {
			args = append(args, o.subscribeName(s.tenant, ch))
		}
		c.command(args...)
	}
	if err := c.w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	var p push
	var buf []byte
	for range s.channels {
		if err := c.readPush(&p, &buf); err != nil {
			c.Close()
			return nil, fmt.Errorf("subscriber %d: %s: %w", j, verb, err)
		}
	}
	return s, nil
}

// receive reads until the connection closes; stop closes it.
func (s *subscriber) receive(stopping *atomic.Bool) {
	defer close(s.done)
	var p push
	var buf []byte
	for {
		if err := s.c.readPush(&p, &buf); err != nil {
			if !stopping.Load() {
				s.readErr = err
			}
			return
		}
		if bytes.Equal(p.kind, []byte("message")) || bytes.Equal(p.kind, []byte("pmessage")) {
			s.see(p.payload, time.Now())
		}
	}
}

func (s *subscriber) see(payload []byte, now time.Time) {
	h, ok := decodeHeader(payload)
	if !ok {
		s.foreign++
		return
	}
	k := keyOf(h.publisher, h.channel)
	st := s.streams[k]
	if st == nil {
		st = &stream{}
		s.streams[k] = st
	}
	before := st.unique
	st.see(h.seq)
	if st.unique != before {
		s.unique.Add(1)
	}
	if s.latency == nil {
		s.latency = newLatencyHistogram()
	}
	_ = s.latency.RecordValue(max(now.Sub(h.intended).Microseconds(), 1)) // beyond 10 minutes: not recorded
}
