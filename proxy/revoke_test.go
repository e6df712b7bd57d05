package proxy

import (
	"testing"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
)

// TestReauthRevokesWhatTheNewIdentityMayNotHold: reader (role subscriber)
// subscribes, then the connection logs in as svc (role publisher only). svc
// may not subscribe, so the connection must not keep reader's subscription:
// it is dropped with Redis's unsubscribe notice, audited as a revocation,
// and messages on it no longer arrive. A login as a user who may hold it
// keeps it.
func TestReauthRevokesWhatTheNewIdentityMayNotHold(t *testing.T) {
	records := &recorder{}
	env, _ := startPolicyProxy(t, NamespaceOptions{}, func(o *Options) { o.Audit = records }, examplePolicies)
	c := testutil.DialRESP(t, env.addr)
	if r := c.Do("HELLO", "3", "AUTH", "reader", "alice-secret"); r[0] != '{' {
		t.Fatalf("HELLO: %s", r)
	}
	if r := c.Do("SUBSCRIBE", "orders"); r != `>["subscribe" "orders" :1]` {
		t.Fatalf("SUBSCRIBE: %s", r)
	}
	if r := c.Do("AUTH", "alice", "alice-secret"); r != "OK" { // alice may subscribe too
		t.Fatalf("AUTH alice: %s", r)
	}
	expectQuiet(t, c)

	if r := c.Do("AUTH", "svc", "alice-secret"); r != `>["unsubscribe" "orders" :0]` {
		t.Fatalf("AUTH svc: got %s, want the revocation's notice first", r)
	}
	expect(t, c, "OK")
	if r := env.login(t, "alice").Do("PUBLISH", "orders", "after"); r != ":0" {
		t.Fatalf("PUBLISH after the revocation reached %s subscribers", r)
	}
	expectQuiet(t, c)
	if r := c.Do("SUBSCRIBE", "orders"); r[0] != '-' {
		t.Fatalf("svc's own SUBSCRIBE: %s", r)
	}

	revoked := records.find(audit.EventRevoke, "")
	if len(revoked) != 1 || revoked[0].User != "svc" || revoked[0].Channel != "orders" || revoked[0].Action != "subscribe" {
		t.Fatalf("revocation records: %+v", revoked)
	}
}
