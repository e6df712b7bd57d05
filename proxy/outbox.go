package proxy

import (
	"io"
	"sync"
	"time"
)

// outbox is a session's bounded queue of encoded frames, drained by a
// writer goroutine of its own. push never blocks: the hub fans out to many
// outboxes from an upstream connection's goroutine, so a client that stops
// reading must cost the others nothing. Frames are shared between outboxes and never modified.
//
// The writer runs only while there is output: the first frame starts it,
// and it ends after writerLinger without any, so that an idle connection
// (most subscribers, most of the time) holds no goroutine and no buffer.
//
// The limits follow Redis's client-output-buffer-limit: over the hard limit,
// or over the soft limit for longer than softFor, the outbox refuses further
// frames and calls onLimit once (which disconnects the client).
type outbox struct {
	mu        sync.Mutex
	frames    [][]byte
	spare     [][]byte // the writer's last batch, reused to avoid allocation
	queued    int      // bytes pushed and not yet written
	softSince time.Time
	closed    bool
	w         io.Writer
	writing   bool          // a writer goroutine runs
	wake      chan struct{} // wakes a writer that waits for frames
	stopped   chan struct{} // closed once the outbox is closed and its writer gone
	// proto is the protocol the client speaks at the end of the queue: the
	// session sets it with the reply that switches it (HELLO, RESET), so
	// every message is encoded as the client expects at its position.
	proto int32

	hard, soft int
	softFor    time.Duration
	onLimit    func(reason string)
}

func newOutbox(w io.Writer, hard, soft int, softFor time.Duration, onLimit func(string)) *outbox {
	return &outbox{w: w, hard: hard, soft: soft, softFor: softFor, onLimit: onLimit,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), proto: resp2}
}

// writerLinger is how long a writer waits for more frames before it ends.
const writerLinger = 2 * time.Second

// push queues the session's replies, encoded in proto, which messages
// queued after them will use too. An empty frame only sets proto. push
// reports false when the outbox no longer accepts frames (closed, or just
// closed for exceeding a limit).
func (o *outbox) push(frame []byte, proto int32) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.proto = proto
	return o.enqueue(frame)
}

// pushNotice queues a frame that reads the same in RESP2 and RESP3 (an
// error) from outside the session's reader.
func (o *outbox) pushNotice(frame []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	return o.enqueue(frame)
}

// pushMessage queues a message in the protocol the client speaks at this
// point of its stream.
func (o *outbox) pushMessage(m *messageFrames) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	return o.enqueue(m.frame(o.proto))
}

// enqueue appends a frame and checks the limits; it is called with o.mu
// held and releases it.
func (o *outbox) enqueue(frame []byte) bool {
	if len(frame) == 0 {
		o.mu.Unlock()
		return true
	}
	// A writer waits only after finding the queue empty, so only the push
	// that makes it non-empty needs to wake it, or start one.
	wake := len(o.frames) == 0 && o.writing
	if !o.writing {
		o.writing = true
		go o.writeLoop()
	}
	o.frames = append(o.frames, frame)
	o.queued += len(frame)
	reason := o.overLimit()
	if reason != "" {
		o.closed = true
		clear(o.frames)
		o.frames = o.frames[:0]
	}
	o.mu.Unlock()
	if reason != "" {
		o.onLimit(reason)
		return false
	}
	if wake {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// overLimit is called with o.mu held after growing the queue.
func (o *outbox) overLimit() string {
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

// close stops accepting frames; the writer still writes what is queued.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	if !o.writing {
		o.markStopped()
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// markStopped is called with o.mu held once closed and without a writer.
func (o *outbox) markStopped() {
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
func (o *outbox) writeLoop() {
	linger := time.NewTimer(writerLinger)
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

func (o *outbox) write(batch [][]byte) (int, error) {
	if len(batch) == 1 {
		return o.w.Write(batch[0])
	}
	buf := coalesceBuffers.Get().(*[]byte)
	defer coalesceBuffers.Put(buf)
	return writeCoalesced(o.w, batch, buf)
}

// fail ends the outbox after a write error.
func (o *outbox) fail() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed, o.writing = true, false
	clear(o.frames)
	o.frames = o.frames[:0]
	o.markStopped()
}

// next waits for frames and takes them all; ok is false when the writer is
// to end: the outbox is closed and drained, or nothing came for a linger.
func (o *outbox) next(linger *time.Timer) (batch [][]byte, ok bool) {
	linger.Reset(writerLinger)
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
func (o *outbox) done(batch [][]byte, written int) {
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
