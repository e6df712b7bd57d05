package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
)

// TestPlaintextCommandOnTLSPort: a client that forgot --tls and sends a
// Redis command in clear is told, in one RESP error line, that the port
// requires TLS, instead of seeing only the connection close; the audit log
// records a failed handshake. Bytes that are neither TLS nor Redis get no
// answer, and TLS clients are served as before.
func TestPlaintextCommandOnTLSPort(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	pair := ca.IssuePair(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	rec := &recorder{}
	env := startProxyTLS(t, nil, &tls.Config{Certificates: []tls.Certificate{pair}}, func(o *Options) { o.Audit = rec })
	send := func(t *testing.T, request string) string {
		t.Helper()
		c, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
		reply, err := io.ReadAll(c) // until pubgate closes the connection
		if err != nil {
			t.Fatalf("after %q: %v (read %q)", request, err, reply)
		}
		return string(reply)
	}
	const want = "-ERR pubgate: this port requires TLS; connect with TLS (redis-cli --tls)\r\n"
	for _, request := range []string{
		"*1\r\n$4\r\nPING\r\n", // redis-cli, client libraries
		"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$12\r\nalice-secret\r\n",
		"PING\r\n", // an inline command (telnet, nc)
		"auth alice alice-secret\r\n",
	} {
		if got := send(t, request); got != want {
			t.Errorf("plaintext %q: answered %q, want %q", request, got, want)
		}
	}
	if got := send(t, "\x00\x01\x02\x03\x04\x05"); got != "" {
		t.Errorf("garbage answered %q, want nothing", got)
	}

	testutil.Eventually(t, "failed handshakes audited", func() bool { return len(rec.find(audit.EventConnect, audit.Failure)) == 5 })
	plaintext := 0
	for _, r := range rec.find(audit.EventConnect, audit.Failure) {
		if strings.HasPrefix(r.Reason, "plaintext Redis command on the TLS port: tls: ") {
			plaintext++
		} else if !strings.HasPrefix(r.Reason, "tls: ") {
			t.Errorf("audited reason %q", r.Reason)
		}
	}
	if plaintext != 4 {
		t.Errorf("%d failed handshakes audited as plaintext commands, want 4", plaintext)
	}

	c, err := tls.Dial("tcp", env.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := testutil.NewRESPConn(t, c).Do("AUTH", "alice", "alice-secret"); r != "OK" {
		t.Fatalf("TLS client: %s", r)
	}
}
