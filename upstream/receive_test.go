package upstream

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

// fakeRedis speaks just enough RESP for the engine's subscriber
// connections: it confirms (un)subscribes, answers PING, accepts the rest
// (+OK; HELLO is refused, as by a Redis 5) and hands out the connections
// that subscribed, so that a test can stream message frames at them with
// nothing but the engine's receive path on the other end.
type fakeRedis struct {
	ln         net.Listener
	subscribed chan *fakeConn
}

type fakeConn struct {
	mu sync.Mutex
	nc net.Conn
}

func (c *fakeConn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// engine is a Redis engine on the fake, closed when the test ends.
func (f *fakeRedis) engine(tb testing.TB) *Redis {
	tb.Helper()
	b, err := NewRedis(RedisOptions{URL: f.url(), Timeout: 5 * time.Second, HealthInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

func startFakeRedis(tb testing.TB) *fakeRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeRedis{ln: ln, subscribed: make(chan *fakeConn, 16)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(&fakeConn{nc: nc})
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeRedis) url() string { return "redis://" + f.ln.Addr().String() + "/" }

func (f *fakeRedis) serve(c *fakeConn) {
	defer c.nc.Close()
	rd := redcon.NewReader(bufio.NewReader(c.nc))
	subscribed := false
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			return
		}
		verb := strings.ToLower(string(cmd.Args[0]))
		var out []byte
		switch verb {
		case "hello":
			out = redcon.AppendError(out, "ERR unknown command 'HELLO'")
		case "ping":
			if subscribed {
				out = redcon.AppendArray(out, 2)
				out = redcon.AppendBulkString(out, "pong")
				out = redcon.AppendBulkString(out, "")
			} else {
				out = redcon.AppendString(out, "PONG")
			}
		case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
			for i, name := range cmd.Args[1:] {
				out = redcon.AppendArray(out, 3)
				out = redcon.AppendBulkString(out, verb)
				out = redcon.AppendBulk(out, name)
				out = redcon.AppendInt(out, int64(i+1))
			}
		default:
			out = redcon.AppendOK(out)
		}
		if err := c.write(out); err != nil {
			return
		}
		if strings.HasSuffix(verb, "subscribe") && !strings.HasSuffix(verb, "unsubscribe") && !subscribed {
			subscribed = true
			f.subscribed <- c
		}
	}
}

// messageFrames encodes n "message" frames of channel with payloads of size
// bytes.
func messageFrames(channel string, size, n int) []byte {
	payload := strings.Repeat("x", size)
	var b []byte
	for range n {
		b = redcon.AppendArray(b, 3)
		b = redcon.AppendBulkString(b, "message")
		b = redcon.AppendBulkString(b, channel)
		b = redcon.AppendBulkString(b, payload)
	}
	return b
}

// receiveRig is an engine subscribed to one channel at a fake Redis, and the
// fake's end of the engine's subscriber connection.
type receiveRig struct {
	b     *Redis
	conn  *fakeConn
	mu    sync.Mutex
	count int
	want  int
	done  chan struct{}
}

func newReceiveRig(tb testing.TB) *receiveRig {
	f := startFakeRedis(tb)
	b := f.engine(tb)
	rig := &receiveRig{b: b}
	b.SetHandler(func(burst []Message) {
		rig.mu.Lock()
		rig.count += len(burst)
		if rig.done != nil && rig.count >= rig.want {
			close(rig.done)
			rig.done = nil
		}
		rig.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Subscribe(ctx, KindChannel, "bench"); err != nil {
		tb.Fatal(err)
	}
	rig.conn = <-f.subscribed
	return rig
}

// stream sends n messages (in chunks of the frames in chunk, each frameLen
// bytes) and returns once the handler has had them all.
func (rig *receiveRig) stream(tb testing.TB, chunk []byte, frameLen, n int) {
	done := make(chan struct{})
	rig.mu.Lock()
	rig.count, rig.want, rig.done = 0, n, done
	rig.mu.Unlock()
	for left := n * frameLen; left > 0; {
		part := chunk[:min(left, len(chunk))]
		if err := rig.conn.write(part); err != nil {
			tb.Fatal(err)
		}
		left -= len(part)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tb.Fatal("messages not received")
	}
}

const benchPayload = 64

// BenchmarkReceive streams message frames with 64-byte payloads from a fake
// Redis at the engine's subscriber connection: one op is one message from
// the socket to the handler.
func BenchmarkReceive(b *testing.B) {
	rig := newReceiveRig(b)
	const perChunk = 1024
	chunk := messageFrames("bench", benchPayload, perChunk)
	frameLen := len(chunk) / perChunk
	b.ReportAllocs()
	b.SetBytes(benchPayload)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	rig.stream(b, chunk, frameLen, b.N)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/msg")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/msg")
}

// TestReceiveAllocatesNothing: on the steady path, a message goes from the
// socket to the handler without a single allocation.
func TestReceiveAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	rig := newReceiveRig(t)
	const n = 10000
	chunk := messageFrames("bench", benchPayload, 1024)
	frameLen := len(chunk) / 1024
	rig.stream(t, chunk, frameLen, n) // warm up: buffers at their size
	perRun := testing.AllocsPerRun(5, func() { rig.stream(t, chunk, frameLen, n) })
	// A run's own bookkeeping (its channel and timer) allocates a little.
	if perMsg := perRun / n; perMsg > 0.001 {
		t.Fatalf("%.0f allocations for %d messages (%.4f per message)", perRun, n, perMsg)
	}
}

// TestReceiveBurstsAndSeq: pattern and shard messages parse like channel
// messages, frames split across reads are reassembled, and every message
// gets the next Seq.
func TestReceiveBurstsAndSeq(t *testing.T) {
	f := startFakeRedis(t)
	b := collect(f.engine(t))
	if err := b.Subscribe(ctx(t), KindPattern, "p*"); err != nil {
		t.Fatal(err)
	}
	conn := <-f.subscribed
	var frames []byte
	frames = redcon.AppendArray(frames, 4)
	for _, s := range []string{"pmessage", "p*", "pc", ""} {
		frames = redcon.AppendBulkString(frames, s)
	}
	frames = append(frames, messageFrames("big", 100<<10, 1)...) // larger than the read buffer
	frames = redcon.AppendArray(frames, 3)
	for _, s := range []string{"smessage", "sc", "shard"} {
		frames = redcon.AppendBulkString(frames, s)
	}
	before := b.Received()
	for i := 0; i < len(frames); i += 7 { // a few bytes at a time
		if err := conn.write(frames[i:min(i+7, len(frames))]); err != nil {
			t.Fatal(err)
		}
	}
	want := []Message{
		{Kind: KindPattern, Pattern: []byte("p*"), Channel: []byte("pc"), Payload: []byte("")},
		{Kind: KindChannel, Channel: []byte("big"), Payload: []byte(strings.Repeat("x", 100<<10))},
		{Kind: KindShard, Channel: []byte("sc"), Payload: []byte("shard")},
	}
	for i, w := range want {
		m := receive(t, b)
		if m.Kind != w.Kind || string(m.Pattern) != string(w.Pattern) || string(m.Channel) != string(w.Channel) ||
			string(m.Payload) != string(w.Payload) || m.Seq != before+uint64(i)+1 {
			t.Fatalf("message %d = %v %q %q (%d bytes) seq %d, want %v %q %q (%d bytes) seq %d", i,
				m.Kind, m.Pattern, m.Channel, len(m.Payload), m.Seq, w.Kind, w.Pattern, w.Channel, len(w.Payload), before+uint64(i)+1)
		}
	}
}

// TestCloseStopsHandler: once Close returns, the handler is not called
// again, even with messages streaming in.
func TestCloseStopsHandler(t *testing.T) {
	rig := newReceiveRig(t)
	chunk := messageFrames("bench", benchPayload, 1024)
	var closed atomic.Bool
	late := make(chan struct{}, 1)
	rig.b.SetHandler(func([]Message) {
		if closed.Load() {
			select {
			case late <- struct{}{}:
			default:
			}
		}
	})
	go func() {
		for rig.conn.write(chunk) == nil {
		}
	}()
	time.Sleep(50 * time.Millisecond)
	rig.b.Close()
	closed.Store(true)
	select {
	case <-late:
		t.Fatal("handler called after Close returned")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestIdleConnectionIsReplaced: a connection on which Redis stops answering
// (even its pings) is replaced, and the new one subscribes again.
func TestIdleConnectionIsReplaced(t *testing.T) {
	saved := idlePing
	t.Cleanup(func() { idlePing = saved }) // after the engine's Close, registered later
	idlePing = 100 * time.Millisecond
	f := startFakeRedis(t)
	b := collect(f.engine(t))
	if err := b.Subscribe(ctx(t), KindChannel, "quiet"); err != nil {
		t.Fatal(err)
	}
	first := <-f.subscribed
	first.mu.Lock() // the fake answers nothing more on it
	defer first.mu.Unlock()
	var second *fakeConn
	select {
	case second = <-f.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("the silent connection was not replaced")
	}
	if err := second.write(messageFrames("quiet", 5, 1)); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, b); string(m.Channel) != "quiet" {
		t.Fatalf("got %+v", m)
	}
}

// TestReconnectBacksOff: a Redis that hangs up on every connection is
// dialed again after a growing pause, not in a tight loop.
func TestReconnectBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			nc.Close()
		}
	}()
	b, err := NewRedis(RedisOptions{URL: "redis://" + ln.Addr().String() + "/", Timeout: time.Second, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	b.Close()
	// Two subscriber connections, each dialed about 6 times in 2s
	// (pauses of 50, 100, 200, 400, 800 ms); the probe dials a few more.
	if n := accepted.Load(); n > 30 {
		t.Fatalf("%d connections in 2s: the subscribers do not back off", n)
	}
}
