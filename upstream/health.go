package upstream

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Health is the engine's reachability as pubgate last observed it: by a
// periodic probe, and by publishes that could not reach it.
type Health struct {
	Up    bool
	Since time.Time // when Up last changed
	Err   error     // why the engine is down (nil when Up)
}

var errNotProbed = errors.New("upstream: not reached yet")

// healthState records the engine's health. It starts down: an engine is up
// once a probe reached it.
type healthState struct {
	mu       sync.Mutex
	h        Health
	observed bool // an outcome was recorded: the first is always reported
	onChange func(Health)
}

func newHealthState(onChange func(Health)) *healthState {
	return &healthState{h: Health{Since: time.Now(), Err: errNotProbed}, onChange: onChange}
}

func (s *healthState) get() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

// set records an outcome (nil: reached) and reports to onChange the first
// outcome and every change of Up. The first is reported even when it is
// "down", so that an engine unreachable from the start is reported as
// clearly as one that goes away later.
func (s *healthState) set(err error) {
	s.mu.Lock()
	first := !s.observed
	s.observed = true
	changed := (err == nil) != s.h.Up
	if changed {
		s.h.Since = time.Now()
	}
	s.h.Up, s.h.Err = err == nil, err
	h := s.h
	s.mu.Unlock()
	if (changed || first) && s.onChange != nil {
		s.onChange(h)
	}
}

// probeLoop runs probe at once and then every interval until ctx ends,
// recording each outcome.
func (s *healthState) probeLoop(ctx context.Context, interval time.Duration, probe func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.set(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
