package fanout

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is a client's bounded queue of encoded frames, drained by a
// writer goroutine of its own. Pushes never block: the hub fans out to many
// outboxes from an upstream connection's goroutine, so a client that stops
// reading must cost the others nothing. Frames are shared between outboxes
// and never modified.
//
// The writer runs only while there is output: the first frame starts it,
// and it ends after writerLinger without any, so that an idle connection
// (most subscribers, most of the time) holds no goroutine and no buffer.
// The writer takes everything queued at once and writes it coalesced; the
// hub queues a whole burst of messages before it wakes the writer (see
// queueMessage and kick), so that a burst costs one write, not one each.
//
// The limits follow Redis's client-output-buffer-limit: over the hard limit,
// or over the soft limit for longer than softFor, the outbox refuses further
// frames and calls onLimit once (which disconnects the client).
type Outbox struct {
	mu        sync.Mutex
	frames    [][]byte
	spare     [][]byte // the writer's last batch, reused to avoid allocation
	queued    int      // bytes pushed and not yet written
	softSince time.Time
	closed    bool
	w         io.Writer
	writing   bool          // a writer goroutine runs
	wake      chan struct{} // wakes a writer that waits for frames
	// kickOwed says that a fan-out queued frames without waking (or
	// starting) the writer, and will call kick once its burst is queued.
	kickOwed bool
	stopped  chan struct{} // closed once the outbox is closed and its writer gone
	// proto is the protocol the client speaks at the end of the queue: the
	// client's session sets it with the reply that switches it (HELLO,
	// RESET), so every message is encoded as the client expects at its
	// position.
	proto int32

	hard, soft int
	softFor    time.Duration
	linger     time.Duration // writerLinger; tests make it longer
	onLimit    func(reason string)
}

// Limits are an outbox's output-buffer limits, in bytes queued and not yet
// written (Redis's client-output-buffer-limit).
type Limits struct {
	Hard, Soft int
	SoftFor    time.Duration // how long the queue may stay over Soft
}

// NewOutbox queues frames for w, a client connection the outbox's writer
// alone writes to. onLimit is called once, from whichever goroutine pushed,
// when the outbox closes for exceeding a limit; it must not block. writes,
// if not nil, counts the Write calls made to w.
func NewOutbox(w io.Writer, l Limits, onLimit func(reason string), writes *atomic.Int64) *Outbox {
	if writes != nil {
		w = countWrites{w, writes}
	}
	return &Outbox{w: w, hard: l.Hard, soft: l.Soft, softFor: l.SoftFor, onLimit: onLimit, linger: writerLinger,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), proto: RESP2}
}

// Stopped is closed once the outbox is closed and its writer is done.
func (o *Outbox) Stopped() <-chan struct{} { return o.stopped }

// Queued is how many bytes the outbox holds for its client.
func (o *Outbox) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued
}

// writerLinger is how long a writer waits for more frames before it ends.
const writerLinger = 2 * time.Second

// Push queues the client's replies, encoded in proto, which messages
// queued after them will use too. An empty frame only sets proto. Push
// reports false when the outbox no longer accepts frames (closed, or just
// closed for exceeding a limit).
func (o *Outbox) Push(frame []byte, proto int32) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.proto = proto
	return o.enqueue(frame)
}

// PushNotice queues a frame that reads the same in RESP2 and RESP3 (an
// error), from any goroutine.
func (o *Outbox) PushNotice(frame []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	return o.enqueue(frame)
}

// queueMessage queues a message in the protocol the client speaks at this
// point of its stream, without waking the writer: a fan-out queues a whole
// burst first, so that the writer finds it all and writes it at once. When
// queueMessage reports kick, the caller owes the outbox one call of kick,
// once it queued the burst; until then every further queueMessage reports
// false, so that a burst kicks each outbox once. ok is false when the
// outbox no longer accepts frames.
func (o *Outbox) queueMessage(m *messageFrames) (kick, ok bool) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false, false
	}
	frame := m.frame(o.proto)
	// As in enqueue: a running writer needs waking only if the queue was
	// empty, one that is not running needs starting.
	kick = !o.kickOwed && (len(o.frames) == 0 || !o.writing)
	o.kickOwed = o.kickOwed || kick
	reason := o.add(frame)
	o.mu.Unlock()
	if reason != "" {
		o.onLimit(reason)
		return kick, false
	}
	return kick, true
}

// kick wakes, or starts, the writer for what queueMessage queued.
func (o *Outbox) kick() {
	o.mu.Lock()
	o.kickOwed = false
	if !o.writing {
		// Closed with frames, close started the writer; without, there is
		// nothing to write.
		if len(o.frames) > 0 && !o.closed {
			o.writing = true
			go o.writeLoop()
		}
		o.mu.Unlock()
		return
	}
	o.mu.Unlock()
	o.signal()
}

// signal wakes a writer that waits for frames, or will look again.
func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// enqueue appends a frame and checks the limits; it is called with o.mu
// held and releases it.
func (o *Outbox) enqueue(frame []byte) bool {
	if len(frame) == 0 {
		o.mu.Unlock()
		return true
	}
	// A writer waits only after finding the queue empty, so only the push
	// that makes it non-empty needs to wake it, or start one. Frames a
	// fan-out queued without waking it (kickOwed) do not count: the pusher
	// does not wait for the fan-out's kick.
	wake := (len(o.frames) == 0 || o.kickOwed) && o.writing
	if !o.writing {
		o.writing = true
		go o.writeLoop()
	}
	reason := o.add(frame)
	o.mu.Unlock()
	if reason != "" {
		o.onLimit(reason)
		return false
	}
	if wake {
		o.signal()
	}
	return true
}

// add queues a frame and checks the limits, with o.mu held. Over a limit
// it closes the outbox, drops what it held and returns why.
func (o *Outbox) add(frame []byte) (reason string) {
	o.frames = append(o.frames, frame)
	o.queued += len(frame)
	if reason = o.overLimit(); reason != "" {
		o.closed = true
		clear(o.frames)
		o.frames = o.frames[:0]
	}
	return reason
}

// overLimit is called with o.mu held after growing the queue.
func (o *Outbox) overLimit() string {
	if o.queued > o.hard {
		return "output buffer over the hard limit"
	}
	if o.queued <= o.soft {
		o.softSince = time.Time{}
		return ""
	}
	now := time.Now()
	if o.softSince.IsZero() {
		o.softSince = now
		return ""
	}
	if now.Sub(o.softSince) > o.softFor {
		return "output buffer over the soft limit for too long"
	}
	return ""
}

// Close stops accepting frames; the writer still writes what is queued,
// started here if a fan-out's kick is still to come.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	if !o.writing {
		if len(o.frames) == 0 {
			o.markStopped()
		} else {
			o.writing = true
			go o.writeLoop()
		}
	}
	o.mu.Unlock()
	o.signal()
}

// markStopped is called with o.mu held once closed and without a writer.
func (o *Outbox) markStopped() {
	select {
	case <-o.stopped:
	default:
		close(o.stopped)
	}
}

// writeLoop writes queued frames until there are none for writerLinger,
// the outbox is closed and empty, or a write fails (the outbox then closes,
// and what it still holds is dropped: the connection is gone). Small frames
// are copied into one buffer so that a burst of messages costs a few large
// writes instead of one syscall (and one TLS record) each; the buffer is
// borrowed for each batch.
func (o *Outbox) writeLoop() {
	linger := time.NewTimer(o.linger)
	defer linger.Stop()
	for {
		batch, ok := o.next(linger)
		if !ok {
			return
		}
		written, err := o.write(batch)
		o.done(batch, written)
		if err != nil {
			o.fail()
			return
		}
	}
}

func (o *Outbox) write(batch [][]byte) (int, error) {
	if len(batch) == 1 {
		return o.w.Write(batch[0])
	}
	buf := coalesceBuffers.Get().(*[]byte)
	defer coalesceBuffers.Put(buf)
	return writeCoalesced(o.w, batch, buf)
}

// countWrites counts the Write calls made to a client connection.
type countWrites struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWrites) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.w.Write(p)
}

// fail ends the outbox after a write error.
func (o *Outbox) fail() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed, o.writing = true, false
	clear(o.frames)
	o.frames = o.frames[:0]
	o.markStopped()
}

// next waits for frames and takes them all; ok is false when the writer is
// to end: the outbox is closed and drained, or nothing came for a linger.
func (o *Outbox) next(linger *time.Timer) (batch [][]byte, ok bool) {
	linger.Reset(o.linger)
	for idle := false; ; {
		o.mu.Lock()
		if len(o.frames) > 0 {
			batch, o.frames, o.spare = o.frames, o.spare, nil
			o.mu.Unlock()
			return batch, true
		}
		if o.closed || idle {
			o.writing = false
			if o.closed {
				o.markStopped()
			}
			o.mu.Unlock()
			return nil, false
		}
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-linger.C:
			idle = true
		}
	}
}

// done accounts for a written batch and keeps its slice for reuse.
func (o *Outbox) done(batch [][]byte, written int) {
	clear(batch) // let the shared frames be collected
	o.mu.Lock()
	o.queued -= written
	if o.queued <= o.soft {
		o.softSince = time.Time{}
	}
	o.spare = batch[:0]
	o.mu.Unlock()
}

// coalesceBytes is the size of the writer's copy buffer; larger frames are
// written directly.
const coalesceBytes = 64 << 10

// coalesceBuffers are the writers' copy buffers.
var coalesceBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, coalesceBytes)
	return &b
}}

func writeCoalesced(w io.Writer, frames [][]byte, buf *[]byte) (int, error) {
	written := 0
	flush := func() error {
		if len(*buf) == 0 {
			return nil
		}
		n, err := w.Write(*buf)
		written += n
		*buf = (*buf)[:0]
		return err
	}
	for _, f := range frames {
		if len(*buf)+len(f) > coalesceBytes {
			if err := flush(); err != nil {
				return written, err
			}
		}
		if len(f) >= coalesceBytes {
			n, err := w.Write(f)
			written += n
			if err != nil {
				return written, err
			}
			continue
		}
		*buf = append(*buf, f...)
	}
	return written, flush()
}
