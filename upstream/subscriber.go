package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tidwall/redcon"
)

// The subscriber connections speak RESP themselves rather than through
// go-redis's PubSub. On the receive path go-redis allocates a *Message and
// three strings per message and hands messages over one at a time; here a
// read is parsed in place from one reusable buffer (rawconn.go), and the
// handler gets everything the read brought as one burst whose bytes point
// into that buffer: no allocation per message at all, and the hub makes the
// one copy. BenchmarkReceive (64-byte payloads streamed from a fake Redis,
// socket to handler, on a loaded 2-CPU machine) measured 1.3-3 µs, 312 B
// and 10 allocations per message through go-redis, and 0.09-0.14 µs and no
// allocation here; TestReceiveAllocatesNothing keeps it at none. Message
// frames, nearly all of what arrives, are read in one pass by message();
// every other frame goes through redcon's parser, which alone costs
// 355 ns per message instead of 101 (it checks an array whole before its
// parts are read again). The price is doing what go-redis's PubSub did for
// us: dialing (with go-redis's options and dialer, see dialNode),
// reconnecting with backoff and subscribing again to every held name,
// pinging an idle connection, and serializing the (un)subscribes other
// goroutines write while the loop reads. go-redis still does everything else: topology, the probe, PUBSUB
// introspection and the cluster's slot map.

// dialFunc opens a new subscriber connection, authenticated, to the node
// that should hold it now; held is one of the names the connection will
// subscribe to ("" if none).
type dialFunc func(ctx context.Context, held string) (net.Conn, error)

// subscriber owns one upstream subscriber connection and its receive loop:
// it re-dials and subscribes again to every held name after a failure,
// pings the connection when idle, and waits for Redis's confirmation of
// each subscribe.
type subscriber struct {
	r    *Redis
	dial dialFunc
	// dropped, if set, hears of Redis ending a subscription that nobody
	// asked to end: a cluster unsubscribes a shard channel whose slot
	// moved to another shard (and answers MOVED to a subscribe that reached
	// a node that no longer owns the slot: name is "" then).
	dropped func(name string)
	ctx     context.Context // ends with close
	cancel  context.CancelFunc

	mu      sync.Mutex
	waiters map[string][]chan struct{}     // "subscribe\x00name" → waiting callers
	hooks   map[chan struct{}]*confirmHook // subscribeThen's waiters → its hook
	leaving map[string]int                 // shard channels with an SUNSUBSCRIBE of ours in flight

	// sendMu orders the (un)subscribes written on the connection with
	// held, the names the connection holds or is subscribing (see sync),
	// and guards the connection for writing.
	sendMu sync.Mutex
	held   map[string]Kind
	conn   net.Conn // the connection commands go to; nil while there is none
	closed bool
	wbuf   []byte // the command being written

	burst []Message // the messages of one read; only the receive loop uses it
}

func newSubscriber(r *Redis, dial dialFunc) *subscriber {
	ctx, cancel := context.WithCancel(r.ctx)
	return &subscriber{r: r, dial: dial, ctx: ctx, cancel: cancel,
		waiters: make(map[string][]chan struct{}), hooks: make(map[chan struct{}]*confirmHook),
		leaving: make(map[string]int), held: make(map[string]Kind)}
}

func confirmKey(redisKind, name string) string { return redisKind + "\x00" + name }

func (s *subscriber) subscribe(ctx context.Context, kind Kind, names []string) error {
	waits, forget := s.send(ctx, kind, names)
	return awaitConfirmations(ctx, kind.SubscribeVerb(), waits, forget)
}

// confirmHook is what subscribeThen runs once Redis confirmed its last name.
type confirmHook struct {
	left int // names not confirmed yet
	at   func()
}

// subscribeThen is subscribe that runs at on the receive goroutine once
// Redis confirmed every name, before the messages that follow the last
// confirmation are handed to the handler. A confirmation means the name is
// subscribed from that point of the stream on, so the messages handed over
// before at predate some name's subscription and those after follow all of
// them: the hub switches how it serves a tenant's patterns at that point
// without losing or repeating a message. If the wait fails, at runs at
// most once, possibly after subscribeThen returned.
func (s *subscriber) subscribeThen(ctx context.Context, kind Kind, names []string, at func()) error {
	waits, forget := s.sendThen(kind, names, at)
	return awaitConfirmations(ctx, kind.SubscribeVerb(), waits, forget)
}

// send writes the subscribe and returns what to wait for. A failed write is
// not final: the names are held, and the receive loop subscribes to them
// again on its next connection, so the caller waits for the confirmation
// either way.
func (s *subscriber) send(_ context.Context, kind Kind, names []string) (waits []chan struct{}, forget func()) {
	return s.sendThen(kind, names, nil)
}

// sendThen is send that, with at, runs at once Redis confirmed every name
// (confirmed).
func (s *subscriber) sendThen(kind Kind, names []string, at func()) (waits []chan struct{}, forget func()) {
	verb := kind.SubscribeVerb()
	waits = s.expect(verb, names, at)
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.hold(kind, names)
	_ = s.write(verb, names)
	return waits, func() { s.forget(verb, names, waits) }
}

// hold records names as held; the caller holds sendMu, or is the only one
// who knows s yet.
func (s *subscriber) hold(kind Kind, names []string) {
	for _, n := range names {
		s.held[n] = kind
	}
}

// write sends a command of verb and names on the connection; the caller
// holds sendMu. Without a connection it sends nothing: the receive loop
// subscribes the next connection to what is held then.
func (s *subscriber) write(verb string, names []string) error {
	if s.conn == nil || len(names) == 0 { // no names would mean "all" to an unsubscribe
		return nil
	}
	b := appendCommand(s.wbuf[:0], verb, names...)
	err := s.flush(b)
	if cap(b) <= 64<<10 { // a large resubscribe's buffer goes
		s.wbuf = b
	}
	return err
}

var pingCommand = appendCommand(nil, "PING")

// flush writes b on the connection; the caller holds sendMu. A failed write
// closes the connection, which the receive loop then replaces.
func (s *subscriber) flush(b []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.r.timeout))
	if _, err := s.conn.Write(b); err != nil {
		_ = s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// sync returns once Redis answered a command written on the connection
// now, so that every message Redis had queued for the connection before
// has been emitted: it subscribes again to a name the connection holds,
// which Redis confirms and otherwise ignores. A connection that holds
// nothing receives nothing, and has nothing to sync.
func (s *subscriber) sync(ctx context.Context) error {
	s.sendMu.Lock()
	name, kind, ok := anyHeld(s.held)
	if !ok {
		s.sendMu.Unlock()
		return nil
	}
	verb, names := kind.SubscribeVerb(), []string{name}
	waits := s.expect(verb, names, nil)
	_ = s.write(verb, names)
	s.sendMu.Unlock()
	return awaitConfirmations(ctx, verb, waits, func() { s.forget(verb, names, waits) })
}

func anyHeld(held map[string]Kind) (string, Kind, bool) {
	for name, kind := range held {
		return name, kind, true
	}
	return "", 0, false
}

// awaitConfirmations waits until Redis confirmed every subscription.
func awaitConfirmations(ctx context.Context, verb string, waits []chan struct{}, forget func()) error {
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			forget()
			return fmt.Errorf("upstream: %s not confirmed: %w", verb, ctx.Err())
		}
	}
	return nil
}

func (s *subscriber) unsubscribe(_ context.Context, kind Kind, names []string) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for _, n := range names {
		delete(s.held, n)
	}
	if s.conn == nil || len(names) == 0 {
		return nil // no longer held: the next connection does not subscribe to them
	}
	if kind == KindShard {
		s.mu.Lock()
		for _, n := range names {
			s.leaving[n]++
		}
		s.mu.Unlock()
	}
	return s.write(kind.UnsubscribeVerb(), names)
}

func (s *subscriber) expect(verb string, names []string, at func()) []chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hook *confirmHook
	if at != nil {
		hook = &confirmHook{left: len(names), at: at}
	}
	waits := make([]chan struct{}, len(names))
	for i, n := range names {
		w := make(chan struct{})
		k := confirmKey(verb, n)
		s.waiters[k] = append(s.waiters[k], w)
		waits[i] = w
		if hook != nil {
			s.hooks[w] = hook
		}
	}
	return waits
}

func (s *subscriber) forget(verb string, names []string, waits []chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range names {
		k := confirmKey(verb, n)
		list := s.waiters[k]
		delete(s.hooks, waits[i])
		for j, w := range list {
			if w == waits[i] {
				list = append(list[:j], list[j+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.waiters, k)
		} else {
			s.waiters[k] = list
		}
	}
}

// confirmed handles Redis's answer to a (un)subscribe, or an unsubscribe
// Redis decided on its own.
func (s *subscriber) confirmed(verb, name string) {
	s.mu.Lock()
	var dropped bool
	if verb == "sunsubscribe" {
		if s.leaving[name] > 0 {
			s.leaving[name]--
			if s.leaving[name] == 0 {
				delete(s.leaving, name)
			}
		} else {
			dropped = true
		}
	}
	k := confirmKey(verb, name)
	waiting := s.waiters[k]
	delete(s.waiters, k)
	var run []func()
	for _, w := range waiting {
		if hook := s.hooks[w]; hook != nil {
			delete(s.hooks, w)
			if hook.left--; hook.left == 0 {
				run = append(run, hook.at)
			}
		}
	}
	s.mu.Unlock()
	// A hook runs before its caller is woken: subscribeThen returns after it.
	for _, at := range run {
		at()
	}
	for _, w := range waiting {
		close(w)
	}
	if dropped && s.dropped != nil {
		s.dropped(name)
	}
}

// idlePing is how long the receive loop waits for a frame before it pings
// Redis: a connection that answers nothing for as long again is found
// broken and replaced. (A variable for tests.)
var idlePing = 5 * time.Second

// readBufferSize is the receive buffer's initial size; it grows to hold a
// larger frame.
const readBufferSize = 32 << 10

// close ends the receive loop: once the engine's wait group is done, the
// handler is not called again for this connection.
func (s *subscriber) close() {
	s.cancel()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// run receives until the subscriber is closed, on this goroutine: a
// message goes from the socket to the handler without changing hands. A
// connection that fails is replaced, at once if it had worked, after a
// growing pause (up to a second) while Redis cannot be reached.
func (s *subscriber) run() {
	rd := newRESPReader(nil, readBufferSize)
	for failures := 0; s.ctx.Err() == nil; {
		if failures > 0 {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(min(50*time.Millisecond<<(failures-1), time.Second)):
			}
		}
		s.sendMu.Lock()
		name, _, _ := anyHeld(s.held)
		s.sendMu.Unlock()
		nc, err := s.dial(s.ctx, name)
		if err != nil {
			failures = min(failures+1, 6)
			continue
		}
		if !s.attach(nc) {
			_ = nc.Close()
			return
		}
		rd.nc, rd.start, rd.end = nc, 0, 0
		worked := s.receive(rd)
		s.detach(nc)
		if worked {
			failures = 0
		} else {
			failures = min(failures+1, 6)
		}
	}
}

// attach makes nc the connection and subscribes it to every held name, in
// one command per kind. It reports false once the subscriber is closed.
func (s *subscriber) attach(nc net.Conn) bool {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return false
	}
	s.mu.Lock()
	clear(s.leaving) // their SUNSUBSCRIBEs went with the old connection
	s.mu.Unlock()
	s.conn = nc
	var byKind [3][]string
	for name, kind := range s.held {
		byKind[kind] = append(byKind[kind], name)
	}
	for kind, names := range byKind {
		if s.write(Kind(kind).SubscribeVerb(), names) != nil {
			break
		}
	}
	return true
}

// detach drops nc, the connection whose receive failed.
func (s *subscriber) detach(nc net.Conn) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.conn == nc {
		s.conn = nil
	}
	_ = nc.Close()
}

// receive runs the connection until it fails, and reports whether Redis
// answered anything on it. Every complete frame a read brought is parsed
// in turn; messages gather into a burst that goes to the handler before the
// next read (which may move the buffer) and before any other frame is
// handled, so that a confirmation is handled after the messages Redis sent
// before it (see sync and Received).
func (s *subscriber) receive(rd *respReader) (worked bool) {
	nc := rd.nc
	burst := s.burst[:0]
	defer func() { s.burst = burst[:0] }()
	var deadlineSet time.Time
	pinged := false
	for {
		if m, ok := rd.message(); ok {
			worked, pinged = true, false
			burst = s.r.appendDelivery(burst, m)
			continue
		}
		frame, ok := rd.parse()
		if ok {
			worked, pinged = true, false
			if m, ok := parseMessage(frame); ok { // the fast path's misses
				burst = s.r.appendDelivery(burst, m)
				continue
			}
			burst = s.deliver(burst)
			s.control(frame)
			continue
		}
		burst = s.deliver(burst)
		// The deadline moves at most once a second: a read costs no timer
		// update while messages stream.
		if now := time.Now(); now.Sub(deadlineSet) > time.Second {
			deadlineSet = now
			_ = nc.SetReadDeadline(now.Add(idlePing))
		}
		err := rd.fill()
		switch {
		case err == nil:
		case isTimeout(err) && !pinged:
			pinged, deadlineSet = true, time.Time{}
			s.ping(nc)
		default:
			return worked
		}
	}
}

// deliver hands a burst to the handler and returns it emptied for reuse.
func (s *subscriber) deliver(burst []Message) []Message {
	if len(burst) == 0 {
		return burst
	}
	(*s.r.handler.Load())(burst)
	clear(burst)
	return burst[:0]
}

func (s *subscriber) ping(nc net.Conn) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.conn == nc {
		_ = s.flush(pingCommand)
	}
}

// The heads of the message frames Redis sends in RESP2.
var (
	messageHead  = []byte("*3\r\n$7\r\nmessage\r\n")
	smessageHead = []byte("*3\r\n$8\r\nsmessage\r\n")
	pmessageHead = []byte("*4\r\n$8\r\npmessage\r\n")
)

// message parses the buffer's next frame if it is a complete message,
// pmessage or smessage as Redis writes them: the fast path, which reads
// the frame once (ReadNextRESP would check it whole before parse reads its
// parts again). Anything else is left to parse.
func (r *respReader) message() (m Message, ok bool) {
	b := r.buf[r.start:r.end]
	var i int
	switch {
	case bytes.HasPrefix(b, messageHead):
		m.Kind, i = KindChannel, len(messageHead)
	case bytes.HasPrefix(b, smessageHead):
		m.Kind, i = KindShard, len(smessageHead)
	case bytes.HasPrefix(b, pmessageHead):
		m.Kind, i = KindPattern, len(pmessageHead)
		if m.Pattern, i, ok = bulkAt(b, i); !ok {
			return m, false
		}
	default:
		return m, false
	}
	if m.Channel, i, ok = bulkAt(b, i); !ok {
		return m, false
	}
	if m.Payload, i, ok = bulkAt(b, i); !ok {
		return m, false
	}
	r.start += i
	return m, true
}

// bulkAt reads the bulk string at b[i:], if it is complete and not null,
// and returns its bytes and where the next frame starts.
func bulkAt(b []byte, i int) (data []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '$' {
		return nil, 0, false
	}
	j, size := i+1, 0
	for ; j < len(b) && '0' <= b[j] && b[j] <= '9'; j++ {
		if size = size*10 + int(b[j]-'0'); size > maxReplyBytes {
			return nil, 0, false
		}
	}
	if j == i+1 || j+2 > len(b) || b[j] != '\r' || b[j+1] != '\n' {
		return nil, 0, false
	}
	j += 2
	end := j + size
	if end+2 > len(b) || b[end] != '\r' || b[end+1] != '\n' {
		return nil, 0, false
	}
	return b[j:end], end + 2, true
}

// parseMessage reads a message, pmessage or smessage frame; its bytes stay
// in the read buffer.
func parseMessage(frame redcon.RESP) (m Message, ok bool) {
	if frame.Type != redcon.Array || frame.Count < 3 {
		return m, false
	}
	data := frame.Data
	n, head := redcon.ReadNextRESP(data)
	switch string(head.Data) {
	case "message":
		m.Kind = KindChannel
	case "smessage":
		m.Kind = KindShard
	case "pmessage":
		if frame.Count != 4 {
			return m, false
		}
		m.Kind = KindPattern
	default:
		return m, false
	}
	data = data[n:]
	if m.Kind == KindPattern {
		n, pattern := redcon.ReadNextRESP(data)
		m.Pattern, data = pattern.Data, data[n:]
	}
	n, channel := redcon.ReadNextRESP(data)
	_, payload := redcon.ReadNextRESP(data[n:])
	m.Channel, m.Payload = channel.Data, payload.Data
	return m, true
}

var movedPrefix = []byte("MOVED ")

// control handles a frame other than a message: a (un)subscribe
// confirmation, a pong, an error.
func (s *subscriber) control(frame redcon.RESP) {
	switch frame.Type {
	case redcon.Error:
		// A cluster node that no longer owns a slot answers MOVED to an
		// SSUBSCRIBE; other errors leave their waiters to time out.
		if bytes.HasPrefix(frame.Data, movedPrefix) && s.dropped != nil {
			s.dropped("")
		}
		return
	case redcon.Array:
	default:
		return
	}
	if frame.Count != 3 {
		return // a pong
	}
	n, verb := redcon.ReadNextRESP(frame.Data)
	_, name := redcon.ReadNextRESP(frame.Data[n:])
	if name.Data == nil {
		return // an unsubscribe from all that found nothing
	}
	switch v := string(verb.Data); v {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		s.confirmed(v, string(name.Data))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
