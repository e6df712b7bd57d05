package proxy

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
)

// addrAuthorizer notes the client address of every policy question.
type addrAuthorizer struct {
	Authorizer
	mu    sync.Mutex
	addrs map[string]bool
}

func (a *addrAuthorizer) Authorize(ctx context.Context, r *policy.Request) policy.Decision {
	a.mu.Lock()
	a.addrs[r.ClientAddr] = true
	a.mu.Unlock()
	return a.Authorizer.Authorize(ctx, r)
}

// startProxyProtocolProxy serves pubgate behind a PROXY protocol listener
// trusting the given peers.
func startProxyProtocolProxy(t *testing.T, trusted ...string) (*testEnv, *recorder, *addrAuthorizer) {
	t.Helper()
	rec := &recorder{}
	var authz *addrAuthorizer
	wrap := func(ln net.Listener) net.Listener {
		pp, err := ProxyProtocolListener(ln, ProxyProtocolOptions{Trusted: trusted, HeaderTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return pp
	}
	env := startProxyOn(t, wrap, nil, nil, func(o *Options) {
		o.Audit = rec
		authz = &addrAuthorizer{Authorizer: newTestAuthorizer(t, o.Tenants, o.Namespace, policy.Sources{Builtin: policy.Builtin}), addrs: map[string]bool{}}
		o.Authorizer = authz
	})
	return env, rec, authz
}

// dialWithHeader connects from 127.0.0.1 and sends a PROXY header of the
// given version naming client as the source.
func dialWithHeader(t *testing.T, addr string, version byte, client string) *testutil.RESPConn {
	t.Helper()
	c := testutil.DialRESP(t, addr)
	src, _ := net.ResolveTCPAddr("tcp", client)
	dst, _ := net.ResolveTCPAddr("tcp", addr)
	if _, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).WriteTo(c.Conn); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestProxyProtocolNamesTheClient: behind a trusted load balancer, the
// address its PROXY header names (v1 or v2) is the client's in the audit
// records, the policy's input and CLIENT INFO.
func TestProxyProtocolNamesTheClient(t *testing.T) {
	env, rec, authz := startProxyProtocolProxy(t, "127.0.0.0/8")
	for version, client := range map[byte]string{1: "203.0.113.7:40001", 2: "[2001:db8::7]:40002"} {
		c := dialWithHeader(t, env.addr, version, client)
		if r := c.Do("AUTH", "alice", "alice-secret"); r != "OK" {
			t.Fatalf("v%d: AUTH: %s", version, r)
		}
		if r := c.Do("CLIENT", "INFO"); !strings.Contains(r, " addr="+client+" ") {
			t.Fatalf("v%d: CLIENT INFO: %s", version, r)
		}
		if r := c.Do("SUBSCRIBE", "orders"); !strings.HasPrefix(r, `["subscribe"`) {
			t.Fatalf("v%d: SUBSCRIBE: %s", version, r)
		}
		authz.mu.Lock()
		asked := authz.addrs[client]
		authz.mu.Unlock()
		if !asked {
			t.Errorf("v%d: the policy was never asked about %s: %v", version, client, authz.addrs)
		}
		for _, event := range []audit.Event{audit.EventConnect, audit.EventAuth, audit.EventAuthz} {
			if !hasRecordFrom(rec.find(event, ""), client) {
				t.Errorf("v%d: no %s record from %s", version, event, client)
			}
		}
	}
}

func hasRecordFrom(records []audit.Record, addr string) bool {
	for _, r := range records {
		if r.ClientAddr == addr {
			return true
		}
	}
	return false
}

// TestProxyProtocolRefusals: a client cannot claim an address (a header
// from an untrusted peer is refused), a trusted peer must send a header,
// and an untrusted peer without one is served as itself.
func TestProxyProtocolRefusals(t *testing.T) {
	env, rec, _ := startProxyProtocolProxy(t, "127.0.0.2")

	claims := dialWithHeader(t, env.addr, 2, "203.0.113.9:1234") // from 127.0.0.1: untrusted
	claims.Send("PING")
	if r, err := claims.TryRead(5 * time.Second); err == nil {
		t.Fatalf("a header from an untrusted peer was served: %s", r)
	}

	trusted := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
	trusted.Send("PING")
	if r, err := trusted.TryRead(5 * time.Second); err == nil {
		t.Fatalf("a trusted peer without a header was served: %s", r)
	}

	direct := testutil.DialRESPFrom(t, env.addr, "127.0.0.3")
	if r := direct.Do("AUTH", "alice", "alice-secret"); r != "OK" {
		t.Fatalf("an untrusted peer without a header: %s", r)
	}
	if r := direct.Do("CLIENT", "INFO"); !strings.Contains(r, " addr=127.0.0.3:") {
		t.Fatalf("CLIENT INFO of a direct client: %s", r)
	}

	refused := rec.find(audit.EventConnect, audit.Failure)
	reasons := make([]string, len(refused))
	for i, r := range refused {
		reasons[i] = r.ClientAddr + ": " + r.Reason
	}
	want := []string{"PROXY protocol header from an address not in listen.proxy_protocol.trusted",
		"no PROXY protocol header from a trusted load balancer (listen.proxy_protocol.trusted)"}
	if len(refused) != 2 || !strings.HasPrefix(reasons[0], "127.0.0.1:") || !strings.HasSuffix(reasons[0], want[0]) ||
		!strings.HasPrefix(reasons[1], "127.0.0.2:") || !strings.HasSuffix(reasons[1], want[1]) {
		t.Fatalf("refusal records: %q", reasons)
	}
}
