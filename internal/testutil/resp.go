package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RESPConn is a raw RESP client for checking replies exactly. Read renders
// one reply compactly: OK (simple string), -ERR … (error), :1 (integer),
// "text" (bulk), nil (null), [a b] (array), >[a b] (RESP3 push),
// {k: v} (map).
type RESPConn struct {
	t    testing.TB
	Conn net.Conn
	r    *bufio.Reader
}

// DialRESP connects to addr; the connection closes when the test ends.
func DialRESP(t testing.TB, addr string) *RESPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return NewRESPConn(t, c)
}

// Send writes one command as a RESP array.
func (c *RESPConn) Send(args ...string) {
	c.t.Helper()
	c.SendRaw(string(encodeCommand(args)))
}

// SendRaw writes bytes as they are.
func (c *RESPConn) SendRaw(raw string) {
	c.t.Helper()
	if _, err := c.Conn.Write([]byte(raw)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Do sends a command and reads its reply.
func (c *RESPConn) Do(args ...string) string {
	c.t.Helper()
	c.Send(args...)
	return c.Read()
}

// Read reads and renders one reply, failing the test if none arrives.
func (c *RESPConn) Read() string {
	c.t.Helper()
	s, err := c.TryRead(30 * time.Second)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return s
}

// TryRead reads one reply, returning the error instead of failing.
func (c *RESPConn) TryRead(timeout time.Duration) (string, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	return readFrame(c.r)
}

// Closed reports whether the server closed the connection, discarding
// whatever was still unread. A reset counts as closed: a server closing with
// unsent data may reset the connection.
func (c *RESPConn) Closed() bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func readFrame(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return "-" + body, nil
	case ':':
		return ":" + body, nil
	case '_':
		return "nil", nil
	case '$', '=': // a RESP3 verbatim string renders as a bulk one, without its format
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return "nil", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		text := buf[:n]
		if line[0] == '=' && len(text) >= 4 {
			text = text[4:]
		}
		return strconv.Quote(string(text)), nil
	case '*', '>', '~', '%':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return "nil", nil
		}
		if line[0] == '%' {
			n *= 2
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = readFrame(r); err != nil {
				return "", err
			}
		}
		return renderAggregate(line[0], parts), nil
	}
	return "", fmt.Errorf("unknown RESP type %q", line)
}

func renderAggregate(kind byte, parts []string) string {
	switch kind {
	case '%':
		pairs := make([]string, 0, len(parts)/2)
		for i := 0; i+1 < len(parts); i += 2 {
			pairs = append(pairs, parts[i]+": "+parts[i+1])
		}
		return "{" + strings.Join(pairs, ", ") + "}"
	case '>':
		return ">[" + strings.Join(parts, " ") + "]"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// DialRESPFrom connects to addr from the given local loopback IP (any of
// 127.0.0.0/8), to test behaviour per client address.
func DialRESPFrom(t testing.TB, addr, localIP string) *RESPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, localIP, err)
	}
	return NewRESPConn(t, c)
}

// NewRESPConn wraps an established connection (a TLS one, say); it is
// closed when the test ends.
func NewRESPConn(t testing.TB, c net.Conn) *RESPConn {
	t.Cleanup(func() { c.Close() })
	return &RESPConn{t: t, Conn: c, r: bufio.NewReader(c)}
}
