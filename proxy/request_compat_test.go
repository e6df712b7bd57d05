package proxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// startACLRedis starts a redis-server that, like pubgate, requires AUTH
// (so that its limits before authentication apply) and knows alice with
// pubgate's test password.
func startACLRedis(t *testing.T) *testutil.RedisServer {
	t.Helper()
	return testutil.StartRedis(t, "--requirepass", "not-used-by-the-tests",
		"--user", "alice", "on", ">alice-secret", "~*", "&*", "+@all")
}

// dialAs connects to addr, logged in as alice when authenticated.
func dialAs(t *testing.T, addr string, authenticated bool) *testutil.RESPConn {
	t.Helper()
	c := testutil.DialRESP(t, addr)
	if authenticated {
		if got := c.Do("AUTH", "alice", "alice-secret"); got != "OK" {
			t.Fatalf("AUTH alice at %s: %s", addr, got)
		}
	}
	return c
}

// exchangeRaw sends raw on a new connection, says it has no more to send,
// and returns every byte the server sends until it closes the connection:
// a server reads to the end of what it was sent before it sees the end.
func exchangeRaw(t *testing.T, addr string, authenticated bool, raw string) string {
	t.Helper()
	c := dialAs(t, addr, authenticated)
	defer c.Conn.Close()
	c.SendRaw(raw)
	_ = c.Conn.(*net.TCPConn).CloseWrite() // fails if the server closed first
	_ = c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Conn.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return string(out)
		case err != nil:
			t.Fatalf("%s after %q: %v", addr, out, err)
		}
	}
}

// exchange is exchangeRaw with the replies rendered (testutil.RESPConn).
func exchange(t *testing.T, addr string, authenticated bool, raw string) []string {
	t.Helper()
	c := dialAs(t, addr, authenticated)
	defer c.Conn.Close()
	c.SendRaw(raw)
	_ = c.Conn.(*net.TCPConn).CloseWrite() // fails if the server closed first
	var replies []string
	for {
		r, err := c.TryRead(30 * time.Second)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return replies
		case err != nil:
			t.Fatalf("%s after %q: %v", addr, replies, err)
		}
		replies = append(replies, r)
	}
}

// TestFramingMatchesRedis sends the same bytes to redis-server and to
// pubgate and expects the same replies, and the connection closed by both
// or by neither (after the client's own end of input). pubgate answers
// commands it does not serve in its own words; there only the error and
// the name it quotes are compared.
func TestFramingMatchesRedis(t *testing.T) {
	redis := startACLRedis(t)
	env := startProxy(t, nil, nil)
	unknownCommand := func(quoted string) func(redis, pubgate []string) bool {
		return func(redis, pubgate []string) bool {
			if len(redis) != len(pubgate) || len(redis) == 0 {
				return false
			}
			named := func(reply string) bool {
				return strings.HasPrefix(reply, "-ERR ") && strings.Contains(reply, "command '"+quoted+"'")
			}
			return named(redis[0]) && named(pubgate[0]) && fmt.Sprint(redis[1:]) == fmt.Sprint(pubgate[1:])
		}
	}
	cases := []struct {
		name          string
		authenticated bool
		raw           string
		same          func(redis, pubgate []string) bool // nil: identical
	}{
		{"a bulk header outside a multibulk is an inline command", true, "$4\r\nPING\r\n", unknownCommand("$4")},
		{"inline \\x escape", true, "ECHO \"\\x41\"\r\n", nil},
		{"inline double-quote escapes", true, "ECHO \"\\ttab\\n\\x4a\\q\\\\\\\"\"\r\n", nil},
		{"inline single quotes", true, "ECHO 'it\\'s \\n'\r\nECHO a\"b c\"\r\nECHO \"\"\r\n", nil},
		{"unbalanced quotes", true, "PING\r\nECHO \"abc\r\nPING\r\n", nil},
		{"closing quote followed by a letter", true, "ECHO \"a\"b\r\n", nil},
		{"unterminated single quote", true, "ECHO 'a\\'\r\n", nil},
		{"*-1 is ignored", true, "*-1\r\nPING\r\n", nil},
		{"*0 is ignored", true, "*0\r\nPING\r\n", nil},
		{"empty inline lines are ignored", true, "\r\n\n   \r\nPING\r\n", nil},
		{"the bytes after a bulk are not checked", true, "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", nil},
		{"invalid multibulk length", true, "PING\r\n*x\r\n", nil},
		{"multibulk length over INT_MAX", true, "*2147483648\r\n", nil},
		{"expected '$'", true, "*1\r\n+PING\r\n", nil},
		{"invalid bulk length", true, "*1\r\n$-1\r\n", nil},
		{"too big inline request", true, strings.Repeat("y", 70<<10), nil},
		{"a line with a NUL never ends", true, "PI\x00NG\r\nPING\r\n", nil},
		{"more than 10 elements before AUTH", false, "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11), nil},
		{"a bulk over 16 KiB before AUTH", false, "*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$16385\r\n", nil},
		{"AUTH lifts the limits for what follows it", false,
			"AUTH alice alice-secret\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + strings.Repeat("e", 20000) + "\r\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := exchange(t, redis.Addr(), c.authenticated, c.raw)
			got := exchange(t, env.addr, c.authenticated, c.raw)
			same := fmt.Sprint(want) == fmt.Sprint(got)
			if c.same != nil {
				same = c.same(want, got)
			}
			if !same {
				t.Fatalf("redis-server answered\n%.300q\npubgate\n%.300q", want, got)
			}
		})
	}
}

// TestRequestReaderMatchesRedis: random streams (inline lines with quotes
// and escapes; multibulk requests with bytes changed, dropped and added)
// are framed as redis-server frames them. The commands are unknown to
// Redis, whose error reply quotes the arguments it framed; the reader's
// commands are rendered in the same words.
func TestRequestReaderMatchesRedis(t *testing.T) {
	redis := startACLRedis(t)
	rng := rand.New(rand.NewPCG(13, 0))
	const streams = 1000
	for i := range streams {
		raw := randomStream(rng)
		for _, authenticated := range []bool{true, false} {
			want := exchangeRaw(t, redis.Addr(), authenticated, raw)
			if got := renderAsRedis(raw, authenticated); got != want {
				t.Fatalf("stream %d %q (authenticated: %v):\nredis-server answered %q\nthe reader framed    %q", i, raw, authenticated, want, got)
			}
		}
	}
}

// randomStream is one to three requests, inline or multibulk, mutated.
func randomStream(rng *rand.Rand) string {
	pick := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var s strings.Builder
	for range 1 + rng.IntN(3) {
		var req string
		switch rng.IntN(3) {
		case 0:
			req = "zz " + pick("ab'\"\\x41F \t\v\f\rnq", rng.IntN(15)) + "\r\n"
		default:
			args := []string{"zz"}
			for range rng.IntN(4) {
				args = append(args, pick("ab\"' \r\n", rng.IntN(5)))
			}
			req = fmt.Sprintf("*%d\r\n", len(args))
			for _, a := range args {
				req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
			}
		}
		b := []byte(req)
		for range rng.IntN(4) {
			i := rng.IntN(len(b) + 1)
			c := "*$\r\n-0129x \"+"[rng.IntN(13)]
			switch op := rng.IntN(3); {
			case op == 0 && i < len(b):
				b[i] = c
			case op == 1 && i < len(b):
				b = append(b[:i], b[i+1:]...)
			default:
				b = append(b[:i], append([]byte{c}, b[i:]...)...)
			}
		}
		s.Write(b)
	}
	return s.String()
}

// renderAsRedis frames raw with a requestReader and renders what Redis 7.0
// answers: each command is unknown ("unknown command '%.128s', with args
// beginning with: " and each argument quoted while they take less than
// 128 bytes), a protocol error ends the stream. Error replies carry no
// CR or LF.
func renderAsRedis(raw string, authenticated bool) string {
	q := newRequestReader(strings.NewReader(raw), 1<<20)
	q.setAuthenticated(authenticated)
	oneLine := strings.NewReplacer("\r", " ", "\n", " ")
	var out strings.Builder
	for {
		args, ok, err := q.next()
		if err != nil {
			return out.String() + "-ERR " + oneLine.Replace(err.Error()) + "\r\n"
		}
		if ok {
			var quoted string
			for _, a := range args[1:] {
				if len(quoted) >= 128 {
					break
				}
				quoted += "'" + string(a[:min(len(a), 128-len(quoted))]) + "' "
			}
			name := args[0][:min(len(args[0]), 128)]
			out.WriteString("-ERR " + oneLine.Replace(fmt.Sprintf("unknown command '%s', with args beginning with: %s", name, quoted)) + "\r\n")
			continue
		}
		if err := q.fill(); err != nil {
			return out.String()
		}
	}
}

// TestUnauthenticatedRequestsAreBounded: before AUTH a connection cannot
// make pubgate hold a large request (the adversarial run pinned 1.4 MB per
// connection with an unfinished AUTH); after AUTH the same sizes pass, up
// to limits.max_payload_bytes.
func TestUnauthenticatedRequestsAreBounded(t *testing.T) {
	env := startProxy(t, nil, nil)
	refused := map[string]struct{ raw, want string }{
		"a 1 MB password": {"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$1000000\r\n" + strings.Repeat("p", 100<<10),
			"-ERR Protocol error: unauthenticated bulk length"},
		"11 elements": {"*12\r\n$9\r\nSUBSCRIBE\r\n" + strings.Repeat("$1\r\nc\r\n", 11),
			"-ERR Protocol error: unauthenticated multibulk length"},
		"a 64 KiB request of 16 KiB bulks": {"*6\r\n$4\r\nAUTH\r\n" + strings.Repeat("$16384\r\n"+strings.Repeat("p", 16384)+"\r\n", 5),
			"-ERR Protocol error: unauthenticated bulk length"},
	}
	for name, c := range refused {
		t.Run(name, func(t *testing.T) {
			conn := testutil.DialRESP(t, env.addr)
			// pubgate refuses the request at its header and closes the
			// connection while the rest may still be on its way.
			go func() { _, _ = conn.Conn.Write([]byte(c.raw)) }()
			if got := conn.Read(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if !conn.Closed() {
				t.Fatal("connection left open after a protocol error")
			}
		})
	}

	payload := strings.Repeat("p", 1000000)
	channels := strings.Fields(strings.Repeat("c ", 11))
	check := func(t *testing.T, c *testutil.RESPConn) {
		t.Helper()
		if got := c.Do("ECHO", payload); got != fmt.Sprintf("%q", payload) {
			t.Fatalf("ECHO of 1 MB: %.80s", got)
		}
		c.Send(append([]string{"SUBSCRIBE"}, channels...)...)
		for range channels {
			if got := c.Read(); !strings.HasPrefix(got, `["subscribe" "c"`) {
				t.Fatalf("SUBSCRIBE of 11 channels: %s", got)
			}
		}
	}
	t.Run("after AUTH", func(t *testing.T) { check(t, env.login(t, "alice")) })
	t.Run("bound to the default user", func(t *testing.T) {
		env := startProxy(t, nil, func(o *Options) { o.DefaultUser = &authIdentityAlice })
		check(t, testutil.DialRESP(t, env.addr))
	})
	t.Run("over max_payload_bytes after AUTH", func(t *testing.T) {
		c := env.login(t, "alice")
		over := env.srv.maxQueryBytes
		go func() {
			_, _ = fmt.Fprintf(c.Conn, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s", over, strings.Repeat("p", 100<<10))
		}()
		if got := c.Read(); got != "-ERR Protocol error: request exceeds the maximum size (limits.max_payload_bytes)" {
			t.Fatal(got)
		}
		if !c.Closed() {
			t.Fatal("connection left open after a protocol error")
		}
	})
}
