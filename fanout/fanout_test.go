package fanout

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// recorder is a client connection: it keeps what is written and counts the
// Write calls. With release set, every Write first waits for it to close,
// after announcing itself on entered.
type recorder struct {
	mu      sync.Mutex
	data    []byte
	writes  int
	entered chan struct{}
	release chan struct{}
}

func newBlockedRecorder() *recorder {
	return &recorder{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.release != nil {
		r.entered <- struct{}{}
		<-r.release
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data = append(r.data, p...)
	r.writes++
	return len(p), nil
}

func (r *recorder) snapshot() (data string, writes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.data), r.writes
}

// waitFor waits until the recorder holds want, and fails if it holds
// anything else.
func (r *recorder) waitFor(t *testing.T, want string) {
	t.Helper()
	testutil.Eventually(t, "the client received its frames", func() bool {
		got, _ := r.snapshot()
		if !strings.HasPrefix(want, got) {
			t.Fatalf("the client received\n%q\nwant\n%q", got, want)
		}
		return got == want
	})
}

// engine is a broker whose Received the test sets; the hub's messages are
// handed to it by calling dispatch.
type engine struct {
	upstream.Broker // nil: the methods the hub does not call
	received        atomic.Uint64
}

func (e *engine) SetHandler(upstream.Handler)                                 {}
func (e *engine) Subscribe(context.Context, upstream.Kind, ...string) error   { return nil }
func (e *engine) Unsubscribe(context.Context, upstream.Kind, ...string) error { return nil }
func (e *engine) Received() uint64                                            { return e.received.Load() }

// prefixNames is the namespace of a tenant whose names carry a prefix.
type prefixNames string

func (p prefixNames) StripBytes(channel []byte) ([]byte, bool) {
	return bytes.CutPrefix(channel, []byte(p))
}

func newTestHub(t *testing.T) (*Hub, *engine, *Entry) {
	t.Helper()
	eng := &engine{}
	h := NewHub(eng, time.Second, zap.NewNop())
	got, err := h.Acquire(t.Context(), []Subscription{{Kind: upstream.KindChannel, ClientName: "feed", Upstream: "acme:feed", Names: prefixNames("acme:"), Owner: "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	return h, eng, got[0]
}

var unlimited = Limits{Hard: 1 << 30, Soft: 1 << 30, SoftFor: time.Hour}

func newTestOutbox(t *testing.T, w *recorder, l Limits, onLimit func(string), writes *atomic.Int64) *Outbox {
	t.Helper()
	if onLimit == nil {
		onLimit = func(reason string) { t.Errorf("unexpected output limit: %s", reason) }
	}
	o := NewOutbox(w, l, onLimit, writes)
	t.Cleanup(func() {
		if w.release != nil {
			select {
			case <-w.release:
			default:
				close(w.release)
			}
		}
		o.Close()
		<-o.Stopped()
	})
	return o
}

func message(seq uint64, payload string) upstream.Message {
	return upstream.Message{Kind: upstream.KindChannel, Channel: []byte("acme:feed"), Payload: []byte(payload), Seq: seq}
}

// frame is what a client speaking RESP2 receives for message(_, payload).
func frame(payload string) string {
	return string(EncodeMessage(RESP2, upstream.KindChannel, "", []byte("feed"), []byte(payload)))
}

const confirm = "+confirmed\r\n" // stands for a subscribe confirmation

// TestFanoutOrdering: every member receives its confirmation first, then
// every message in the engine's order, across bursts, and is counted.
func TestFanoutOrdering(t *testing.T) {
	h, _, e := newTestHub(t)
	var counts Deliveries
	var recs []*recorder
	for range 5 {
		r := &recorder{}
		o := newTestOutbox(t, r, unlimited, nil, nil)
		h.Attach(e, o, &counts, func() { o.Push([]byte(confirm), RESP2) })
		recs = append(recs, r)
	}
	want := confirm
	seq := uint64(0)
	for b := range 50 {
		burst := make([]upstream.Message, b%7+1)
		for i := range burst {
			seq++
			p := fmt.Sprint("m", seq)
			burst[i] = message(seq, p)
			want += frame(p)
		}
		h.dispatch(burst)
	}
	for _, r := range recs {
		r.waitFor(t, want)
	}
	if n := counts.Messages.Load(); n != int64(seq)*5 {
		t.Fatalf("counted %d deliveries, want %d", n, seq*5)
	}
}

// TestFanoutAttachDetachBarrier: a member gets nothing the engine received
// before it attached, and nothing once Detach returned, even with bursts
// dispatched meanwhile from other goroutines.
func TestFanoutAttachDetachBarrier(t *testing.T) {
	h, eng, e := newTestHub(t)

	// Messages up to Received at attach predate the subscribe.
	eng.received.Store(10)
	r := &recorder{}
	o := newTestOutbox(t, r, unlimited, nil, nil)
	mb := h.Attach(e, o, new(Deliveries), func() { o.Push([]byte(confirm), RESP2) })
	h.dispatch([]upstream.Message{message(9, "old"), message(10, "old"), message(11, "new")})
	r.waitFor(t, confirm+frame("new"))

	// After Detach, nothing.
	mb.Detach()
	o.Push([]byte("+unsubscribed\r\n"), RESP2)
	h.dispatch([]upstream.Message{message(12, "late")})
	r.waitFor(t, confirm+frame("new")+"+unsubscribed\r\n")

	// The same, racing a fan-out: whatever the member got precedes the
	// unsubscribe confirmation.
	for round := range 20 {
		r := &recorder{}
		o := newTestOutbox(t, r, unlimited, nil, nil)
		mb := h.Attach(e, o, new(Deliveries), func() { o.Push([]byte(confirm), RESP2) })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for i := uint64(100); ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					h.dispatch([]upstream.Message{message(i, "x"), message(i, "x")})
				}
			})
		}
		time.Sleep(time.Millisecond)
		mb.Detach()
		o.Push([]byte("+unsubscribed\r\n"), RESP2)
		time.Sleep(time.Millisecond)
		close(stop)
		wg.Wait()
		o.Close()
		<-o.Stopped()
		got, _ := r.snapshot()
		rest, ok := strings.CutPrefix(got, confirm)
		if !ok || !strings.HasSuffix(rest, "+unsubscribed\r\n") {
			t.Fatalf("round %d: got %q", round, got)
		}
		rest = strings.TrimSuffix(rest, "+unsubscribed\r\n")
		if strings.ReplaceAll(rest, frame("x"), "") != "" {
			t.Fatalf("round %d: a message after the unsubscribe confirmation: %q", round, got)
		}
	}
}

// TestFanoutBurstIsOneWrite: a burst queued to an idle client is written
// in one Write call; so is a burst queued while the writer is busy.
func TestFanoutBurstIsOneWrite(t *testing.T) {
	h, _, e := newTestHub(t)
	var writes atomic.Int64
	r := &recorder{}
	o := newTestOutbox(t, r, unlimited, nil, &writes)
	h.Attach(e, o, new(Deliveries), func() {})
	burst := make([]upstream.Message, 100)
	want := ""
	for i := range burst {
		burst[i] = message(uint64(i+1), fmt.Sprint("m", i))
		want += frame(fmt.Sprint("m", i))
	}
	h.dispatch(burst)
	r.waitFor(t, want)
	if _, n := r.snapshot(); n != 1 || writes.Load() != 1 {
		t.Fatalf("a burst of %d messages took %d writes (counted %d), want 1", len(burst), n, writes.Load())
	}

	// A writer busy with a reply finds the burst queued when it is done.
	b := newBlockedRecorder()
	o = newTestOutbox(t, b, unlimited, nil, nil)
	h.Attach(e, o, new(Deliveries), func() {})
	o.Push([]byte("+busy\r\n"), RESP2)
	<-b.entered
	h.dispatch(burst)
	close(b.release)
	b.waitFor(t, "+busy\r\n"+want)
	if _, n := b.snapshot(); n != 2 {
		t.Fatalf("a reply and a burst queued behind it took %d writes, want 2", n)
	}
}

// TestOutboxReplyDoesNotWaitForKick: a reply pushed while a fan-out still
// owes the outbox its kick is written without it.
func TestOutboxReplyDoesNotWaitForKick(t *testing.T) {
	for _, running := range []bool{false, true} {
		r := &recorder{}
		o := newTestOutbox(t, r, unlimited, nil, nil)
		o.linger = time.Hour // no wait ends by itself
		if running {         // a writer that waits for frames
			o.Push([]byte("+first\r\n"), RESP2)
			r.waitFor(t, "+first\r\n")
		}
		m := messageFrames{kind: upstream.KindChannel, channel: []byte("feed"), payload: []byte("m")}
		if kick, ok := o.queueMessage(&m); !kick || !ok {
			t.Fatalf("queueMessage = %v, %v", kick, ok)
		}
		if kick, _ := o.queueMessage(&m); kick {
			t.Fatal("a second kick owed in one burst")
		}
		o.Push([]byte("+reply\r\n"), RESP2) // the kick never comes
		want := frame("m") + frame("m") + "+reply\r\n"
		if running {
			want = "+first\r\n" + want
		}
		r.waitFor(t, want)
	}
}

// TestOutboxCloseWritesWhatAFanoutQueued: closing an outbox whose kick is
// still owed writes what is queued before Stopped closes.
func TestOutboxCloseWritesWhatAFanoutQueued(t *testing.T) {
	r := &recorder{}
	o := NewOutbox(r, unlimited, func(string) {}, nil)
	m := messageFrames{kind: upstream.KindChannel, channel: []byte("feed"), payload: []byte("m")}
	o.queueMessage(&m)
	o.Close()
	<-o.Stopped()
	if got, _ := r.snapshot(); got != frame("m") {
		t.Fatalf("got %q", got)
	}
	o.kick() // late: nothing to do
}

// limitTest is an outbox whose writer is stuck in its first Write, so that
// what is pushed next stays queued.
func limitTest(t *testing.T, l Limits) (*Outbox, *recorder, chan string) {
	t.Helper()
	r := newBlockedRecorder()
	reasons := make(chan string, 10)
	o := newTestOutbox(t, r, l, func(reason string) { reasons <- reason }, nil)
	o.Push([]byte("+stuck\r\n"), RESP2)
	<-r.entered
	return o, r, reasons
}

// TestOutboxHardLimit: a queue over the hard limit closes the outbox at
// once, refuses frames and tells onLimit once.
func TestOutboxHardLimit(t *testing.T) {
	h, _, e := newTestHub(t)
	o, _, reasons := limitTest(t, Limits{Hard: 1000, Soft: 1000, SoftFor: time.Hour})
	var counts Deliveries
	h.Attach(e, o, &counts, func() {})
	payload := strings.Repeat("x", 100)
	var seq uint64
	for range 20 { // 20 × ~130 bytes
		seq++
		h.dispatch([]upstream.Message{message(seq, payload)})
	}
	select {
	case reason := <-reasons:
		if !strings.Contains(reason, "hard limit") {
			t.Fatalf("onLimit(%q)", reason)
		}
	default:
		t.Fatal("over the hard limit, the outbox did not close")
	}
	if n := counts.Messages.Load(); n < 1 || n >= 20 {
		t.Fatalf("counted %d deliveries; the ones refused must not count", n)
	}
	if o.Push([]byte("+late\r\n"), RESP2) || o.PushNotice([]byte("-late\r\n")) {
		t.Fatal("a closed outbox took a frame")
	}
	if len(reasons) != 0 {
		t.Fatal("onLimit called twice")
	}
}

// TestOutboxSoftLimit: a queue over the soft limit for longer than SoftFor
// closes the outbox; one over it briefly (drained meanwhile) does not.
func TestOutboxSoftLimit(t *testing.T) {
	const softFor = 50 * time.Millisecond
	over := make([]byte, 600)

	t.Run("long", func(t *testing.T) {
		o, _, reasons := limitTest(t, Limits{Hard: 1 << 20, Soft: 500, SoftFor: softFor})
		if !o.Push(over, RESP2) { // over soft from now on
			t.Fatal("refused at once")
		}
		time.Sleep(2 * softFor) // at least SoftFor later
		if o.Push([]byte("+more\r\n"), RESP2) {
			t.Fatal("over the soft limit for longer than SoftFor, the outbox took more")
		}
		if reason := <-reasons; !strings.Contains(reason, "soft limit") {
			t.Fatalf("onLimit(%q)", reason)
		}
	})

	t.Run("brief", func(t *testing.T) {
		o, r, reasons := limitTest(t, Limits{Hard: 1 << 20, Soft: 500, SoftFor: softFor})
		if !o.Push(over, RESP2) {
			t.Fatal("refused at once")
		}
		close(r.release) // the client reads again: the queue drains
		testutil.Eventually(t, "the queue drained", func() bool { return o.Queued() == 0 })
		time.Sleep(2 * softFor)
		if !o.Push(over, RESP2) || !o.Push([]byte("+more\r\n"), RESP2) {
			t.Fatal("over the soft limit again, but not for long, the outbox refused")
		}
		select {
		case reason := <-reasons:
			t.Fatalf("onLimit(%q)", reason)
		default:
		}
	})

	t.Run("within", func(t *testing.T) {
		o, _, reasons := limitTest(t, Limits{Hard: 1 << 20, Soft: 500, SoftFor: time.Hour})
		for range 10 {
			if !o.Push(over, RESP2) {
				t.Fatal("over the soft limit for less than SoftFor, the outbox refused")
			}
		}
		if len(reasons) != 0 {
			t.Fatal("onLimit called")
		}
	})
}

// TestDispatchAllocations: a dispatch allocates the shared frame only
// (per protocol used), not per message or per subscriber.
func TestDispatchAllocations(t *testing.T) {
	h, _, e := newTestHub(t)
	var counts Deliveries
	for range 10 {
		o := newTestOutbox(t, &recorder{}, unlimited, nil, nil)
		h.Attach(e, o, &counts, func() {})
	}
	burst := []upstream.Message{message(1, "a"), message(2, "b"), message(3, "c")}
	h.dispatch(burst) // start the writers, fill the pool
	time.Sleep(10 * time.Millisecond)
	allocs := testing.AllocsPerRun(100, func() { h.dispatch(burst) })
	if allocs > float64(len(burst))+1 { // one frame each; slack for a writer's slice growing
		t.Fatalf("a dispatch of %d messages to 10 subscribers allocates %.1f times", len(burst), allocs)
	}
}
