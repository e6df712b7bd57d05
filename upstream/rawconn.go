package upstream

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"
)

// The two hot loops of the engine, pipelined publishes and subscriber
// reads, speak RESP directly on connections they dial with go-redis's
// options (its dialer, so TLS and Sentinel's primary lookup are go-redis's;
// its credentials and database). go-redis's per-command machinery (a Cmd,
// boxed arguments, a pool round trip and a reply reader per command) cost
// more CPU per message than Redis spends on the message; see
// docs/design.md for the profile that decided it.

// dialNode connects to addr the way go-redis connects to it (opt is a
// client's initialised options) and authenticates, selects the database and
// names the connection, as go-redis would. A refusal (WRONGPASS) is a
// *ReplyError.
func dialNode(ctx context.Context, opt *redis.Options, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout(opt))
	defer cancel()
	nc, err := opt.Dialer(ctx, opt.Network, addr)
	if err != nil {
		return nil, err
	}
	if err := handshake(ctx, nc, opt); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

func dialTimeout(opt *redis.Options) time.Duration {
	if opt.DialTimeout > 0 {
		return opt.DialTimeout
	}
	return DefaultTimeout
}

// handshake sends AUTH, SELECT and CLIENT SETNAME as one pipeline and
// checks every reply.
func handshake(ctx context.Context, nc net.Conn, opt *redis.Options) error {
	var cmds []byte
	n := 0
	add := func(verb string, args ...string) {
		cmds = appendCommand(cmds, verb, args...)
		n++
	}
	switch {
	case opt.Password != "" && opt.Username != "":
		add("AUTH", opt.Username, opt.Password)
	case opt.Password != "":
		add("AUTH", opt.Password)
	}
	if opt.DB > 0 {
		add("SELECT", strconv.Itoa(opt.DB))
	}
	if opt.ClientName != "" {
		add("CLIENT", "SETNAME", opt.ClientName)
	}
	if n == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
		defer nc.SetDeadline(time.Time{})
	}
	if _, err := nc.Write(cmds); err != nil {
		return err
	}
	rd := newRESPReader(nc, 512)
	for range n {
		reply, err := rd.next()
		if err != nil {
			return err
		}
		if reply.Type == redcon.Error {
			return &ReplyError{Msg: string(reply.Data)}
		}
	}
	return nil
}

// appendCommand encodes a command, as clients send them: an array of bulk
// strings.
func appendCommand(b []byte, verb string, args ...string) []byte {
	b = redcon.AppendArray(b, len(args)+1)
	b = redcon.AppendBulkString(b, verb)
	for _, a := range args {
		b = redcon.AppendBulkString(b, a)
	}
	return b
}

// ReplyError is an error reply from Redis.
type ReplyError struct{ Msg string }

func (e *ReplyError) Error() string { return "upstream: redis: " + e.Msg }

// maxReplyBytes bounds one frame from Redis (a message of up to Redis's
// 512 MB proto-max-bulk-len would not fit any sane configuration of
// pubgate's limits.max_payload_bytes anyway).
const maxReplyBytes = 64 << 20

// errProtocol reports bytes from Redis that are not RESP: the connection is
// out of step and must be dropped.
var errProtocol = errors.New("upstream: malformed reply from redis")

// respReader parses RESP frames from a connection through one reusable
// buffer: a frame's bytes stay valid until the next call to next.
type respReader struct {
	nc         net.Conn
	buf        []byte
	start, end int // the unparsed bytes are buf[start:end]
}

func newRESPReader(nc net.Conn, size int) *respReader {
	return &respReader{nc: nc, buf: make([]byte, size)}
}

// next returns the next frame, reading from the connection when no complete
// frame is buffered.
func (r *respReader) next() (redcon.RESP, error) {
	for {
		if frame, ok := r.parse(); ok {
			return frame, nil
		}
		if err := r.fill(); err != nil {
			return redcon.RESP{}, err
		}
	}
}

// parse returns the next buffered frame, if a complete one is buffered.
func (r *respReader) parse() (redcon.RESP, bool) {
	n, frame := redcon.ReadNextRESP(r.buf[r.start:r.end])
	if n == 0 {
		return redcon.RESP{}, false
	}
	r.start += n
	return frame, true
}

// fill reads more bytes, first moving the unparsed ones to the front of the
// buffer (and growing it when they fill it).
func (r *respReader) fill() error {
	if r.start < r.end && !validPrefix(r.buf[r.start:r.end]) {
		return errProtocol
	}
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= maxReplyBytes {
			return errProtocol
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	n, err := r.nc.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return nil
	}
	return err
}

// validPrefix tells a frame that is incomplete from one that is not RESP:
// ReadNextRESP answers both with nothing.
func validPrefix(b []byte) bool {
	switch redcon.Type(b[0]) {
	case redcon.Integer, redcon.String, redcon.Bulk, redcon.Array, redcon.Error:
		return true
	}
	return false
}

// parseInt reads the digits of an integer reply, which ReadNextRESP checked.
func parseInt(data []byte) int64 {
	var n int64
	neg := len(data) > 0 && data[0] == '-'
	if neg {
		data = data[1:]
	}
	for _, c := range data {
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -n
	}
	return n
}
