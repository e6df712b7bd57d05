package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// StormOptions describe a reconnect storm: Clients connections opened at
// once, as after a server's failover, each logging in as Tenant and
// subscribing to one channel.
type StormOptions struct {
	Addr    string
	TLS     *tls.Config // nil: plaintext
	Tenant  Tenant      // every client logs in as this one user
	Clients int
	// Channels is how many channels the clients subscribe to, client i to
	// <prefix>storm:<i mod Channels> (0: 100).
	Channels int
	// Timeout bounds each client's connect, TLS handshake, AUTH and
	// SUBSCRIBE together (0: 60 s); a client that runs out of it counts as
	// timed out.
	Timeout time.Duration
}

// StormResult is what a storm measured.
type StormResult struct {
	Clients    int `json:"clients"`
	Subscribed int `json:"subscribed"`
	// Seconds is from the start of the storm until the last client that
	// got subscribed did (until the last failure if none did).
	Seconds float64 `json:"seconds"`
	// Refused counts clients the server turned away or failed: refused,
	// reset or closed connections, failed handshakes, and error replies (a
	// full server, a refused login or subscription). TimedOut counts those
	// whose Timeout (or the 10 s to connect) passed.
	Refused  int `json:"refused"`
	TimedOut int `json:"timed_out"`
	// Errors holds the first few failures, for people.
	Errors []string `json:"errors,omitempty"`
}

// Failures is every client that did not get subscribed.
func (r *StormResult) Failures() int { return r.Refused + r.TimedOut }

// maxStormErrors bounds the failures a result quotes.
const maxStormErrors = 5

// Storm opens every client at once, waits until each is subscribed or has
// failed, then closes them all. A client's failure is counted, not
// returned: the error is for options that cannot run.
func Storm(ctx context.Context, o StormOptions) (*StormResult, error) {
	if o.Addr == "" || o.Clients <= 0 {
		return nil, errors.New("bench: a storm needs an address and a positive number of clients")
	}
	if o.Channels <= 0 {
		o.Channels = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	res := &StormResult{Clients: o.Clients}
	conns := make([]*conn, o.Clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{}) // opened once every goroutine is ready
	var start time.Time
	for i := range o.Clients {
		wg.Go(func() {
			<-gate
			c, err := stormClient(ctx, &o, i)
			took := time.Since(start).Seconds()
			mu.Lock()
			defer mu.Unlock()
			conns[i] = c
			res.count(err, took)
		})
	}
	start = time.Now()
	close(gate)
	wg.Wait()
	return res, nil
}

// count adds one client's outcome, which came after took seconds.
func (r *StormResult) count(err error, took float64) {
	if err == nil {
		r.Subscribed++
		r.Seconds = max(r.Seconds, took)
		return
	}
	if r.Subscribed == 0 {
		r.Seconds = max(r.Seconds, took)
	}
	if timedOut(err) {
		r.TimedOut++
	} else {
		r.Refused++
	}
	if len(r.Errors) < maxStormErrors {
		r.Errors = append(r.Errors, err.Error())
	}
}

// timedOut says whether a client failed because its time ran out, rather
// than because the server turned it away.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// stormClient connects, logs in and subscribes client i within o.Timeout.
func stormClient(ctx context.Context, o *StormOptions, i int) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := dial(ctx, &Options{Addr: o.Addr, TLS: o.TLS, Tenants: []Tenant{o.Tenant}}, 0)
	if err != nil {
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	channel := fmt.Sprintf("%sstorm:%d", o.Tenant.Prefix, i%o.Channels)
	c.command("SUBSCRIBE", channel)
	var p push
	var buf []byte
	if err = c.w.Flush(); err == nil {
		err = c.readPush(&p, &buf)
	}
	if err == nil && string(p.kind) != "subscribe" {
		err = fmt.Errorf("SUBSCRIBE %s: unexpected %q", channel, p.kind)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("client %d: %w", i, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
