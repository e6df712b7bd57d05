package compare

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/bench"
)

// manyChannelsWorkload is W6: publishing over channel names no server saw
// before, so that pubgate decides each name's PUBLISH afresh (a cold
// policy decision per channel) where Redis only checks its ACL. Each of
// the 4 publishers has its own quarter of the names and a subscriber of
// that quarter, subscribed before the first publish (the subscriptions'
// decisions fall outside the measured window; the publishes' are inside).
func manyChannelsWorkload() workload {
	const publishers = 4
	return workload{
		name:  "W6",
		title: "many channels: 4 publishers (pipeline 16), each over its own quarter of --fresh-channels (10,000) new channel names, and a subscriber of them",
		options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Publishers, b.Pipeline, b.Subscribers = publishers, 16, publishers
			b.Channels, b.SubChannels, b.SplitChannels = o.FreshChannels, o.FreshChannels/publishers, true
			b.Namespace = freshNamespace()
			return b
		},
		figures: []figure{publishRate, deliveryRate, cpuPerPublish},
	}
}

// freshRuns numbers the namespaces of W6's runs.
var freshRuns atomic.Int64

// freshNamespace is a channel namespace no run used before, in this
// process or (by the clock) an earlier one against the same servers.
func freshNamespace() string {
	return fmt.Sprintf("fresh%d-%d", time.Now().UnixNano(), freshRuns.Add(1))
}
