package proxy

import (
	"bytes"
	"errors"
	"io"
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
		const max = 256
		q := newRequestReader(bytes.NewReader(input), max)
		for range 10000 {
			_, ok, err := q.next()
			if err == nil && !ok {
				err = q.fill()
			}
			if len(q.buf) > max && len(q.buf) > initialRequestBuffer {
				t.Fatalf("buffer grew to %d", len(q.buf))
			}
			if err != nil {
				return
			}
		}
		t.Fatal("reader made no progress")
	})
}
