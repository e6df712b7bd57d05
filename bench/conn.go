package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"
)

// conn is one RESP connection of the load generator, with its own small
// encoder and reader: the generator must cost less than what it measures.
type conn struct {
	net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	out []byte // the command being encoded
}

func dial(ctx context.Context, o *Options, tenant int) (*conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(o.Addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		nc = tc
	}
	c := &conn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10), w: bufio.NewWriterSize(nc, 16<<10)}
	if err := c.auth(ctx, o.Tenants[tenant]); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// auth logs in as t, if t has credentials, by ctx's deadline if it has one.
func (c *conn) auth(ctx context.Context, t Tenant) error {
	if t.User == "" && t.Password == "" {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
		defer c.SetDeadline(time.Time{})
	}
	c.command("AUTH", t.User, t.Password)
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("AUTH %s: %w", t.User, err)
	}
	reply, err := c.readReply()
	if err != nil {
		return fmt.Errorf("AUTH %s: %w", t.User, err)
	}
	if reply != "OK" {
		return fmt.Errorf("AUTH %s: unexpected reply %q", t.User, reply)
	}
	return nil
}

// command encodes a command into the write buffer.
func (c *conn) command(args ...string) {
	c.out = appendArrayHeader(c.out[:0], len(args))
	for _, a := range args {
		c.out = appendBulk(c.out, a)
	}
	_, _ = c.w.Write(c.out)
}

// publish encodes PUBLISH channel payload into the write buffer.
func (c *conn) publish(channel string, payload []byte) {
	c.out = appendArrayHeader(c.out[:0], 3)
	c.out = appendBulk(c.out, "PUBLISH")
	c.out = appendBulk(c.out, channel)
	c.out = append(c.out, '$')
	c.out = strconv.AppendInt(c.out, int64(len(payload)), 10)
	c.out = append(c.out, "\r\n"...)
	c.out = append(c.out, payload...)
	c.out = append(c.out, "\r\n"...)
	_, _ = c.w.Write(c.out)
}

func appendArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n"...)
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}

// errReply is a RESP error reply.
type errReply string

func (e errReply) Error() string { return string(e) }

// readReply reads a simple string, integer or error reply (the replies to
// AUTH and PUBLISH) and returns its text.
func (c *conn) readReply() (string, error) {
	line, err := c.line()
	if err != nil {
		return "", err
	}
	switch line[0] {
	case '+', ':':
		return string(line[1:]), nil
	case '-':
		return "", errReply(line[1:])
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// line reads one RESP line without its CRLF; the slice is valid until the
// next read.
func (c *conn) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed RESP line %q", line)
	}
	return line[:len(line)-2], nil
}

// push is a pub/sub frame: message, pmessage or a (p)subscribe
// confirmation. Its byte slices are valid until the next readPush.
type push struct {
	kind    []byte
	payload []byte // the message's payload
}

// readPush reads one array frame of bulk strings and integers (RESP2 or a
// RESP3 push), keeping the first and the last element.
func (c *conn) readPush(p *push, buf *[]byte) error {
	line, err := c.line()
	if err != nil {
		return err
	}
	if line[0] == '-' {
		return errReply(line[1:])
	}
	if line[0] != '*' && line[0] != '>' {
		return fmt.Errorf("unexpected frame %q", line)
	}
	n, ok := atoi(line[1:])
	if !ok || n < 1 {
		return fmt.Errorf("malformed frame header %q", line)
	}
	*buf = (*buf)[:0]
	var kindEnd int
	for i := range n {
		start := len(*buf)
		if err := c.element(buf); err != nil {
			return err
		}
		if i == 0 {
			kindEnd = len(*buf)
		}
		if i == n-1 {
			p.payload = (*buf)[start:]
		}
	}
	p.kind = (*buf)[:kindEnd]
	return nil
}

// element appends one bulk string or integer of a frame to buf.
func (c *conn) element(buf *[]byte) error {
	line, err := c.line()
	if err != nil {
		return err
	}
	switch line[0] {
	case ':':
		*buf = append(*buf, line[1:]...)
		return nil
	case '$':
		size, ok := atoi(line[1:])
		if !ok {
			return fmt.Errorf("malformed bulk header %q", line)
		}
		start := len(*buf)
		*buf = slices.Grow(*buf, size+2)[:start+size+2]
		if _, err := io.ReadFull(c.r, (*buf)[start:]); err != nil {
			return err
		}
		*buf = (*buf)[:start+size]
		return nil
	}
	return errors.New("unexpected element " + strconv.Quote(string(line)))
}

// atoi parses a non-negative decimal length without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
