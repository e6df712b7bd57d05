package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// drain frames every command of input, read one byte at a time (the worst
// fragmentation), and returns them with the error that ended the stream.
func drain(input []byte, max int, authenticated bool) (cmds [][]string, err error) {
	q := newRequestReader(iotest.OneByteReader(bytes.NewReader(input)), max)
	q.setAuthenticated(authenticated)
	for {
		args, ok, err := q.next()
		if err != nil {
			return cmds, err
		}
		if ok {
			cmds = append(cmds, strs(args))
			continue
		}
		if err := q.fill(); err != nil {
			return cmds, err
		}
	}
}

func strs(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

func TestRequestReaderFraming(t *testing.T) {
	input := "*2\r\n$4\r\nECHO\r\n$3\r\na b\r\nPING x\r\n\r\n*0\r\nECHO \"q r\"\r\n"
	cmds, err := drain([]byte(input), 1024, false)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v", err)
	}
	if got, want := fmt.Sprintf("%q", cmds), `[["ECHO" "a b"] ["PING" "x"] ["ECHO" "q r"]]`; got != want {
		t.Fatalf("framed %s, want %s", got, want)
	}
	oversized := []byte("*1\r\n$2000\r\n" + string(make([]byte, 2000)))
	if _, err := drain(oversized, 1024, true); !errors.Is(err, errQueryTooLong) {
		t.Fatalf("oversized request: %v", err)
	}
	if _, err := drain(oversized, 1024, false); !errors.Is(err, errUnauthBulk) {
		t.Fatalf("oversized request before AUTH: %v", err)
	}
}

// TestRequestReaderFramesAsRedis: Redis 7.0's processInputBuffer, case by
// case (each checked against redis-server 7.0.15; the differential test
// TestFramingMatchesRedis repeats those a client can observe).
func TestRequestReaderFramesAsRedis(t *testing.T) {
	const eof = "EOF"
	cases := []struct {
		name, input   string
		authenticated bool
		want, end     string // commands as %q, and how the stream ended
	}{
		{"bulk header outside a multibulk is inline", "$4\r\nPING\r\n", true, `[["$4"] ["PING"]]`, eof},
		{"inline \\x escape", "ECHO \"\\x41\"\r\n", true, `[["ECHO" "A"]]`, eof},
		{"inline double-quote escapes", "ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\q\\x4\\xzz\"\r\n", true, `[["ECHO" "\n\r\t\b\a\\\"qx4xzz"]]`, eof},
		{"inline single quotes", "ECHO 'it\\'s' '\\n\\x41\"'\r\n", true, `[["ECHO" "it's" "\\n\\x41\""]]`, eof},
		{"quotes inside an argument", "ECHO a\"b c\"\r\n", true, `[["ECHO" "ab c"]]`, eof},
		{"empty quoted argument", "ECHO \"\" ''\r\n", true, `[["ECHO" "" ""]]`, eof},
		{"blanks", " \t\vECHO\ta\rb c\vd \f\r\n", true, `[["ECHO" "a" "b" "c\vd"]]`, eof},
		{"bare LF and CR LF", "PING\nPING\r\n\r\r\n", true, `[["PING"] ["PING"]]`, eof},
		{"closing quote not followed by a blank", "PING\r\nECHO \"a\"b\r\n", true, `[["PING"]]`, string(errUnbalancedQuotes)},
		{"closing quote followed by \\v", "ECHO \"a\"\vb\r\n", true, `[["ECHO" "a" "b"]]`, eof},
		{"unterminated double quote", "ECHO \"abc\r\n", true, `[]`, string(errUnbalancedQuotes)},
		{"unterminated single quote", "ECHO 'abc\\'\r\n", true, `[]`, string(errUnbalancedQuotes)},
		{"escaped quote at the end", "ECHO \"a\\\"\r\n", true, `[]`, string(errUnbalancedQuotes)},
		{"empty lines and *0 and *-1 are nothing", "\r\n\n   \r\n*0\r\n*-1\r\n*-10\r\nPING\r\n", true, `[["PING"]]`, eof},
		{"*-0 is no number", "*-0\r\n", true, `[]`, string(errInvalidMultibulk)},
		{"*+1 is no number", "*+1\r\n", true, `[]`, string(errInvalidMultibulk)},
		{"empty count", "*\r\n", true, `[]`, string(errInvalidMultibulk)},
		{"count over INT_MAX", "*2147483648\r\n", true, `[]`, string(errInvalidMultibulk)},
		{"count at INT_MAX waits", "*2147483647\r\n", true, `[]`, eof},
		{"not a bulk", "PING\r\n*1\r\n+PING\r\n", true, `[["PING"]]`, "expected '$', got '+'"},
		{"not a bulk: CR", "*1\r\n\r\n", true, `[]`, "expected '$', got '\r'"},
		{"negative bulk length", "*1\r\n$-1\r\n", true, `[]`, string(errInvalidBulk)},
		{"leading zero", "*1\r\n$04\r\nPING\r\n", true, `[]`, string(errInvalidBulk)},
		{"bulk over proto-max-bulk-len", "*1\r\n$536870913\r\n", true, `[]`, string(errInvalidBulk)},
		{"bulk length over int64", "*1\r\n$9223372036854775808\r\n", true, `[]`, string(errInvalidBulk)},
		{"bytes after a bulk are skipped unseen", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", true, `[["PING"] ["PING"]]`, eof},
		{"the byte after CR is taken for LF", "*1\rX$4\rYPING\r\n", true, `[["PING"]]`, eof},
		{"binary bulk", "*2\r\n$4\r\nECHO\r\n$3\r\n\x00\r\n\r\n", true, `[["ECHO" "\x00\r\n"]]`, eof},
		{"NUL in an inline line: it never ends", "PI\x00NG\r\nPING\r\n", true, `[]`, eof},
		{"NUL in a count line", "*1\x00\r\n$4\r\nPING\r\n", true, `[]`, eof},
		{"NUL after a request", "PING\r\n\x00", true, `[["PING"]]`, eof},
		{"NUL line too long", "\x00" + strings.Repeat("\n", maxLineBytes), true, `[]`, string(errInlineTooBig)},
		{"inline at the limit", "ECHO " + strings.Repeat("i", maxLineBytes-7) + "\r\n", false, `[["ECHO" "` + strings.Repeat("i", maxLineBytes-7) + `"]]`, eof},
		{"inline over the limit", "ECHO " + strings.Repeat("i", maxLineBytes-6) + "\r\n", true, `[]`, string(errInlineTooBig)},
		{"count line over the limit", "*" + strings.Repeat("1", maxLineBytes), true, `[]`, string(errMultibulkTooBig)},
		{"length line over the limit", "*1\r\n$" + strings.Repeat("1", maxLineBytes), true, `[]`, string(errBulkCountTooBig)},
		{"10 elements before AUTH", "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), false, `[["a" "a" "a" "a" "a" "a" "a" "a" "a" "a"]]`, eof},
		{"11 elements before AUTH", "*11\r\n", false, `[]`, string(errUnauthMultibulk)},
		{"11 elements after AUTH", "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11), true, `[["a" "a" "a" "a" "a" "a" "a" "a" "a" "a" "a"]]`, eof},
		{"16 KiB bulk before AUTH", "*2\r\n$4\r\nAUTH\r\n$16384\r\n" + strings.Repeat("p", 16384) + "\r\n", false, `[["AUTH" "` + strings.Repeat("p", 16384) + `"]]`, eof},
		{"bulk over 16 KiB before AUTH", "*2\r\n$4\r\nAUTH\r\n$16385\r\n", false, `[]`, string(errUnauthBulk)},
		{"request over 64 KiB before AUTH", "*5\r\n" + strings.Repeat("$16384\r\n"+strings.Repeat("p", 16384)+"\r\n", 3) + "$16384\r\n", false, `[]`, string(errUnauthBulk)},
		{"invalid before unauthenticated", "*2147483648\r\n", false, `[]`, string(errInvalidMultibulk)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmds, err := drain([]byte(c.input), 1<<20, c.authenticated)
			end := eof
			if !errors.Is(err, io.EOF) {
				end = strings.TrimPrefix(err.Error(), "Protocol error: ")
			}
			if got := fmt.Sprintf("%q", cmds); got != c.want || end != c.end {
				t.Fatalf("framed %.200s, ended with %q; want %.200s, %q", got, end, c.want, c.end)
			}
		})
	}
}

// TestRequestReaderLimitsFollowAuthentication: the limits change between
// two requests of one read, as AUTH changes them in Redis.
func TestRequestReaderLimitsFollowAuthentication(t *testing.T) {
	big := fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", 100<<10, strings.Repeat("e", 100<<10))
	q := newRequestReader(&chunkReader{chunks: []string{"AUTH x\r\n" + big + "RESET\r\n" + big}}, 1<<20)
	var got []string
	for {
		args, ok, err := q.next()
		if err != nil {
			if got := strings.Join(got, " "); err != errUnauthBulk || got != "AUTH ECHO RESET" {
				t.Fatalf("ran %s, then %v", got, err)
			}
			return
		}
		if ok {
			got = append(got, string(args[0]))
			switch string(args[0]) {
			case "AUTH":
				q.setAuthenticated(true)
			case "RESET":
				q.setAuthenticated(false)
			}
			continue
		}
		if err := q.fill(); err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
	}
}

// TestUnauthenticatedBufferIsBounded: before authentication, whatever a
// client sends, the reader holds at most 64 KiB; it refuses a request that
// would need more as soon as the request says so.
func TestUnauthenticatedBufferIsBounded(t *testing.T) {
	for name, input := range map[string]string{
		"1 MB AUTH password":    "*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$1000000\r\n" + strings.Repeat("p", 100<<10),
		"many elements":         "*140002\r\n$4\r\nAUTH\r\n" + strings.Repeat("$1\r\na\r\n", 20000),
		"bulks of 16 KiB":       "*10\r\n" + strings.Repeat("$16384\r\n"+strings.Repeat("p", 16384)+"\r\n", 10),
		"endless inline":        strings.Repeat("AUTH ", 30000),
		"endless length line":   "*2\r\n$4\r\nAUTH\r\n$" + strings.Repeat("1", 100<<10),
		"line that cannot end":  "AUTH \x00" + strings.Repeat("p\r\n", 30000),
		"many small requests":   strings.Repeat("*2\r\n$4\r\nAUTH\r\n$3\r\nabc\r\n", 20000),
		"several long requests": strings.Repeat("AUTH "+strings.Repeat("p", 60000)+"\r\n", 5),
	} {
		t.Run(name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, 4096, 1 << 20} {
				q := newRequestReader(&chunkReader{chunks: chunks(input, chunk)}, 2<<20)
				largest := 0
				var err error
				for err == nil {
					var ok bool
					if _, ok, err = q.next(); !ok && err == nil {
						err = q.fill()
					}
					largest = max(largest, len(q.buf))
				}
				if largest > unauthenticatedRequestBytes {
					t.Fatalf("chunks of %d: the buffer grew to %d bytes (ended with %v)", chunk, largest, err)
				}
			}
		})
	}
}

func chunks(s string, size int) []string {
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// trickledRequest is the request of the quadratic re-parse finding: a
// multibulk of n+2 elements, its n one-byte bulks arriving a byte per read.
func trickledRequest(n int) string {
	return fmt.Sprintf("*%d\r\n$4\r\nAUTH\r\n", n+2) + strings.Repeat("$1\r\na\r\n", n) + "$1\r\nz\r\n"
}

// TestTrickledRequestIsParsedOnce: a 1 MB request arriving one byte per
// read is parsed in time linear in its size: the parser examines each byte
// a bounded number of times (it used to parse the whole buffer again after
// every read: 140,000 times 1 MB).
func TestTrickledRequestIsParsedOnce(t *testing.T) {
	request := trickledRequest(140000)
	q := newRequestReader(iotest.OneByteReader(strings.NewReader(request)), 2<<20)
	q.setAuthenticated(true)
	reads := 0
	for {
		args, ok, err := q.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if len(args) != 140002 || string(args[140001]) != "z" {
				t.Fatalf("framed %d arguments", len(args))
			}
			break
		}
		if err := q.fill(); err != nil {
			t.Fatal(err)
		}
		reads++
	}
	if reads != len(request) {
		t.Fatalf("%d reads for %d bytes", reads, len(request))
	}
	if q.scanned >= 3*len(request) {
		t.Fatalf("the parser examined %d bytes for a request of %d", q.scanned, len(request))
	}
	t.Logf("examined %d bytes for a request of %d arriving in %d reads", q.scanned, len(request), reads)
}

// BenchmarkTrickledRequest is the CPU cost of one more byte of a request
// that arrives a byte per read, with little or 1 MB of it already
// buffered: flat once parsing resumes (it was ~30 ms per byte at 1 MB).
func BenchmarkTrickledRequest(b *testing.B) {
	for _, buffered := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("buffered=%dKiB", buffered>>10), func(b *testing.B) {
			// Enough elements to trickle b.N bytes after the buffered ones.
			request := trickledRequest((buffered + b.N + 64) / 7)
			r := &trickleReader{data: request, whole: buffered}
			q := newRequestReader(r, 1<<30)
			q.setAuthenticated(true)
			for r.read < buffered {
				if _, ok, err := q.next(); ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := q.fill(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, ok, err := q.next(); ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := q.fill(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPipelinedRequests is the cost of framing a command of a
// pipeline read whole, the common case: 100 PUBLISHes of 32 bytes per op.
func BenchmarkPipelinedRequests(b *testing.B) {
	input := strings.Repeat("*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$32\r\n"+strings.Repeat("p", 32)+"\r\n", 100)
	r := strings.NewReader(input)
	q := newRequestReader(r, 1<<20)
	q.setAuthenticated(true)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(input)
		for n := 0; n < 100; {
			_, ok, err := q.next()
			switch {
			case ok:
				n++
			case err != nil:
				b.Fatal(err)
			default:
				if err := q.fill(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// trickleReader returns its first whole bytes as fast as asked, then one
// byte per Read.
type trickleReader struct {
	data        string
	whole, read int
}

func (t *trickleReader) Read(p []byte) (int, error) {
	if t.read == len(t.data) {
		return 0, io.EOF
	}
	n := 1
	if t.read < t.whole {
		n = t.whole - t.read
	}
	n = copy(p[:min(n, len(p))], t.data[t.read:])
	t.read += n
	return n, nil
}

// TestRequestReaderShrinksAfterLargeRequest: a request larger than the
// buffer kept between requests, ending exactly at a read boundary, is
// followed by ordinary requests (the buffer is given back in between).
func TestRequestReaderShrinksAfterLargeRequest(t *testing.T) {
	big := fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", 100<<10, strings.Repeat("b", 100<<10))
	input := big + "PING\r\n" + big + "PING\r\n"
	cmds, err := drain([]byte(input), 1<<20, true)
	if !errors.Is(err, io.EOF) || len(cmds) != 4 || cmds[1][0] != "PING" || len(cmds[2][1]) != 100<<10 {
		t.Fatalf("framed %d commands, err %v", len(cmds), err)
	}
	// Whole requests per read, as a client writing each in one go produces.
	q := newRequestReader(&chunkReader{chunks: []string{big, "PING\r\n"}}, 1<<20)
	q.setAuthenticated(true)
	for _, want := range []string{"ECHO", "PING"} {
		args, ok, err := q.next()
		for !ok && err == nil {
			if err = q.fill(); err == nil {
				args, ok, err = q.next()
			}
		}
		if err != nil || string(args[0]) != want {
			t.Fatalf("want %s, got %q, %v", want, args, err)
		}
		if want == "PING" && len(q.buf) != initialRequestBuffer {
			t.Fatalf("the buffer of %d bytes was kept", len(q.buf))
		}
	}
}

// chunkReader returns one chunk per Read.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestRequestBufferGrowsForPipelines: a client whose pipelines fill the
// buffer gets a larger one, so that its next pipeline is read in one go and
// the session answers it as one batch (one upstream round trip, one reply
// write) rather than in pieces; a client of small commands keeps the small
// buffer.
func TestRequestBufferGrowsForPipelines(t *testing.T) {
	publish := "*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$64\r\n" + strings.Repeat("x", 64) + "\r\n"
	pipeline := strings.Repeat(publish, 16) // 1.6 KB, more than the initial buffer
	src := &chunkReader{}                   // a chunk per Read, as a TLS connection hands out a record
	for range 4 {
		src.chunks = append(src.chunks, pipeline)
	}
	q := newRequestReader(src, 1<<20)
	q.setAuthenticated(true)
	var readsPerPipeline []int
	commands, reads := 0, 0
	for len(readsPerPipeline) < 4 {
		_, ok, err := q.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if commands++; commands%16 == 0 {
				readsPerPipeline = append(readsPerPipeline, reads)
				reads = 0
			}
			continue
		}
		if err := q.fill(); err != nil {
			t.Fatal(err)
		}
		reads++
	}
	if last := readsPerPipeline[3]; last != 1 {
		t.Errorf("reads per pipeline %v: the last took %d reads, want 1 once the buffer grew", readsPerPipeline, last)
	}

	small := newRequestReader(&chunkReader{chunks: []string{"*1\r\n$4\r\nPING\r\n", "*1\r\n$4\r\nPING\r\n"}}, 1<<20)
	for range 2 {
		if err := small.fill(); err != nil {
			t.Fatal(err)
		}
		for {
			if _, ok, _ := small.next(); !ok {
				break
			}
		}
	}
	if len(small.buf) != initialRequestBuffer {
		t.Errorf("a client of small commands has a %d-byte buffer, want %d", len(small.buf), initialRequestBuffer)
	}
}
