package proxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzRequestReader: any byte stream frames into the same commands and
// ends the same way (EOF or the same protocol error) whether it arrives
// whole or split at random points; the reader never panics, never holds a
// buffer beyond its bound, and examines each byte a bounded number of
// times. AUTH and RESET switch the limits as a session does.
//
// seed picks the split points and the configuration: bit 0 starts
// authenticated, bit 1 allows 1 MiB requests (Redis's limits apply) rather
// than 256 bytes (the request limit applies first).
func FuzzRequestReader(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n", "PING\r\n", "*x\r\n", "*1\r\n$-5\r\n", "*1\r\n$9223372036854775806\r\nab\r\n",
		"*2\r\n$1\r\na\r\n", "\"unbalanced\r\n", "$4\r\nPING\r\n", "*-1\r\nPING\r\n", "*0\r\nPING\r\n",
		"ECHO \"\\x41\"\r\n", "ECHO 'it\\'s' \"\\n\\q\\x4\"\r\n", "ECHO \"a\"b\r\n", "ECHO 'a\r\n",
		"\r\n\n  \r\nPING\r\n", "*1\r\n$4\r\nPINGxx*1\rX$4\r\nPING\r\n", "PI\x00NG\r\n", "*1\r\n+PING\r\n",
		"*1\r\n\r\n", "*2\r\n$4\r\nECHO\r\n\r5\r\nhello\r\n", "*1\r\n$123456789012345678\r\n", "*1\r\n$1234567890123456789\r\n",
		"*11\r\n", "*2\r\n$4\r\nAUTH\r\n$16385\r\n", "AUTH x\r\n*11\r\n" + strings.Repeat("$1\r\na\r\n", 11) + "RESET\r\n*11\r\n",
		"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$1000000\r\n" + strings.Repeat("p", 300),
		"*140002\r\n$4\r\nAUTH\r\n" + strings.Repeat("$1\r\na\r\n", 40),
		strings.Repeat("y", 300), "*" + strings.Repeat("1", 300), "\x00" + strings.Repeat("\n", 300),
	} { // small: the fuzzer mutates (and minimizes) them fast; the 64 KiB limits have their tests
		for _, config := range []uint64{0, 1, 2, 3} {
			f.Add([]byte(seed), config)
		}
	}
	f.Fuzz(func(t *testing.T, input []byte, seed uint64) {
		authenticated, max := seed&1 == 1, 256
		if seed&2 != 0 {
			max = 1 << 20
		}
		whole := frameAll(t, &chunkReader{chunks: []string{string(input)}}, len(input), max, authenticated)
		rng := rand.New(rand.NewPCG(seed, uint64(len(input))))
		var split []string
		for rest := string(input); rest != ""; {
			n := min(len(rest), 1+rng.IntN(1+rng.IntN(64)))
			split, rest = append(split, rest[:n]), rest[n:]
		}
		if got := frameAll(t, &chunkReader{chunks: split}, len(input), max, authenticated); got != whole {
			t.Fatalf("whole:\n%.500s\nsplit in %d reads:\n%.500s", whole, len(split), got)
		}
	})
}

// frameAll frames every command of r and renders them, with how the
// stream ended, checking the reader's bounds on the way.
func frameAll(t *testing.T, r *chunkReader, size, max int, authenticated bool) string {
	q := newRequestReader(r, max)
	// Tiny buffers, so that growing, compacting and giving back happen.
	q.initial, q.keep, q.buf = 8, 32, make([]byte, 8)
	q.setAuthenticated(authenticated)
	everAuthenticated := authenticated
	var out strings.Builder
	for range 4*size + 8 {
		args, ok, err := q.next()
		if ok {
			fmt.Fprintf(&out, "%q\n", strs(args))
			switch strings.ToUpper(string(args[0])) {
			case "AUTH":
				q.setAuthenticated(true)
				everAuthenticated = true
			case "RESET":
				q.setAuthenticated(false)
			}
			continue
		}
		if err == nil {
			err = q.fill()
		}
		bound := max
		if !everAuthenticated {
			bound = min(max, unauthenticatedRequestBytes)
		}
		if len(q.buf) > bound && len(q.buf) > q.initial {
			t.Fatalf("the buffer grew to %d bytes, over %d", len(q.buf), bound)
		}
		if q.scanned > 5*size+8 {
			t.Fatalf("the parser examined %d bytes of %d", q.scanned, size)
		}
		if err != nil {
			fmt.Fprintf(&out, "end: %v\n", err)
			return out.String()
		}
	}
	t.Fatal("the reader made no progress")
	return ""
}
