package fanout

import (
	"strconv"

	"github.com/pubgate/pubgate/upstream"
	"github.com/tidwall/redcon"
)

// Protocol versions a client can speak (HELLO): an outbox encodes each
// message in the one its client speaks at the message's place in its stream.
const (
	RESP2 = 2
	RESP3 = 3
)

// messageFrames is one engine message as each protocol encodes it, built on
// first use and shared by every subscriber. Only the goroutine dispatching
// the message touches it.
type messageFrames struct {
	kind             upstream.Kind
	pattern          string
	channel, payload []byte    // the engine's, valid while the message is dispatched
	frames           [2][]byte // RESP2, RESP3
}

func (m *messageFrames) frame(proto int32) []byte {
	f := &m.frames[proto-RESP2]
	if *f == nil {
		*f = EncodeMessage(proto, m.kind, m.pattern, m.channel, m.payload)
	}
	return *f
}

// EncodeMessage builds one pub/sub delivery frame (message, pmessage with
// its pattern, or smessage), sized exactly so that the one allocation is
// shared by every subscriber that receives it.
func EncodeMessage(proto int32, kind upstream.Kind, pattern string, channel, payload []byte) []byte {
	verb := "message"
	n := 3
	switch kind {
	case upstream.KindPattern:
		verb, n = "pmessage", 4
	case upstream.KindShard:
		verb = "smessage"
	}
	size := 4 + bulkSize(len(verb)) + bulkSize(len(channel)) + bulkSize(len(payload))
	if n == 4 {
		size += bulkSize(len(pattern))
	}
	b := make([]byte, 0, size)
	b = AppendPushHeader(b, proto, n)
	b = redcon.AppendBulkString(b, verb)
	if n == 4 {
		b = redcon.AppendBulkString(b, pattern)
	}
	b = redcon.AppendBulk(b, channel)
	return redcon.AppendBulk(b, payload)
}

// AppendPushHeader starts an out-of-band frame of n elements: a RESP3 push
// ('>') or, in RESP2, the plain array Redis uses for pub/sub messages and
// (un)subscribe confirmations.
func AppendPushHeader(b []byte, proto int32, n int) []byte {
	if proto == RESP3 {
		b = append(b, '>')
		b = strconv.AppendInt(b, int64(n), 10)
		return append(b, '\r', '\n')
	}
	return redcon.AppendArray(b, n)
}

// bulkSize is the encoded length of a bulk string of n bytes.
func bulkSize(n int) int { return 1 + digits(n) + 2 + n + 2 }

func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
