package proxy

import (
	"io"

	"github.com/tidwall/redcon"
)

// protocolError is a request the client got wrong; like redcon's parse
// errors, its text is what Redis sends: "Protocol error: …".
type protocolError string

func (e protocolError) Error() string { return "Protocol error: " + string(e) }

const (
	errMalformed    = protocolError("malformed request")
	errQueryTooLong = protocolError("request exceeds the maximum size (limits.max_payload_bytes)")
)

// requestReader frames client commands, RESP or inline, out of a buffer it
// owns, with redcon's ReadNextCommand. Owning the buffer bounds it (one
// request may not exceed max bytes), keeps the commands that precede a
// malformed one (Redis runs them), and reuses the argument slices.
//
// Arguments returned by next point into the buffer: they stay valid until
// the next call to fill.
type requestReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unparsed data is buf[start:end]
	max        int
	initial    int // size of a new buffer
	keep       int // a buffer grown past this is given back once empty
	args       [][]byte
}

const (
	// Most connections send a few small commands, then wait (subscribers):
	// a buffer that doubles as requests need it costs them little.
	initialRequestBuffer = 1 << 10
	// A buffer grown for a large request is given back once it is empty.
	keepRequestBuffer = 64 << 10
)

func newRequestReader(r io.Reader, max int) *requestReader {
	return &requestReader{r: r, buf: make([]byte, initialRequestBuffer), max: max,
		initial: initialRequestBuffer, keep: keepRequestBuffer}
}

// next returns the next buffered command; ok is false when the buffer holds
// no complete command. An error is a protocol error owed to the client.
func (q *requestReader) next() (args [][]byte, ok bool, err error) {
	defer func() {
		// ReadNextCommand indexes with client-supplied lengths; an absurd
		// one must end the connection, not the process.
		if recover() != nil {
			args, ok, err = nil, false, errMalformed
		}
	}()
	for q.start < q.end {
		complete, args, _, leftover, err := redcon.ReadNextCommand(q.buf[q.start:q.end], q.args[:0])
		if err != nil {
			return nil, false, err
		}
		if !complete {
			return nil, false, nil
		}
		q.start = q.end - len(leftover)
		q.args = args[:0]
		if len(args) > 0 { // an empty inline line or "*0" is nothing
			return args, true, nil
		}
	}
	return nil, false, nil
}

// fill reads more data, making room first. It fails with errQueryTooLong
// when one request would not fit in max bytes.
func (q *requestReader) fill() error {
	pending := q.end - q.start
	if pending >= q.max {
		return errQueryTooLong
	}
	if pending == 0 && len(q.buf) > q.keep {
		q.buf = make([]byte, q.initial)
	} else {
		copy(q.buf, q.buf[q.start:q.end])
	}
	q.start, q.end = 0, pending
	if q.end == len(q.buf) {
		grown := make([]byte, min(2*len(q.buf), q.max))
		copy(grown, q.buf[:q.end])
		q.buf = grown
	}
	n, err := q.r.Read(q.buf[q.end:])
	q.end += n
	if n > 0 {
		return nil // handle the data; a read error recurs on the next fill
	}
	return err
}
