// Package bench is the load generator behind `pubgate bench`: publishers
// and subscribers on any RESP pub/sub server (pubgate, Redis), closed loop
// or at a fixed total rate, that check every message they receive (lost,
// duplicated, out of order) and measure end-to-end latency from each
// message's intended send time, so that a stalled server cannot hide its
// stalls.
package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"
)

// Tenant is one set of credentials and the prefix its channel names take
// (a plain Redis arm needs "acme:", pubgate adds it itself). Connections
// take the tenants in turn.
type Tenant struct {
	User, Password string // no AUTH when both are empty
	Prefix         string
}

// Options describe one workload.
type Options struct {
	Addr string
	TLS  *tls.Config // nil: plaintext
	// Tenants are used in turn by publishers and subscribers (connection i
	// is of tenant i mod len). Empty: one tenant without AUTH or prefix.
	Tenants []Tenant
	// Channels per tenant, named <prefix><namespace>:<i>:c. Each publisher
	// publishes to its tenant's channels in turn.
	Channels int
	// Namespace is the middle of the channel names ("" is "bench"): a run
	// that needs names no server saw before (cold policy decisions) takes
	// a namespace of its own.
	Namespace string
	// SplitChannels shares each tenant's channels out among its
	// publishers in equal consecutive blocks, publisher k of the tenant
	// publishing only to block k; false: every publisher publishes to
	// all of them. With SubChannels of the block's size, subscriber k
	// holds publisher k's channels.
	SplitChannels bool
	// SubChannels is how many of its tenant's channels each subscriber
	// holds (consecutive, starting where the previous subscriber of the
	// tenant stopped); 0: all of them.
	SubChannels int
	// Patterns makes subscribers PSUBSCRIBE <prefix><namespace>:<i>:* instead:
	// one pattern per channel, each matching that channel only.
	Patterns    bool
	Publishers  int
	Subscribers int // connections
	PayloadSize int // bytes, at least HeaderSize
	// Pipeline is how many publishes a publisher has in flight: closed
	// loop, it sends that many and waits for their replies; at a fixed
	// rate, it never waits unless that many are unanswered.
	Pipeline int
	Duration time.Duration
	// Rate is the total publishes per second over all publishers (open
	// loop); 0 publishes as fast as the server answers.
	Rate int
	// Drain bounds the wait, after the last publish, for messages in
	// flight; the wait ends early once every expected message arrived.
	Drain time.Duration
	// DialConcurrency bounds the connections being set up at once.
	DialConcurrency int
	// Progress receives a line a second (nil: none).
	Progress io.Writer
	// OnSubscribed, if set, runs once every subscriber is subscribed,
	// before the first publish (to measure the server's memory, or to
	// start measuring its CPU).
	OnSubscribed func()
	// OnDrained, if set, runs once publishing ended and every expected
	// message arrived (or Drain passed), before any connection closes: with
	// OnSubscribed it brackets the server's work for the messages the
	// result counts, without connecting, subscribing or disconnecting.
	OnDrained func()
}

// HeaderSize is the smallest payload: what every message carries for its
// check.
const HeaderSize = 28

// withDefaults fills in what o leaves out and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if len(o.Tenants) == 0 {
		o.Tenants = []Tenant{{}}
	}
	if o.Channels == 0 {
		o.Channels = 1
	}
	if o.PayloadSize == 0 {
		o.PayloadSize = 64
	}
	if o.Pipeline == 0 {
		o.Pipeline = 1
	}
	if o.Drain == 0 {
		o.Drain = 5 * time.Second
	}
	if o.DialConcurrency == 0 {
		o.DialConcurrency = 64
	}
	if o.Namespace == "" {
		o.Namespace = "bench"
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.Addr != "", "bench: an address is required")
	check(o.Channels > 0, "bench: channels must be positive")
	check(o.SubChannels >= 0 && o.SubChannels <= o.Channels, "bench: channels per subscriber must be between 0 (all) and %d", o.Channels)
	check(o.Publishers >= 0 && o.Subscribers >= 0, "bench: publishers and subscribers must not be negative")
	check(o.PayloadSize >= HeaderSize, "bench: payload size must be at least %d bytes (the header every message carries)", HeaderSize)
	check(o.Pipeline > 0, "bench: pipeline must be positive")
	check(o.Duration > 0, "bench: duration must be positive")
	check(o.Rate >= 0, "bench: rate must not be negative")
	check(o.Rate == 0 || o.Publishers > 0, "bench: a rate needs publishers")
	check(!o.SplitChannels || o.splitsEvenly(), "bench: to split channels among publishers, publishers must be a multiple of tenants, and channels a multiple of each tenant's publishers")
	if o.SubChannels == 0 {
		o.SubChannels = o.Channels
	}
	return o, errors.Join(errs...)
}

// splitsEvenly says whether SplitChannels can give every publisher a
// block of the same size.
func (o *Options) splitsEvenly() bool {
	perTenant := o.Publishers / len(o.Tenants)
	return o.Publishers > 0 && o.Publishers%len(o.Tenants) == 0 && o.Channels%perTenant == 0
}

// publisherChannels is the first channel index publisher p publishes to,
// and how many consecutive ones.
func (o *Options) publisherChannels(p int) (first, count int) {
	if !o.SplitChannels {
		return 0, o.Channels
	}
	count = o.Channels / (o.Publishers / len(o.Tenants))
	return p / len(o.Tenants) * count, count
}

// channelName is the name of channel i of tenant t as clients write it.
func (o *Options) channelName(t, i int) string {
	return fmt.Sprintf("%s%s:%d:c", o.Tenants[t].Prefix, o.Namespace, i)
}

// subscribeName is what a subscriber subscribes to for channel i.
func (o *Options) subscribeName(t, i int) string {
	if o.Patterns {
		return fmt.Sprintf("%s%s:%d:*", o.Tenants[t].Prefix, o.Namespace, i)
	}
	return o.channelName(t, i)
}

// subscriberChannels are the channel indexes subscriber j holds.
func (o *Options) subscriberChannels(j int) []int {
	local := j / len(o.Tenants)
	out := make([]int, o.SubChannels)
	for m := range out {
		out[m] = (local*o.SubChannels + m) % o.Channels
	}
	return out
}
