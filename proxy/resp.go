package proxy

import (
	"strconv"

	"github.com/pubgate/pubgate/upstream"
	"github.com/tidwall/redcon"
)

// Protocol versions a client can select with HELLO.
const (
	resp2 = 2
	resp3 = 3
)

// appendPushHeader starts an out-of-band frame: a RESP3 push ('>') or, in
// RESP2, the plain array Redis uses for pub/sub messages.
func appendPushHeader(b []byte, proto int32, n int) []byte {
	if proto == resp3 {
		return appendHeader(b, '>', n)
	}
	return redcon.AppendArray(b, n)
}

// appendMapHeader starts a map of n pairs (a flat array of 2n in RESP2).
func appendMapHeader(b []byte, proto int32, n int) []byte {
	if proto == resp3 {
		return appendHeader(b, '%', n)
	}
	return redcon.AppendArray(b, 2*n)
}

// appendNull is RESP3's null or RESP2's null bulk string.
func appendNull(b []byte, proto int32) []byte {
	if proto == resp3 {
		return append(b, '_', '\r', '\n')
	}
	return redcon.AppendNull(b)
}

func appendHeader(b []byte, kind byte, n int) []byte {
	b = append(b, kind)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// messageFrames is one engine message as each protocol encodes it, built on
// first use and shared by every subscriber. Only the hub's fan-out goroutine
// touches it.
type messageFrames struct {
	kind             upstream.Kind
	pattern          string
	channel, payload []byte    // the engine's, valid while the message is dispatched
	frames           [2][]byte // RESP2, RESP3
}

func (m *messageFrames) frame(proto int32) []byte {
	f := &m.frames[proto-resp2]
	if *f == nil {
		*f = encodeMessage(proto, m.kind, m.pattern, m.channel, m.payload)
	}
	return *f
}

// encodeMessage builds one pub/sub delivery frame, sized exactly so that the
// one allocation is shared by every subscriber that receives it.
func encodeMessage(proto int32, kind upstream.Kind, pattern string, channel, payload []byte) []byte {
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
	b = appendPushHeader(b, proto, n)
	b = redcon.AppendBulkString(b, verb)
	if n == 4 {
		b = redcon.AppendBulkString(b, pattern)
	}
	b = redcon.AppendBulk(b, channel)
	return redcon.AppendBulk(b, payload)
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
