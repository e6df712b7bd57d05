package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Run sets up the subscribers, then the publishers, publishes for
// o.Duration, waits for the messages in flight, and reports. It fails if a
// connection cannot be set up; connections that break during the run are
// reported in the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	subs, err := connectAll(ctx, &o, o.Subscribers, newSubscriber)
	defer func() {
		for _, s := range subs {
			s.c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	pubs, err := connectAll(ctx, &o, o.Publishers, newPublisher)
	defer func() {
		for _, p := range pubs {
			p.c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	var stopping atomic.Bool
	for _, s := range subs {
		go s.receive(&stopping)
	}
	if o.OnSubscribed != nil {
		o.OnSubscribed()
	}

	start := time.Now()
	progress := startProgress(&o, pubs, subs, start)
	publishFor(&o, pubs, start)
	published := time.Since(start)
	expected := expectedDeliveries(&o, pubs, subs)
	awaitDeliveries(ctx, subs, expected, o.Drain)
	if o.OnDrained != nil {
		o.OnDrained()
	}
	progress.stop()
	stopping.Store(true)
	for _, s := range subs {
		s.c.Close()
		<-s.done
	}
	return summarize(&o, pubs, subs, published, expected), nil
}

// connectAll sets up n connections, o.DialConcurrency at a time.
func connectAll[T any](ctx context.Context, o *Options, n int, connect func(context.Context, *Options, int) (*T, error)) ([]*T, error) {
	out := make([]*T, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.DialConcurrency)
	for i := range n {
		g.Go(func() error {
			var err error
			out[i], err = connect(gctx, o, i)
			return err
		})
	}
	err := g.Wait()
	ok := out[:0]
	for _, c := range out {
		if c != nil {
			ok = append(ok, c)
		}
	}
	return ok, err
}

// publishFor runs every publisher until start + o.Duration.
func publishFor(o *Options, pubs []*publisher, start time.Time) {
	end := start.Add(o.Duration)
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Go(func() {
			if o.Rate > 0 {
				p.openLoop(start, end, float64(o.Rate)/float64(len(pubs)), o.Pipeline)
			} else {
				p.closedLoop(end, o.Pipeline)
			}
		})
	}
	wg.Wait()
}

// expectedDeliveries is, per subscriber, how many acknowledged messages
// should reach it: every publish of its tenant's publishers to a channel
// it holds.
func expectedDeliveries(o *Options, pubs []*publisher, subs []*subscriber) []uint64 {
	out := make([]uint64, len(subs))
	for j, s := range subs {
		for _, p := range pubs {
			if p.tenant != s.tenant {
				continue
			}
			for _, ch := range s.channels {
				out[j] += p.acked[ch]
			}
		}
	}
	return out
}

// awaitDeliveries waits until every subscriber received what it should, or
// until drain has passed.
func awaitDeliveries(ctx context.Context, subs []*subscriber, expected []uint64, drain time.Duration) {
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for j, s := range subs {
			if s.unique.Load() < expected[j] {
				all = false
				break
			}
		}
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errIncomplete reports connections that broke during the run.
var errIncomplete = errors.New("bench: connections broke during the run")

func connectionErrors(pubs []*publisher, subs []*subscriber) error {
	var errs []error
	for _, p := range pubs {
		if p.err != nil {
			errs = append(errs, fmt.Errorf("publisher %d: %w", p.id, p.err))
		}
	}
	for j, s := range subs {
		if s.readErr != nil {
			errs = append(errs, fmt.Errorf("subscriber %d: %w", j, s.readErr))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(append([]error{errIncomplete}, errs...)...)
}
