package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// publisher is one publishing connection, publishing to its tenant's
// channels in turn.
type publisher struct {
	c       *conn
	id      uint32
	tenant  int
	names   []string // its tenant's channels, as written
	first   int      // the first channel it publishes to
	count   int      // how many, from first
	payload []byte
	seq     []uint64 // next sequence number per channel
	// acked counts, per channel, the publishes the server acknowledged;
	// read once the publisher is done.
	acked  []uint64
	errors atomic.Uint64
	total  atomic.Uint64 // acknowledged, for progress
	err    error         // a connection failure that ended it early
}

func newPublisher(ctx context.Context, o *Options, p int) (*publisher, error) {
	pub := &publisher{id: uint32(p), tenant: p % len(o.Tenants), payload: make([]byte, o.PayloadSize),
		seq: make([]uint64, o.Channels), acked: make([]uint64, o.Channels)}
	pub.first, pub.count = o.publisherChannels(p)
	for i := range o.Channels {
		pub.names = append(pub.names, o.channelName(pub.tenant, i))
	}
	for i := HeaderSize; i < len(pub.payload); i++ {
		pub.payload[i] = 'x'
	}
	c, err := dial(ctx, o, pub.tenant)
	if err != nil {
		return nil, fmt.Errorf("publisher %d: %w", p, err)
	}
	pub.c = c
	return pub, nil
}

// send encodes the publish of the i-th message, meant to be sent at
// intended, and returns its channel.
func (p *publisher) send(i uint64, intended time.Time) uint32 {
	ch := uint32(p.first + int(i%uint64(p.count)))
	header{publisher: p.id, channel: ch, seq: p.seq[ch], intended: intended}.encode(p.payload)
	p.seq[ch]++
	p.c.publish(p.names[ch], p.payload)
	return ch
}

// reply reads the reply to a publish on channel ch; the error is the
// connection's, a refused publish only counts.
func (p *publisher) reply(ch uint32) error {
	_, err := p.c.readReply()
	if _, refused := err.(errReply); refused {
		p.errors.Add(1)
		return nil
	}
	if err == nil {
		p.acked[ch]++
		p.total.Add(1)
	}
	return err
}

// closedLoop sends batches of pipeline publishes and waits for their
// replies, until end.
func (p *publisher) closedLoop(end time.Time, pipeline int) {
	batch := make([]uint32, pipeline)
	for i := uint64(0); time.Now().Before(end); {
		now := time.Now()
		for k := range batch {
			batch[k] = p.send(i, now)
			i++
		}
		if p.err = p.c.w.Flush(); p.err != nil {
			return
		}
		for _, ch := range batch {
			if p.err = p.reply(ch); p.err != nil {
				return
			}
		}
	}
}

// openLoop sends message i at start + i/rate, whatever the replies do, with
// at most pipeline publishes unanswered; the latency subscribers measure
// starts at that intended time, so that a stall shows.
func (p *publisher) openLoop(start, end time.Time, rate float64, pipeline int) {
	inflight := make(chan uint32, pipeline)
	replies := make(chan error, 1)
	go func() {
		for ch := range inflight {
			if err := p.reply(ch); err != nil {
				replies <- err
				for range inflight { // let the writer finish
				}
				return
			}
		}
		replies <- nil
	}()
	interval := time.Duration(float64(time.Second) / rate)
	for i := uint64(0); ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if !intended.Before(end) {
			break
		}
		if wait := time.Until(intended); wait > 0 {
			if p.err = p.c.w.Flush(); p.err != nil {
				break
			}
			time.Sleep(wait)
		}
		if len(inflight) == cap(inflight) {
			if p.err = p.c.w.Flush(); p.err != nil {
				break
			}
		}
		inflight <- p.send(i, intended)
	}
	if p.err == nil {
		p.err = p.c.w.Flush()
	}
	close(inflight)
	if err := <-replies; p.err == nil {
		p.err = err
	}
}
