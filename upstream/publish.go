package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Publish sends the batch through the node pipelines (see pipeline): every
// session's publications to one node share one connection, so a burst of
// small batches from many clients costs Redis and pubgate one write and one
// read instead of one round trip each. Publications reach a node in the
// order of the batch, so a client's messages on one channel stay in order.
// A publication whose reply was lost gets an error, never a count: Redis
// may or may not have delivered it.
func (r *Redis) Publish(ctx context.Context, batch []Publication) error {
	if len(batch) == 0 {
		return nil
	}
	c := newCall(len(batch))
	r.pipes.send(ctx, c, batch)
	if !c.wait(ctx) {
		for i := range batch {
			batch[i].Receivers, batch[i].Err = 0, ctx.Err()
		}
		return nil
	}
	redirected := c.collect(batch)
	if redirected && r.cluster != nil {
		r.followRedirects(ctx, batch)
	}
	c.recycle()
	r.noteFailures(ctx, batch)
	return nil
}

// followRedirects sends again, once, the shard publications a cluster node
// answered with MOVED or ASK: Redis did not run them. They go out in batch
// order, so a channel's messages keep their order.
func (r *Redis) followRedirects(ctx context.Context, batch []Publication) {
	r.cluster.ReloadState(ctx)
	c := newCall(len(batch))
	redirected := 0
	for i := range batch {
		if _, ok := isRedirect(batch[i].Err); ok {
			redirected++
		} else {
			c.results[i] = result{n: batch[i].Receivers, err: batch[i].Err}
		}
	}
	c.remaining.Store(int32(redirected))
	for i := range batch {
		if moved, ok := isRedirect(batch[i].Err); ok {
			if pl := r.pipes.node(moved.addr, nil); pl != nil {
				pl.submit(c, batch, []int32{int32(i)}, moved.ask)
			} else {
				c.complete(int32(i), 0, batch[i].Err)
			}
		}
	}
	if c.wait(ctx) {
		c.collect(batch)
		c.recycle()
		return
	}
	for i := range batch { // sent again, unanswered: no longer "not run"
		if _, ok := isRedirect(batch[i].Err); ok {
			batch[i].Receivers, batch[i].Err = 0, ctx.Err()
		}
	}
}

func isRedirect(err error) (*redirectError, bool) {
	if err == nil {
		return nil, false
	}
	var moved *redirectError
	ok := errors.As(err, &moved) // before moved is read: the order of a return's operands is not the calls' order
	return moved, ok
}

// noteFailures marks the engine down when a publication failed for want of
// a connection (not when Redis refused it): the probe tells when it is
// back.
func (r *Redis) noteFailures(ctx context.Context, batch []Publication) {
	for i := range batch {
		err := batch[i].Err
		if err != nil && !refused(err) && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			r.health.set(err)
			return
		}
	}
}

// refused tells Redis's refusals from failures to reach it.
func refused(err error) bool {
	var reply *ReplyError
	_, moved := isRedirect(err)
	return moved || errors.As(err, &reply)
}

// call is one Publish waiting for its replies, which the node pipelines'
// readers fill in.
type call struct {
	results   []result
	positions []int32     // scratch for routing
	routed    []*pipeline // scratch for routing
	remaining atomic.Int32
	state     atomic.Int32 // callWaiting, then callDone or callAbandoned
	done      chan struct{}
}

const (
	callWaiting = iota
	callDone
	callAbandoned
)

type result struct {
	n   int64
	err error
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newCall(n int) *call {
	c := calls.Get().(*call)
	c.results = append(c.results[:0], make([]result, n)...)
	c.remaining.Store(int32(n))
	c.state.Store(callWaiting)
	return c
}

// complete records the reply to the publication at pos; the last reply
// wakes the caller. A position of -1 is a reply nobody waits for (ASKING).
func (c *call) complete(pos int32, n int64, err error) {
	if pos < 0 {
		return
	}
	c.results[pos] = result{n, err}
	if c.remaining.Add(-1) == 0 && c.state.CompareAndSwap(callWaiting, callDone) {
		c.done <- struct{}{}
	}
}

// wait reports whether every reply came before ctx ended. A caller that
// gives up abandons the call to the readers, which may still write to it.
func (c *call) wait(ctx context.Context) bool {
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			return false
		}
		<-c.done
		return true
	}
}

// collect copies the results into the batch and reports whether any is a
// cluster redirect.
func (c *call) collect(batch []Publication) (redirected bool) {
	for i, res := range c.results {
		batch[i].Receivers, batch[i].Err = res.n, res.err
		if _, ok := isRedirect(res.err); ok {
			redirected = true
		}
	}
	return redirected
}

// recycle returns a completed call to the pool.
func (c *call) recycle() {
	clear(c.results)
	calls.Put(c)
}

// pipelines hold one pipeline per upstream node: one for a standalone
// server or a Sentinel's primary, one per primary of a cluster.
type pipelines struct {
	r *Redis

	mu     sync.Mutex
	nodes  map[string]*pipeline // by address
	single *pipeline            // standalone or Sentinel
	closed bool
}

// newPipelines holds the pipelines of a cluster's nodes, made as they are
// needed, or the single pipeline of a standalone server or Sentinel primary.
func newPipelines(r *Redis, single *pipeline) *pipelines {
	return &pipelines{r: r, nodes: make(map[string]*pipeline), single: single}
}

// send queues the batch on the pipelines of the nodes it goes to.
func (p *pipelines) send(ctx context.Context, c *call, batch []Publication) {
	if p.single == nil {
		p.sendCluster(ctx, c, batch)
		return
	}
	c.positions = c.positions[:0]
	for i := range batch {
		c.positions = append(c.positions, int32(i))
	}
	p.single.submit(c, batch, c.positions, false)
}

// sendCluster routes each publication to the primary of its channel's
// slot: a shard channel must go there, and a channel that always enters the
// cluster at one node keeps its messages in order.
func (p *pipelines) sendCluster(ctx context.Context, c *call, batch []Publication) {
	routed := c.routed[:0] // one per publication, in order
	for i := range batch {
		if i > 0 && routed[i-1] != nil && batch[i].Channel == batch[i-1].Channel {
			routed = append(routed, routed[i-1]) // a publisher's run on one channel: routed once
			continue
		}
		node, err := p.r.cluster.MasterForKey(ctx, batch[i].Channel)
		if err != nil {
			c.complete(int32(i), 0, err)
			routed = append(routed, nil)
			continue
		}
		opt := node.Options()
		routed = append(routed, p.node(opt.Addr, opt))
	}
	defer func() { clear(routed); c.routed = routed[:0] }()
	for i, pl := range routed {
		if pl == nil || slicesIndex(routed[:i], pl) >= 0 {
			continue // failed, or sent with an earlier one
		}
		c.positions = c.positions[:0]
		for j := i; j < len(routed); j++ {
			if routed[j] == pl {
				c.positions = append(c.positions, int32(j))
			}
		}
		pl.submit(c, batch, c.positions, false)
	}
}

func slicesIndex(s []*pipeline, v *pipeline) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// node returns the pipeline to a cluster node, created on first use with
// opt, the options go-redis gives the cluster's nodes (its dialer dials the
// address it is given). A nil opt (a redirect to a node not known yet)
// takes those of any node; with none known, node returns nil.
func (p *pipelines) node(addr string, opt *redis.Options) *pipeline {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl := p.nodes[addr]; pl != nil {
		return pl
	}
	if opt == nil {
		for _, known := range p.nodes {
			opt = known.opt
			break
		}
		if opt == nil {
			return nil // no node known yet to take the options of
		}
	}
	pl := newPipeline(opt, addr, p.r.timeout, p.r.sharded)
	if p.closed {
		pl.close()
	}
	p.nodes[addr] = pl
	return pl
}

func (p *pipelines) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.single != nil {
		p.single.close()
	}
	for _, pl := range p.nodes {
		pl.close()
	}
}
