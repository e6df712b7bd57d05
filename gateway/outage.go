package gateway

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/proxy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

// disconnectOnOutage disconnects every client once the upstream has been
// unreachable for after (upstream.disconnect_clients_after), once per
// outage, until ctx is done: a client that reconnects through the load
// balancer lands on a node that reaches the upstream, as readiness keeps
// new clients away from this one. after 0 keeps clients connected.
func disconnectOnOutage(ctx context.Context, health func() upstream.Health, after time.Duration, srv *proxy.Server, log *zap.Logger) {
	if after <= 0 {
		return
	}
	tick := time.NewTicker(min(after/4, time.Second))
	defer tick.Stop()
	var handled time.Time // the start of the outage whose clients were disconnected
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h := health()
		if h.Up || h.Since.Equal(handled) || time.Since(h.Since) < after {
			continue
		}
		handled = h.Since
		n := srv.DisconnectAll(fmt.Sprintf("upstream unavailable for more than %s", after))
		log.Warn("upstream unreachable too long: disconnected every client so that they reconnect to another node",
			zap.Duration("upstream.disconnect_clients_after", after), zap.Int("clients", n), zap.Error(h.Err))
	}
}

// logHealth reports the upstream going down and coming back, from the
// first probe on: an upstream unreachable when pubgate starts gets the same
// line as one that goes away later. Publishes and new subscriptions fail
// meanwhile; sessions stay connected.
func logHealth(log *zap.Logger, name string, interval time.Duration) func(upstream.Health) {
	var wasUp, reported atomic.Bool
	return func(h upstream.Health) {
		atStart := !reported.Swap(true)
		switch {
		case h.Up:
			log.Info("upstream reachable", zap.String("upstream", name))
		default:
			fields := []zap.Field{zap.String("upstream", name), zap.Error(h.Err), zap.Duration("retry_every", interval)}
			if atStart {
				fields = append(fields, zap.Bool("at_start", true))
			} else if !wasUp.Load() {
				return // still down
			}
			log.Error(`upstream unreachable: clients get "upstream unavailable" for publishes and subscribes until it is back; pubgate keeps retrying and restores subscriptions then`,
				fields...)
		}
		wasUp.Store(h.Up)
	}
}
