package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

func run(t *testing.T, o Options) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != "" {
		t.Fatalf("connections broke: %s", r.Errors)
	}
	return r
}

// TestCountsAgainstRedis: against a real Redis every acknowledged message
// reaches every subscriber of its channel once, in order, closed loop and
// at a fixed rate, for channels and patterns, over two tenants' prefixes.
func TestCountsAgainstRedis(t *testing.T) {
	srv := testutil.StartRedis(t)
	tenants := []Tenant{{Prefix: "acme:"}, {Prefix: "globex:"}}
	for name, o := range map[string]Options{
		"closed loop": {Publishers: 3, Pipeline: 8, Channels: 4, SubChannels: 2, Subscribers: 5},
		"fixed rate":  {Publishers: 2, Rate: 2000, Channels: 3, Subscribers: 4},
		"patterns":    {Publishers: 2, Pipeline: 4, Channels: 5, Subscribers: 3, Patterns: true},
	} {
		t.Run(name, func(t *testing.T) {
			o.Addr, o.Tenants, o.Duration = srv.Addr(), tenants, 500*time.Millisecond
			r := run(t, o)
			if r.Published == 0 || r.Delivered != r.Expected || r.Lost+r.Duplicated+r.OutOfOrder+r.Foreign != 0 {
				t.Fatalf("%+v", r)
			}
			if o.Rate > 0 && (r.Published < uint64(o.Rate)/4 || r.Published > uint64(o.Rate)/2+2) {
				t.Errorf("published %d in %.2fs at %d/s", r.Published, r.Seconds, o.Rate)
			}
			if r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 {
				t.Errorf("latency %+v", r.Latency)
			}
		})
	}
}

// TestDetectsLossDuplicationAndReordering runs the benchmark through a
// relay that drops, duplicates and swaps messages on their way to the
// subscribers: the result counts exactly what the relay did.
func TestDetectsLossDuplicationAndReordering(t *testing.T) {
	srv := testutil.StartRedis(t)
	relay := startFaultyRelay(t, srv.Addr())
	// One stream per subscriber, so that every swap reorders a stream; the
	// drain cannot end early, as the dropped messages never arrive.
	r := run(t, Options{Addr: relay.addr, Publishers: 1, Pipeline: 8, Subscribers: 2,
		Duration: 300 * time.Millisecond, Drain: 300 * time.Millisecond})
	relay.mu.Lock()
	defer relay.mu.Unlock()
	if relay.dropped == 0 || relay.duplicated == 0 || relay.swapped == 0 {
		t.Fatalf("the relay did nothing: %+v", relay)
	}
	if r.Lost != relay.dropped || r.Duplicated != relay.duplicated || r.OutOfOrder != relay.swapped {
		t.Fatalf("counted lost %d, duplicated %d, out of order %d; the relay dropped %d, duplicated %d, swapped %d",
			r.Lost, r.Duplicated, r.OutOfOrder, relay.dropped, relay.duplicated, relay.swapped)
	}
	if r.Delivered != r.Expected-r.Lost {
		t.Fatalf("delivered %d of %d expected, %d lost", r.Delivered, r.Expected, r.Lost)
	}
}

// faultyRelay forwards connections to a server. Towards the client, of
// every 100 messages it drops the 10th, sends the 20th twice, and holds the
// 30th back until after the 31st.
type faultyRelay struct {
	addr string

	mu                           sync.Mutex
	dropped, duplicated, swapped uint64
}

func startFaultyRelay(t *testing.T, server string) *faultyRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &faultyRelay{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", server)
			if err != nil {
				client.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, client); up.Close() }()
			go func() { f.toClient(client, up); client.Close() }()
		}
	}()
	return f
}

func (f *faultyRelay) toClient(client io.Writer, up io.Reader) {
	r := bufio.NewReader(up)
	var held []byte
	for n := 0; ; {
		frame, err := readFrame(r)
		if err != nil {
			return
		}
		if !bytes.Contains(frame[:min(len(frame), 20)], []byte("message")) {
			if _, err := client.Write(frame); err != nil {
				return
			}
			continue
		}
		n++
		out := frame
		f.mu.Lock()
		switch n % 100 {
		case 10:
			out = nil
			f.dropped++
		case 20:
			out = append(append([]byte{}, frame...), frame...)
			f.duplicated++
		case 30:
			held, out = frame, nil
			f.swapped++
		case 31:
			out = append(append([]byte{}, frame...), held...)
		}
		f.mu.Unlock()
		if _, err := client.Write(out); err != nil {
			return
		}
	}
}

// readFrame reads the bytes of one RESP2 frame.
func readFrame(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	frame := line
	switch line[0] {
	case '*':
		n, _ := atoi(bytes.TrimSpace(line[1:]))
		for range n {
			elem, err := readFrame(r)
			if err != nil {
				return nil, err
			}
			frame = append(frame, elem...)
		}
	case '$':
		size, _ := atoi(bytes.TrimSpace(line[1:]))
		body := make([]byte, size+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		frame = append(frame, body...)
	}
	return frame, nil
}

// TestHooksBracketThePublishing: OnSubscribed runs once every subscriber
// is subscribed, before the first publish; OnDrained runs once, after the
// publishing time and the deliveries, while the subscribers are still
// connected (so that the two bracket the server's work for the counted
// messages, and nothing else).
func TestHooksBracketThePublishing(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	numsub := func() int64 { return c.PubSubNumSub(ctx, "bench:0:c").Val()["bench:0:c"] }
	var calls []string
	var subscribed time.Time
	var between time.Duration
	const duration = 200 * time.Millisecond
	r := run(t, Options{Addr: srv.Addr(), Publishers: 1, Pipeline: 4, Subscribers: 3, Duration: duration,
		OnSubscribed: func() {
			calls = append(calls, fmt.Sprintf("subscribed %d", numsub()))
			subscribed = time.Now()
		},
		OnDrained: func() {
			between = time.Since(subscribed)
			calls = append(calls, fmt.Sprintf("drained %d", numsub()))
		},
	})
	if want := []string{"subscribed 3", "drained 3"}; !slices.Equal(calls, want) {
		t.Fatalf("hooks ran as %q, want %q", calls, want)
	}
	if between < duration {
		t.Errorf("OnDrained ran %s after OnSubscribed, before the %s of publishing ended", between, duration)
	}
	if r.Published == 0 || r.Delivered != r.Expected {
		t.Fatalf("%+v", r)
	}
}
