package testutil

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// CountingPublisher publishes 0, 1, 2… to one channel in pipelines of 16
// until a publish fails, counting the publishes acknowledged so far: what
// a shutdown test checks every subscriber received.
type CountingPublisher struct {
	mu    sync.Mutex
	acked int
	done  chan struct{}
	pause time.Duration // between pipelines
}

// StartCountingPublisher publishes through c until a publish fails or ctx
// ends.
func StartCountingPublisher(ctx context.Context, c *redis.Client, channel string) *CountingPublisher {
	return StartPacedPublisher(ctx, c, channel, 0)
}

// StartPacedPublisher is StartCountingPublisher pausing between pipelines,
// so that a subscriber under the race detector keeps up (Redis disconnects
// a subscriber that falls too far behind).
func StartPacedPublisher(ctx context.Context, c *redis.Client, channel string, pause time.Duration) *CountingPublisher {
	p := &CountingPublisher{done: make(chan struct{}), pause: pause}
	go p.run(ctx, c, channel)
	return p
}

func (p *CountingPublisher) run(ctx context.Context, c *redis.Client, channel string) {
	defer close(p.done)
	for next := 0; ; {
		cmds, _ := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i := range 16 {
				pipe.Publish(ctx, channel, strconv.Itoa(next+i))
			}
			return nil
		})
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				return
			}
			next++
			p.mu.Lock()
			p.acked = next
			p.mu.Unlock()
		}
		time.Sleep(p.pause)
	}
}

// Acked is how many publishes were acknowledged: payloads 0 to Acked()-1.
func (p *CountingPublisher) Acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// Done is closed once a publish failed.
func (p *CountingPublisher) Done() <-chan struct{} { return p.done }
