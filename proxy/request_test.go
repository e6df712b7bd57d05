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
func drain(input []byte, max int) (cmds [][]string, err error) {
	q := newRequestReader(iotest.OneByteReader(bytes.NewReader(input)), max)
	for {
		args, ok, err := q.next()
		if err != nil {
			return cmds, err
		}
		if ok {
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			cmds = append(cmds, cmd)
			continue
		}
		if err := q.fill(); err != nil {
			return cmds, err
		}
	}
}

func TestRequestReaderFraming(t *testing.T) {
	input := "*2\r\n$4\r\nECHO\r\n$3\r\na b\r\nPING x\r\n\r\n*0\r\nECHO \"q r\"\r\n"
	cmds, err := drain([]byte(input), 1024)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v", err)
	}
	want := [][]string{{"ECHO", "a b"}, {"PING", "x"}, {"ECHO", "q r"}}
	if len(cmds) != len(want) {
		t.Fatalf("framed %q, want %q", cmds, want)
	}
	for i := range want {
		if len(cmds[i]) != len(want[i]) || cmds[i][0] != want[i][0] || cmds[i][1] != want[i][1] {
			t.Fatalf("command %d = %q, want %q", i, cmds[i], want[i])
		}
	}
	if _, err := drain([]byte("*1\r\n$2000\r\n"+string(make([]byte, 2000))), 1024); !errors.Is(err, errQueryTooLong) {
		t.Fatalf("oversized request: %v", err)
	}
}

// FuzzRequestReader: any byte stream ends in commands, EOF or a protocol
// error; never a panic, never a buffer beyond its bound.
func FuzzRequestReader(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n", "PING\r\n", "*x\r\n", "*1\r\n$-5\r\n", "*1\r\n$9223372036854775806\r\nab\r\n",
		"*2\r\n$1\r\na\r\n", "\"unbalanced\r\n", "$4\r\nPING\r\n", "*-1\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		// Tiny sizes, so that growing and giving back the buffer happen.
		const max = 256
		q := newRequestReader(iotest.HalfReader(bytes.NewReader(input)), max)
		q.initial, q.keep, q.buf = 8, 32, make([]byte, 8)
		for range 10000 {
			_, ok, err := q.next()
			if err == nil && !ok {
				err = q.fill()
			}
			if len(q.buf) > max {
				t.Fatalf("buffer grew to %d", len(q.buf))
			}
			if err != nil {
				return
			}
		}
		t.Fatal("reader made no progress")
	})
}

// TestRequestReaderShrinksAfterLargeRequest: a request larger than the
// buffer kept between requests, ending exactly at a read boundary, is
// followed by ordinary requests (the buffer is given back in between).
func TestRequestReaderShrinksAfterLargeRequest(t *testing.T) {
	big := fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", 100<<10, strings.Repeat("b", 100<<10))
	input := big + "PING\r\n" + big + "PING\r\n"
	cmds, err := drain([]byte(input), 1<<20)
	if !errors.Is(err, io.EOF) || len(cmds) != 4 || cmds[1][0] != "PING" || len(cmds[2][1]) != 100<<10 {
		t.Fatalf("framed %d commands, err %v", len(cmds), err)
	}
	// Whole requests per read, as a client writing each in one go produces.
	q := newRequestReader(&chunkReader{chunks: []string{big, "PING\r\n"}}, 1<<20)
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
