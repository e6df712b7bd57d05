package main

import (
	"context"
	"fmt"
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
