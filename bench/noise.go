package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// NoiseOptions describe another tenant's pattern subscriptions that match
// none of the benchmark's channels: the load of a noisy neighbour, which a
// server may pay on every PUBLISH.
type NoiseOptions struct {
	Addr   string
	TLS    *tls.Config // nil: plaintext
	Tenant Tenant
	// Patterns in all, <prefix>noise:<i>:*, PerConn on each connection
	// (0: 1,000; pubgate allows 10,000 subscriptions per client).
	Patterns, PerConn int
}

// Noise holds a neighbour's patterns until Close.
type Noise struct {
	conns []*conn
	// Refusals counts PSUBSCRIBE commands the server refused (pubgate:
	// a policy evaluation past its timeout) and that were sent again.
	Refusals int
}

// noiseAttempts is how often one PSUBSCRIBE is sent, noiseRetryPause
// apart, before the server's refusal fails the setup.
const (
	noiseAttempts   = 10
	noiseRetryPause = 100 * time.Millisecond
)

// HoldPatterns subscribes o.Patterns patterns and returns once the server
// confirmed every one. A refused PSUBSCRIBE is sent again, as a client
// would, and counted.
func HoldPatterns(ctx context.Context, o NoiseOptions) (*Noise, error) {
	if o.Addr == "" || o.Patterns <= 0 {
		return nil, errors.New("bench: noise needs an address and a positive number of patterns")
	}
	if o.PerConn <= 0 {
		o.PerConn = 1000
	}
	bo := &Options{Addr: o.Addr, TLS: o.TLS, Tenants: []Tenant{o.Tenant}, DialConcurrency: 2}
	n := &Noise{}
	var refusals atomic.Int64
	conns, err := connectAll(ctx, bo, (o.Patterns+o.PerConn-1)/o.PerConn, func(ctx context.Context, bo *Options, k int) (*conn, error) {
		first := k * o.PerConn
		return holdNoise(ctx, bo, o.Tenant.Prefix, first, min(o.Patterns, first+o.PerConn), &refusals)
	})
	n.conns, n.Refusals = conns, int(refusals.Load())
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// holdNoise opens a connection holding patterns first to end-1, one
// PSUBSCRIBE of up to subscribeChunk patterns at a time.
func holdNoise(ctx context.Context, o *Options, prefix string, first, end int, refusals *atomic.Int64) (*conn, error) {
	c, err := dial(ctx, o, 0)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	for from := first; from < end && err == nil; from += subscribeChunk {
		err = psubscribeNoise(c, prefix, from, min(end, from+subscribeChunk), refusals)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("noise: PSUBSCRIBE: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// psubscribeNoise subscribes patterns from to end-1 in one command, sent
// again if the server refuses it (it then answers one error, no
// confirmation).
func psubscribeNoise(c *conn, prefix string, from, end int, refusals *atomic.Int64) error {
	args := []string{"PSUBSCRIBE"}
	for i := from; i < end; i++ {
		args = append(args, NoisePattern(prefix, i))
	}
	var p push
	var buf []byte
	for attempt := 1; ; attempt++ {
		c.command(args...)
		if err := c.w.Flush(); err != nil {
			return err
		}
		err := c.readPush(&p, &buf)
		if _, refused := err.(errReply); refused && attempt < noiseAttempts {
			refusals.Add(1)
			time.Sleep(noiseRetryPause)
			continue
		}
		for i := from + 1; i < end && err == nil; i++ {
			err = c.readPush(&p, &buf)
		}
		if err == nil && string(p.kind) != "psubscribe" {
			err = fmt.Errorf("unexpected %q", p.kind)
		}
		return err
	}
}

// Close drops the patterns.
func (n *Noise) Close() {
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

// NoisePattern is pattern i of a neighbour with prefix, as HoldPatterns
// subscribes it (a Redis ACL must list each).
func NoisePattern(prefix string, i int) string { return fmt.Sprintf("%snoise:%d:*", prefix, i) }
