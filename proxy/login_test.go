package proxy

import (
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

// TestFailedLoginThrottle: an address that fails too often is locked out,
// even with the right password, without affecting other addresses.
func TestFailedLoginThrottle(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.Throttle = auth.NewThrottle(3, time.Minute, time.Minute) })
	attacker := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
	for range 3 {
		if got := attacker.Do("AUTH", "alice", "guess"); got != "-WRONGPASS invalid username-password pair or user is disabled." {
			t.Fatal(got)
		}
	}
	got := attacker.Do("AUTH", "alice", "alice-secret")
	if !strings.HasPrefix(got, "-ERR pubgate: too many failed logins from 127.0.0.2; try again in ") {
		t.Fatalf("locked-out address got %s", got)
	}
	again := testutil.DialRESPFrom(t, env.addr, "127.0.0.2")
	if got := again.Do("HELLO", "3", "AUTH", "alice", "alice-secret"); !strings.HasPrefix(got, "-ERR pubgate: too many failed logins") {
		t.Fatalf("new connection from the locked-out address got %s", got)
	}
	other := testutil.DialRESPFrom(t, env.addr, "127.0.0.3")
	if got := other.Do("AUTH", "alice", "alice-secret"); got != "OK" {
		t.Fatalf("another address was affected: %s", got)
	}
}
