package proxy

import (
	"bytes"
	"io"
	"math"
)

// protocolError is a request the client got wrong; its text is what Redis
// sends: "Protocol error: …".
type protocolError string

func (e protocolError) Error() string { return "Protocol error: " + string(e) }

// Redis 7.0's texts (networking.c), and pubgate's own for a request over
// limits.max_payload_bytes.
const (
	errInvalidMultibulk = protocolError("invalid multibulk length")
	errInvalidBulk      = protocolError("invalid bulk length")
	errUnauthMultibulk  = protocolError("unauthenticated multibulk length")
	errUnauthBulk       = protocolError("unauthenticated bulk length")
	errInlineTooBig     = protocolError("too big inline request")
	errMultibulkTooBig  = protocolError("too big mbulk count string")
	errBulkCountTooBig  = protocolError("too big bulk count string")
	errUnbalancedQuotes = protocolError("unbalanced quotes in request")
	errQueryTooLong     = protocolError("request exceeds the maximum size (limits.max_payload_bytes)")
)

func errExpectedBulk(got byte) error {
	return protocolError("expected '$', got '" + string([]byte{got}) + "'")
}

// Limits on a request, Redis 7.0's (networking.c) unless said otherwise.
const (
	// maxLineBytes is PROTO_INLINE_MAX_SIZE: an inline request, and a
	// multibulk's count and length lines, end within it. Redis refuses a
	// line once more than this waits in its buffer without its end, which
	// depends on how the line was split into reads; pubgate counts from the
	// line's start, its ending included, so that the outcome does not (it is
	// tighter by the one or two bytes of the ending at most).
	maxLineBytes = 64 << 10
	// maxElements is INT_MAX, as in Redis 7.0 (6.x: 1024*1024).
	maxElements = math.MaxInt32
	// maxBulkBytes is proto-max-bulk-len's default; limits.max_payload_bytes
	// is smaller, and is what refuses a bulk first unless the length is absurd.
	maxBulkBytes = 512 << 20

	// Before authentication Redis takes at most 10 elements and bulks of at
	// most 16 KiB (authRequired). Those still allow requests of 160 KiB, so
	// pubgate also bounds the whole request (and so its buffer) to 64 KiB,
	// as much as one inline request: an unauthenticated connection pins no
	// more. AUTH and HELLO … AUTH with a long token fit easily.
	unauthenticatedElements     = 10
	unauthenticatedBulkBytes    = 16 << 10
	unauthenticatedRequestBytes = 64 << 10
)

// requestReader frames client commands out of a buffer it owns, as Redis
// 7.0's processInputBuffer does: a request that starts with '*' is a
// multibulk, anything else one inline line, split as sdssplitargs splits
// it; "*0" and "*-1" are nothing, like an empty line. Owning the buffer
// bounds it (one request may take at most limit bytes: small until the
// client authenticates), keeps the commands that precede a malformed one
// (Redis runs them), and reuses the argument slices.
//
// The parser is our own, not redcon's ReadNextCommand: that parses a
// buffer from its start and cannot resume, so a request arriving in many
// reads was parsed again after each one (quadratic in its size, 30 ms per
// byte at 1 MB), and its framing is not Redis's (a bulk header outside a
// multibulk runs, no \x escapes inline, "*-1" is an error). This one keeps
// its place between reads: the elements parsed so far, as offsets from the
// request's start (which stay valid when the buffer is compacted or
// grown), the bulk being read, how far a line was searched for its end.
// Each byte is examined a bounded number of times however the request is
// split, and all indexing is bounded by what is buffered: it cannot panic
// (FuzzRequestReader). redcon's writers still build the replies.
//
// Arguments returned by next point into the buffer: they stay valid until
// the next call to fill.
type requestReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unparsed data is buf[start:end]; a request begins at start
	max        int // the largest request once authenticated
	initial    int // size of a new buffer
	keep       int // a buffer grown past this is given back once empty
	authed     bool
	err        error // a protocol error ends the stream: it is returned again
	// filled says the last read filled the buffer: the client sends more
	// at a time than it holds (a pipeline), and a buffer that held all of
	// it would let the session answer it in one batch instead of two.
	filled bool

	// The request being parsed; offsets are from start.
	kind     byte // 0 before its first byte, '*' multibulk, 'i' inline
	pos      int  // bytes parsed
	searched int  // the line at pos has no end in buf[start+pos : start+searched]
	stuck    bool // the line at pos holds a NUL: as with Redis's strchr, it never ends
	elements int  // multibulk elements still to read; -1 before the count line
	bulk     int  // length of the bulk being read; -1 while its length line is next
	spans    []span
	args     [][]byte

	scanned int // bytes examined by the parser, for tests: linear, never quadratic
}

// span is an argument, as offsets from the request's start.
type span struct{ from, to int }

const (
	// Most connections send a few small commands, then wait (subscribers):
	// a buffer that doubles as requests need it costs them little.
	initialRequestBuffer = 1 << 10
	// A buffer grown for a large request is given back once it is empty.
	keepRequestBuffer = 64 << 10
	// Argument slices grown for a request of many elements are given back
	// before the next request.
	keepArgs = 1 << 10
)

func newRequestReader(r io.Reader, max int) *requestReader {
	return &requestReader{r: r, buf: make([]byte, initialRequestBuffer), max: max,
		initial: initialRequestBuffer, keep: keepRequestBuffer}
}

// setAuthenticated switches between the limits before and after
// authentication; they apply from the next request (Redis checks them as
// it parses, so a pipelined AUTH lifts them for what follows it).
func (q *requestReader) setAuthenticated(authenticated bool) { q.authed = authenticated }

// limit is the largest request the connection may send now.
func (q *requestReader) limit() int {
	if q.authed {
		return q.max
	}
	return min(q.max, unauthenticatedRequestBytes)
}

// next returns the next buffered command; ok is false when the buffer holds
// no complete command. An error is a protocol error owed to the client.
func (q *requestReader) next() (args [][]byte, ok bool, err error) {
	if cap(q.args) > keepArgs {
		q.args = nil
	}
	for q.err == nil && q.start < q.end {
		done, err := q.parse(q.buf[q.start:q.end])
		if err != nil {
			q.err = err
			break
		}
		if !done {
			return nil, false, nil
		}
		req := q.buf[q.start : q.start+q.pos]
		q.args = q.args[:0]
		for _, s := range q.spans {
			q.args = append(q.args, req[s.from:s.to:s.to])
		}
		q.start += q.pos
		q.kind, q.pos, q.searched, q.stuck, q.spans = 0, 0, 0, false, q.spans[:0]
		if cap(q.spans) > keepArgs {
			q.spans = nil
		}
		if len(q.args) > 0 { // an empty line or "*0" is nothing
			return q.args, true, nil
		}
	}
	return nil, false, q.err
}

// parse resumes parsing the request that begins data. It reports done
// once the request is complete (q.pos is its length, q.spans its
// arguments), and a protocol error once it cannot be.
func (q *requestReader) parse(data []byte) (done bool, err error) {
	limit := q.limit()
	if q.kind == 0 {
		q.kind, q.elements, q.bulk = 'i', -1, -1
		if data[0] == '*' {
			q.kind = '*'
		}
	}
	if q.kind == 'i' {
		end, err := q.line(data, '\n', 0, limit)
		if end < 0 || err != nil {
			return false, err
		}
		q.pos = end + 1
		if end > 0 && data[end-1] == '\r' {
			end--
		}
		return true, q.splitInline(data[:end])
	}
	if q.elements < 0 {
		n, ok, end, err := q.header(data, '*', limit)
		if end < 0 || err != nil {
			return false, err
		}
		switch {
		case !ok || n > maxElements:
			return false, errInvalidMultibulk
		case n > unauthenticatedElements && !q.authed:
			return false, errUnauthMultibulk
		}
		q.pos = end + 2 // Redis takes the byte after '\r' for '\n' unseen
		if n <= 0 {
			return true, nil
		}
		q.elements = int(n)
	}
	for q.elements > 0 {
		if q.bulk < 0 {
			n, ok, end, err := q.header(data, '$', limit)
			if end < 0 || err != nil {
				return false, err
			}
			if data[q.pos] != '$' {
				return false, errExpectedBulk(data[q.pos])
			}
			switch {
			case !ok || n < 0 || n > maxBulkBytes:
				return false, errInvalidBulk
			case n > unauthenticatedBulkBytes && !q.authed:
				return false, errUnauthBulk
			case int64(end+2)+n+2 > int64(limit):
				return false, q.tooLarge()
			}
			q.pos, q.bulk = end+2, int(n)
		}
		if len(data)-q.pos < q.bulk+2 {
			return false, nil
		}
		// Like Redis, the two bytes after the bulk are skipped unseen.
		q.spans = append(q.spans, span{q.pos, q.pos + q.bulk})
		q.pos += q.bulk + 2
		q.bulk = -1
		q.elements--
	}
	return true, nil
}

// header reads the line at q.pos of a multibulk, its count or a bulk's
// length: a byte (lead: '*' or '$'; the caller checks it), then a number as
// string2ll reads it, up to its '\r' at end; ok is false if the number is
// not one. end is -1 while the line is not all buffered.
func (q *requestReader) header(data []byte, lead byte, limit int) (n int64, ok bool, end int, err error) {
	// The common line, "$16\r\n", is read in one pass on its first try
	// (nothing of it searched yet): lead, 1 to 18 digits without a leading
	// zero, '\r' and the byte after it; line and parseInt read the same.
	if i := q.pos + 1; q.searched <= q.pos && i < len(data) && data[q.pos] == lead && '1' <= data[i] && data[i] <= '9' {
		for ; i < len(data) && i <= q.pos+18 && '0' <= data[i] && data[i] <= '9'; i++ {
			n = n*10 + int64(data[i]-'0')
		}
		q.scanned += i - q.pos
		if i+1 < len(data) && data[i] == '\r' && i+2 <= limit {
			return n, true, i, nil
		}
		n = 0
	}
	end, err = q.line(data, '\r', 1, limit)
	if end < 0 || err != nil {
		return 0, false, -1, err
	}
	if end > q.pos { // else the line is empty: not even the leading byte
		n, ok = parseInt(data[q.pos+1 : end])
		q.scanned += end - q.pos
	}
	return n, ok, end, nil
}

// tooLarge is the error for a request over the connection's limit.
func (q *requestReader) tooLarge() error {
	if q.authed {
		return errQueryTooLong
	}
	return errUnauthBulk
}

// line finds the end of the line that begins at q.pos: the offset of term,
// or -1 while it is not buffered. A header line (after > 0) also needs the
// byte after its '\r'. Like Redis's strchr, the search stops at a NUL: such
// a line never ends, and is refused once it reaches the most a line may
// take. Each byte is searched once, however the line arrives.
func (q *requestReader) line(data []byte, term byte, after, limit int) (int, error) {
	most := min(maxLineBytes, limit-q.pos) // bytes the line may take, its ending included
	if !q.stuck {
		from := max(q.searched, q.pos)
		to := min(len(data), q.pos+most-after)
		if from < to {
			window := data[from:to]
			i := bytes.IndexByte(window, term)
			seg := window
			if i >= 0 {
				seg = window[:i]
			}
			q.scanned += 2 * len(seg) // the search for term, then for a NUL
			switch {
			case bytes.IndexByte(seg, 0) >= 0:
				q.stuck = true
			case i >= 0:
				q.scanned++
				q.searched = from + i // found again at once if the byte after is missing
				if from+i+after < len(data) {
					return from + i, nil
				}
				return -1, nil
			default:
				q.searched = to
			}
		}
	}
	if len(data)-q.pos < most-after {
		return -1, nil
	}
	// Redis's text for a line over its size; over the request limit,
	// pubgate's, or before authentication Redis's nearest.
	switch {
	case q.kind == 'i' && (most == maxLineBytes || !q.authed):
		return -1, errInlineTooBig
	case q.elements < 0 && (most == maxLineBytes || !q.authed):
		return -1, errMultibulkTooBig
	case most == maxLineBytes:
		return -1, errBulkCountTooBig
	}
	return -1, q.tooLarge()
}

// parseInt is Redis's string2ll, for request framing and for commands'
// integer arguments: an optional '-', then digits without a leading zero
// (except "0" itself), in at most 20 bytes, within int64. It does not
// allocate.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	switch {
	case neg && v <= 1<<63:
		return int64(-v), true
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	}
	return 0, false
}

// splitInline splits an inline request into q.spans as Redis's
// sdssplitargs does: blanks separate arguments; "double quotes" take \xHH
// and \n \r \t \b \a escapes (any other escaped byte stands for itself),
// 'single quotes' only \'; a closing quote must be followed by a blank or
// the end. An argument is never longer than its source, so it is written
// over it, in place. line holds no NUL (see line), so the NUL that ends a
// C string is the end of line here.
func (q *requestReader) splitInline(line []byte) error {
	q.scanned += len(line)
	at := func(i int) byte {
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return nil
		}
		from, w := p, p
		inDouble, inSingle := false, false
		for done := false; !done; {
			c := at(p)
			switch {
			case inDouble:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					line[w] = unhex(at(p+2))<<4 | unhex(at(p+3))
					w++
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					line[w] = unescape(line[p])
					w++
				case c == '"':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return errUnbalancedQuotes
				default:
					line[w] = c
					w++
				}
			case inSingle:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					line[w] = '\''
					w++
				case c == '\'':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return errUnbalancedQuotes
					}
					done = true
				case c == 0:
					return errUnbalancedQuotes
				default:
					line[w] = c
					w++
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					line[w] = c
					w++
				}
			}
			if p < len(line) {
				p++
			}
		}
		q.spans = append(q.spans, span{from, w})
	}
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// fill reads more data, making room first: it compacts the buffer when
// that frees at least half of it, else grows it, up to the request limit,
// so that a request costs copies linear in its size however it arrives.
func (q *requestReader) fill() error {
	if q.err != nil {
		return q.err
	}
	pending := q.end - q.start
	switch {
	case pending == 0:
		q.start, q.end = 0, 0
		switch {
		case len(q.buf) > q.keep:
			q.buf = make([]byte, q.initial)
		case q.filled && len(q.buf) < min(q.keep, q.limit()):
			q.buf = make([]byte, 2*len(q.buf))
		}
	case q.end == len(q.buf):
		limit := q.limit()
		if pending >= limit { // the parser refuses such a request first
			q.err = q.tooLarge()
			return q.err
		}
		// A large request needs room; a pipeline that filled the buffer
		// gets it too, up to keep.
		if (pending > len(q.buf)/2 || len(q.buf) < q.keep) && len(q.buf) < limit {
			grown := make([]byte, min(2*len(q.buf), limit))
			copy(grown, q.buf[q.start:q.end])
			q.buf = grown
		} else {
			copy(q.buf, q.buf[q.start:q.end])
		}
		q.start, q.end = 0, pending
	}
	n, err := q.r.Read(q.buf[q.end:])
	q.end += n
	q.filled = q.end == len(q.buf)
	if n > 0 {
		return nil // handle the data; a read error recurs on the next fill
	}
	return err
}
