package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
)

// TestLoginTimeout: a connection that does not authenticate in time is told
// why and closed, so idle connections cannot hold max_clients slots; an
// authenticated one is not affected, and RESET starts the clock again.
func TestLoginTimeout(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.LoginTimeout = 300 * time.Millisecond })
	authed := env.login(t, "alice")
	idle := testutil.DialRESP(t, env.addr)
	if got := idle.Do("PING"); got != "PONG" {
		t.Fatal(got)
	}
	if got := idle.Read(); got != "-ERR pubgate: no AUTH within 300ms; closing the connection" {
		t.Fatalf("idle unauthenticated client got %s", got)
	}
	if !idle.Closed() {
		t.Fatal("idle unauthenticated client still connected")
	}
	if got := authed.Do("PING"); got != "PONG" {
		t.Fatalf("authenticated client after the timeout: %s", got)
	}
	authed.Send("RESET")
	if got := authed.Read(); got != "RESET" {
		t.Fatal(got)
	}
	if got := authed.Read(); !strings.HasPrefix(got, "-ERR pubgate: no AUTH within") {
		t.Fatalf("after RESET the login clock did not restart: %s", got)
	}
}

// expiringAuth hands out identities that expire after ttl (like a JWT).
type expiringAuth struct{ ttl time.Duration }

func (a expiringAuth) Authenticate(_ context.Context, c auth.Credentials) (auth.Identity, error) {
	return auth.Identity{Tenant: "acme", User: c.Username, Method: "jwt", Expires: time.Now().Add(a.ttl)}, nil
}

// TestExpiringIdentity: a connection whose identity expires is told so and
// closed, unless it authenticated again in time.
func TestExpiringIdentity(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.Auth = expiringAuth{ttl: 500 * time.Millisecond} })
	stale := testutil.DialRESP(t, env.addr)
	if got := stale.Do("AUTH", "svc", "token-1"); got != "OK" {
		t.Fatal(got)
	}
	if got := stale.Do("SUBSCRIBE", "x"); got != `["subscribe" "x" :1]` {
		t.Fatal(got)
	}
	if got := stale.Read(); got != "-ERR pubgate: credentials expired; AUTH again before they do. Closing the connection" {
		t.Fatalf("expired connection got %s", got)
	}
	if !stale.Closed() {
		t.Fatal("expired connection left open")
	}
	// fresh re-authenticates before each token expires, so it lives on.
	fresh := testutil.DialRESP(t, env.addr)
	for range 3 {
		if got := fresh.Do("AUTH", "svc", "token-2"); got != "OK" {
			t.Fatal(got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := fresh.Do("PING"); got != "PONG" {
		t.Fatalf("re-authenticated connection: %s", got)
	}
}

// TestResetDoesNotExtendTheLoginClock: RESET before AUTH keeps the clock
// running, so an unauthenticated client cannot hold a slot by resetting.
func TestResetDoesNotExtendTheLoginClock(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.LoginTimeout = 400 * time.Millisecond })
	c := testutil.DialRESP(t, env.addr)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		got, err := func() (string, error) { c.Send("RESET"); return c.TryRead(5 * time.Second) }()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if strings.HasPrefix(got, "-ERR pubgate: no AUTH within") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("a client sending RESET outlived the login timeout")
}

// TestLoginBurstFromOneAddress: many clients behind one address (a NAT, a
// load balancer, a pod reconnecting after a failover) logging in at once
// all get in: the throttle lets a few check their passwords at a time
// instead of refusing the rest.
func TestLoginBurstFromOneAddress(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) {
		o.Throttle = auth.NewThrottle(3, time.Minute, time.Minute)
		o.Auth = slowAuth{o.Auth} // so that the logins overlap
	})
	conns := make([]*testutil.RESPConn, 40)
	for i := range conns {
		conns[i] = testutil.DialRESP(t, env.addr)
		conns[i].Send("AUTH", "alice", "alice-secret")
	}
	for i, c := range conns {
		if r := c.Read(); r != "OK" {
			t.Fatalf("login %d: %s", i, r)
		}
	}
}

// slowAuth takes its time over every password, as a high bcrypt cost does.
type slowAuth struct{ auth.Authenticator }

func (a slowAuth) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	time.Sleep(20 * time.Millisecond)
	return a.Authenticator.Authenticate(ctx, c)
}
