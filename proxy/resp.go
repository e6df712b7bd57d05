package proxy

import (
	"strconv"

	"github.com/pubgate/pubgate/fanout"
	"github.com/tidwall/redcon"
)

// Protocol versions a client can select with HELLO.
const (
	resp2 = fanout.RESP2
	resp3 = fanout.RESP3
)

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
