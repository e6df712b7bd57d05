package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"
)

// pipeline auto-pipelines the publications of every session to one node on
// one long-lived connection. Sessions append their encoded commands to a
// shared buffer; whoever finds no write in progress becomes the writer and
// writes everything queued, once; what queues meanwhile goes out from a
// goroutine of the pipeline's, a write carrying whatever accumulated
// during the one before. A reader
// goroutine parses the replies in order and hands each to its publication's
// call.
//
// A connection that fails fails exactly the publications written on it and
// not yet answered (Redis may or may not have run them); what was queued
// but not written goes out on the next connection, dialled by the next
// writer. A failed dial fails what is queued: while Redis is down, one dial
// at a time is in progress, and what queued meanwhile shares its outcome.
type pipeline struct {
	opt     *redis.Options
	addr    string
	name    string        // for errors: addr, or what stands for it
	timeout time.Duration // how long Redis may take to answer

	mu      sync.Mutex
	out     []byte  // encoded commands not yet written
	spare   []byte  // the previous write's buffer, for reuse
	queued  []entry // the publications of out, in order
	conn    *pipeConn
	writing bool
	closed  bool
	sharded bool // channels travel as shard channels (upstream.cluster.sharded)
}

// entry is one command awaiting its reply: the publication at pos of call.
type entry struct {
	c   *call
	pos int32
}

// pipeConn is one connection of a pipeline and the entries written on it;
// its fields are guarded by the pipeline's mu.
type pipeConn struct {
	nc       net.Conn
	inflight []entry // written, not answered; from head on
	head     int
	// since is when the oldest unanswered entry became the oldest: Redis
	// is overdue when it has not answered it for the pipeline's timeout.
	since time.Time
	dead  bool
}

// maxSpareBytes bounds the write buffer a pipeline keeps for the next
// write.
const maxSpareBytes = 1 << 20

func newPipeline(opt *redis.Options, addr string, timeout time.Duration, sharded bool) *pipeline {
	return &pipeline{opt: opt, addr: addr, name: addr, timeout: timeout, sharded: sharded}
}

// submit queues the publications of batch at positions and, unless another
// goroutine is writing, writes until the queue is empty. ask sends each
// after ASKING (a cluster's ASK redirect).
func (p *pipeline) submit(c *call, batch []Publication, positions []int32, ask bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		for _, pos := range positions {
			c.complete(pos, 0, ErrClosed)
		}
		return
	}
	for _, pos := range positions {
		pub := &batch[pos]
		if ask {
			p.out = append(p.out, askingCommand...)
			p.queued = append(p.queued, entry{c, -1})
		}
		p.out = appendPublish(p.out, pub, pub.Kind == KindShard || p.sharded)
		p.queued = append(p.queued, entry{c, pos})
	}
	if p.writing {
		p.mu.Unlock()
		return
	}
	// The caller writes what is queued, its own publications with it, once:
	// what others queue meanwhile goes out from a goroutine of the
	// pipeline's, so that no session writes for others for long.
	p.writing = true
	p.writeOnce()
	if len(p.queued) > 0 {
		go p.writeRest()
	} else {
		p.writing = false
	}
	p.mu.Unlock()
}

// writeRest writes until nothing is queued, then lets the next submitter
// write.
func (p *pipeline) writeRest() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queued) > 0 {
		p.writeOnce()
	}
	p.writing = false
}

var askingCommand = appendCommand(nil, "ASKING")

// appendPublish encodes a PUBLISH or SPUBLISH; the payload is copied, so the
// caller may reuse it once Publish returns.
func appendPublish(b []byte, pub *Publication, shard bool) []byte {
	if shard {
		b = append(b, "*3\r\n$8\r\nSPUBLISH\r\n"...)
	} else {
		b = append(b, "*3\r\n$7\r\nPUBLISH\r\n"...)
	}
	b = redcon.AppendBulkString(b, pub.Channel)
	return redcon.AppendBulk(b, pub.Payload)
}

// writeOnce writes what is queued in one write, dialling first if there
// is no connection; it is called with p.mu held by the one writer, and
// releases it while dialling and writing.
func (p *pipeline) writeOnce() {
	conn := p.conn
	if conn == nil {
		var err error
		if conn, err = p.connect(); err != nil {
			p.failQueued(err)
			return
		}
	}
	buf := p.out
	p.out = p.spare[:0]
	if conn.head == len(conn.inflight) {
		conn.since = time.Now()
	}
	conn.inflight = append(conn.inflight, p.queued...)
	clear(p.queued)
	p.queued = p.queued[:0]
	p.mu.Unlock()
	_ = conn.nc.SetWriteDeadline(time.Now().Add(p.timeout))
	_, err := conn.nc.Write(buf)
	p.mu.Lock()
	if cap(buf) <= maxSpareBytes {
		p.spare = buf[:0]
	} else {
		p.spare = nil // a burst of large messages: do not keep its buffer
	}
	if err != nil {
		p.drop(conn, fmt.Errorf("upstream: writing to redis at %s: %w", p.name, err))
	}
}

// connect dials a new connection and starts its reader; it is called with
// p.mu held and releases it while dialling.
func (p *pipeline) connect() (*pipeConn, error) {
	p.mu.Unlock()
	nc, err := dialNode(context.Background(), p.opt, p.addr)
	p.mu.Lock()
	if err == nil && p.closed {
		nc.Close()
		err = ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: connecting to redis at %s: %w", p.name, err)
	}
	conn := &pipeConn{nc: nc}
	p.conn = conn
	go p.read(conn)
	return conn, nil
}

// failQueued fails every publication not yet written (p.mu held).
func (p *pipeline) failQueued(err error) {
	for _, e := range p.queued {
		e.c.complete(e.pos, 0, err)
	}
	clear(p.queued)
	p.queued = p.queued[:0]
	p.out = p.out[:0]
}

// errLost is the error of publications written on a connection that failed
// before Redis answered them.
var errLost = errors.New("upstream: the connection to redis failed before it answered; the message may or may not have been delivered")

// drop closes a failed connection and fails what was written on it and not
// answered (p.mu held). It runs once per connection.
func (p *pipeline) drop(conn *pipeConn, cause error) {
	if conn.dead {
		return
	}
	conn.dead = true
	if p.conn == conn {
		p.conn = nil
	}
	conn.nc.Close()
	err := fmt.Errorf("%w (%w)", errLost, cause)
	for _, e := range conn.inflight[conn.head:] {
		e.c.complete(e.pos, 0, err)
	}
	conn.inflight, conn.head = nil, 0
}

// read parses the connection's replies and completes their entries, a
// read's worth at a time, until the connection fails or is dropped.
func (p *pipeline) read(conn *pipeConn) {
	rd := newRESPReader(conn.nc, 64<<10)
	var replies []result
	var done []entry
	var deadlineSet time.Time
	for {
		replies = replies[:0]
		for {
			frame, ok := rd.parse()
			if !ok {
				break
			}
			replies = append(replies, replyResult(frame))
		}
		if len(replies) > 0 {
			var ok bool
			if done, ok = p.answered(conn, len(replies), done[:0]); !ok {
				return
			}
			for i, e := range done {
				e.c.complete(e.pos, replies[i].n, replies[i].err)
			}
			clear(done)
			continue
		}
		// The deadline moves at most once a second (a read costs no timer
		// update while replies stream): an overdue reply is found at most
		// a second late.
		if now := time.Now(); now.Sub(deadlineSet) > time.Second {
			deadlineSet = now
			_ = conn.nc.SetReadDeadline(now.Add(p.timeout))
		}
		if err := rd.fill(); err != nil {
			next, ok := p.idle(conn, err)
			if !ok {
				p.mu.Lock()
				p.drop(conn, err)
				p.mu.Unlock()
				return
			}
			deadlineSet = time.Now()
			_ = conn.nc.SetReadDeadline(next)
		}
	}
}

// answered takes the n oldest entries of conn off its queue into done; ok
// is false when the connection is gone, or Redis answered more than it was
// asked (the stream is out of step).
func (p *pipeline) answered(conn *pipeConn, n int, done []entry) (_ []entry, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if conn.dead {
		return done, false
	}
	if n > len(conn.inflight)-conn.head {
		p.drop(conn, errProtocol)
		return done, false
	}
	done = append(done, conn.inflight[conn.head:conn.head+n]...)
	clear(conn.inflight[conn.head : conn.head+n])
	conn.head += n
	conn.since = time.Now()
	if conn.head == len(conn.inflight) {
		conn.inflight, conn.head = conn.inflight[:0], 0
	}
	return done, true
}

// idle reports whether a read error is only a read deadline passing while
// Redis owes nothing, or owes it for less than the timeout, and when the
// next read is to give up: when the oldest reply owed is overdue.
func (p *pipeline) idle(conn *pipeConn, err error) (next time.Time, ok bool) {
	if !isTimeout(err) {
		return next, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if conn.dead {
		return next, false
	}
	if conn.head == len(conn.inflight) {
		return time.Now().Add(p.timeout), true
	}
	overdue := conn.since.Add(p.timeout)
	return overdue, time.Now().Before(overdue)
}

// replyResult turns Redis's reply to a PUBLISH (or ASKING) into a result.
func replyResult(frame redcon.RESP) result {
	switch frame.Type {
	case redcon.Integer:
		return result{n: parseInt(frame.Data)}
	case redcon.Error:
		return result{err: replyError(string(frame.Data))}
	case redcon.String:
		return result{} // ASKING's OK
	}
	return result{err: fmt.Errorf("%w: %q", errProtocol, frame.Raw)}
}

// redirectError is a cluster's MOVED or ASK reply.
type redirectError struct {
	ReplyError
	addr string
	ask  bool
}

func replyError(msg string) error {
	verb, rest, _ := strings.Cut(msg, " ")
	if verb == "MOVED" || verb == "ASK" {
		if _, addr, ok := strings.Cut(rest, " "); ok {
			return &redirectError{ReplyError: ReplyError{Msg: msg}, addr: addr, ask: verb == "ASK"}
		}
	}
	return &ReplyError{Msg: msg}
}

// close fails what is queued and closes the connection.
func (p *pipeline) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.failQueued(ErrClosed)
	if p.conn != nil {
		p.drop(p.conn, ErrClosed)
	}
}
