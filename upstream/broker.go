// Package upstream is pubgate's fan-out engine seam: the Broker interface and
// its implementations, Redis (standalone, Sentinel or Cluster) and an
// in-process memory engine with the same semantics for single nodes and
// tests.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unsafe"
)

// Kind is the flavour of a subscription or message, as in Redis.
type Kind uint8

const (
	KindChannel Kind = iota // SUBSCRIBE / PUBLISH / message
	KindPattern             // PSUBSCRIBE / pmessage
	KindShard               // SSUBSCRIBE / SPUBLISH / smessage
)

func (k Kind) String() string {
	switch k {
	case KindChannel:
		return "channel"
	case KindPattern:
		return "pattern"
	case KindShard:
		return "shard"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

var (
	subscribeVerbs   = [...]string{KindChannel: "subscribe", KindPattern: "psubscribe", KindShard: "ssubscribe"}
	unsubscribeVerbs = [...]string{KindChannel: "unsubscribe", KindPattern: "punsubscribe", KindShard: "sunsubscribe"}
)

// SubscribeVerb is the Redis command (and confirmation) that subscribes
// names of this kind: subscribe, psubscribe or ssubscribe.
func (k Kind) SubscribeVerb() string { return subscribeVerbs[k] }

// UnsubscribeVerb is the command that unsubscribes them.
func (k Kind) UnsubscribeVerb() string { return unsubscribeVerbs[k] }

// Message is one delivery from the engine. For KindPattern, Pattern is the
// subscribed pattern that matched Channel; a message matching several
// subscriptions is delivered once per subscription, as Redis does.
//
// Pattern, Channel and Payload point into the engine's read buffer (or the
// publisher's request): they are valid only during the Handler call that
// carries them, and nobody may modify them. The handler copies what it
// keeps, which for the hub is the one frame that fan-out shares.
type Message struct {
	Kind    Kind
	Pattern []byte
	Channel []byte
	Payload []byte
	// Seq numbers messages in the order the engine received them: a message
	// received after a call to Received has a larger Seq than it returned.
	Seq uint64
}

// Clone returns a copy of m whose bytes outlive the Handler call.
func (m Message) Clone() Message {
	m.Pattern, m.Channel, m.Payload = bytes.Clone(m.Pattern), bytes.Clone(m.Channel), bytes.Clone(m.Payload)
	return m
}

// bytesOf views a string as bytes without copying, for Message fields,
// which nobody modifies.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Handler receives the engine's messages a burst at a time: everything one
// read from an upstream connection brought (the Redis engine), or every
// delivery of one publication (the memory engine), in order. The handler
// can therefore queue a whole burst before waking anyone. It must not
// block: every subscription of the connection it is called for waits
// meanwhile. The slice is reused after the call.
type Handler func(burst []Message)

// Publication is one PUBLISH (KindChannel) or SPUBLISH (KindShard) in a batch.
// Publish fills in Receivers or Err.
type Publication struct {
	Kind      Kind
	Channel   string
	Payload   []byte
	Receivers int64 // subscriptions that matched at the engine, as Redis counts them
	Err       error
}

// ErrClosed is returned by a broker after Close.
var ErrClosed = errors.New("upstream: broker closed")

// Broker is a pub/sub engine shared by every session of a pubgate node.
//
// Guarantees every implementation gives:
//   - Subscribe returns only once the engine confirmed every name, so a
//     message published after it returns is delivered; subscribing to a name
//     that is already subscribed is a no-op.
//   - Subscribe and Unsubscribe calls take effect in the order they are made.
//   - Messages go to the Handler, called on the engine's own goroutines: the
//     Redis engine's receive loop of each upstream connection, the publisher's
//     in the memory engine. A publisher's messages on one subscription arrive
//     in publish order. Once Close returns, the handler is not called again.
//   - Subscriptions survive reconnects: after an engine restart they are
//     restored without the caller's help.
//   - Close is safe to call more than once.
type Broker interface {
	// Publish sends every publication of the batch, in order, as one round
	// trip where the engine allows it, and fills in Receivers or Err. The
	// returned error reports a failure of the whole batch. Publish keeps no
	// reference to a payload after it returns: callers reuse their buffers.
	Publish(ctx context.Context, batch []Publication) error
	Subscribe(ctx context.Context, kind Kind, names ...string) error
	Unsubscribe(ctx context.Context, kind Kind, names ...string) error
	// SetHandler names where messages go; it is set once, before the first
	// Subscribe.
	SetHandler(h Handler)
	// Channels lists active channels (KindChannel) or shard channels
	// (KindShard) matching pattern ("" for all), across every node using
	// the engine.
	Channels(ctx context.Context, kind Kind, pattern string) ([]string, error)
	// NumSub reports, per channel, how many subscriptions the engine has.
	NumSub(ctx context.Context, kind Kind, channels ...string) ([]int64, error)
	// Sync returns once every message the engine had delivered to this
	// node's subscriptions when Sync was called has been handed to the
	// Handler: a publish acknowledged before the call, to a channel held
	// here, has been (in a Redis Cluster in classic mode, only once the
	// cluster bus brought it to the subscriber's node). Shutdown uses it to
	// deliver what was acknowledged before closing subscribers.
	Sync(ctx context.Context) error
	// Received is the Seq of the last message received so far, so that the
	// hub can tell messages that predate a local subscribe.
	Received() uint64
	// Health reports whether the engine is reachable: publishes fail and
	// subscriptions wait while it is not.
	Health() Health
	Close() error
}
