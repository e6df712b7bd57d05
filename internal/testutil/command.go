package testutil

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// redisError is an error reply. It is kept apart from I/O errors so that a
// caller can tell "the server said no" from "the server is not there".
type redisError string

func (e redisError) Error() string { return string(e) }

// do sends one command on a fresh connection and returns its reply: a string
// for a simple, bulk or integer reply, []any for an array, nil for a null,
// and a redisError for an error reply. A fresh connection per command keeps
// the topology helpers free of connection state across server restarts.
func (r *RedisServer) do(args ...string) (any, error) {
	c, err := r.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(encodeCommand(args)); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(c))
}

// text is do for commands whose reply is a string.
func (r *RedisServer) text(args ...string) (string, error) {
	reply, err := r.do(args...)
	if err != nil {
		return "", err
	}
	s, ok := reply.(string)
	if !ok {
		return "", fmt.Errorf("%s %v: want a string reply, got %v", r.Addr(), args, reply)
	}
	return s, nil
}

// fields runs a command that answers with "name:value" lines (INFO,
// CLUSTER INFO) and returns them by name.
func (r *RedisServer) fields(args ...string) (map[string]string, error) {
	s, err := r.text(args...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\r\n") {
		if name, value, ok := strings.Cut(line, ":"); ok {
			m[name] = value
		}
	}
	return m, nil
}

// pairs turns a flat name, value, name, value… array (SENTINEL MASTER,
// one entry of SENTINEL REPLICAS) into a map.
func pairs(reply any) map[string]string {
	items, _ := reply.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(items); i += 2 {
		name, _ := items[i].(string)
		value, _ := items[i+1].(string)
		m[name] = value
	}
	return m
}

// encodeCommand renders a command as a RESP array of bulk strings, which
// carries any argument (spaces, quotes, CRLF) unchanged.
func encodeCommand(args []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

// readReply parses one RESP2 reply into Go values; unlike readFrame, which
// renders replies for byte-exact assertions, it is for reading answers.
func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+', ':':
		return body, nil
	case '-':
		return nil, redisError(body)
	case '$':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		_, err := io.ReadFull(rd, buf)
		return string(buf[:n]), err
	case '*':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readReply(rd); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
