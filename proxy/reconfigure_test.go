package proxy

import (
	"context"
	"maps"
	"testing"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
)

// TestReconfigureActsOnConnectedClients: a configuration reload that
// removes a tenant and a user, takes a role away, adds a tenant and lowers
// a quota takes effect on the clients already connected, each told why.
func TestReconfigureActsOnConnectedClients(t *testing.T) {
	ns := NamespaceOptions{}
	env, authz := startPolicyProxy(t, ns, nil, examplePolicies)
	alice, reader, svc, bob := env.login(t, "alice"), env.loginWith(t, "reader", "alice-secret"),
		env.loginWith(t, "svc", "alice-secret"), env.loginWith(t, "bob", "alice-secret")
	for _, c := range []struct {
		name string
		conn interface{ Do(...string) string }
	}{{"alice", alice}, {"reader", reader}, {"bob", bob}} {
		if r := c.conn.Do("SUBSCRIBE", "orders"); r != `["subscribe" "orders" :1]` {
			t.Fatalf("%s: SUBSCRIBE: %s", c.name, r)
		}
	}

	users := maps.Clone(policyUsers)
	delete(users, "alice")
	users["reader"] = auth.PasswordUser{Tenant: "acme", PasswordHash: users["reader"].PasswordHash} // no roles
	users["ivan"] = auth.PasswordUser{Tenant: "initech", PasswordHash: users["svc"].PasswordHash, Roles: []string{"subscriber"}}
	tenants := map[string]TenantOptions{
		"acme":    {Prefix: "acme:", Quotas: Quotas{MaxConnections: 2}},
		"initech": {Prefix: "initech:", Quotas: Quotas{MaxSubscriptions: 1}},
	}
	if err := env.passwords.Update(users); err != nil {
		t.Fatal(err)
	}
	data := testPolicyData(tenants, ns)
	if _, err := authz.SetSources(context.Background(), policy.Sources{Paths: []string{examplePolicies}, Data: data}); err != nil {
		t.Fatal(err)
	}
	env.srv.Reconfigure(tenants, audit.Levels{})

	expect(t, alice, "-ERR pubgate: user alice was removed from tenant acme; closing the connection")
	expect(t, bob, "-ERR pubgate: tenant globex was removed from the configuration; closing the connection")
	for name, c := range map[string]interface{ Closed() bool }{"alice": alice, "bob": bob} {
		if !c.Closed() {
			t.Errorf("%s is still connected", name)
		}
	}
	expect(t, reader, `["unsubscribe" "orders" :0]`) // the subscriber role is gone
	expectQuiet(t, reader)
	expectQuiet(t, svc)

	ivan := env.loginWith(t, "ivan", "alice-secret")
	if r := ivan.Do("SUBSCRIBE", "news", "more"); r != "-ERR pubgate: tenant initech holds its maximum of 1 subscriptions (tenants.initech.quotas.max_subscriptions)" {
		t.Fatalf("new tenant's quota: %s", r)
	}
	if r := ivan.Do("SUBSCRIBE", "news"); r != `["subscribe" "news" :1]` {
		t.Fatalf("new tenant's user: %s", r)
	}
	// acme holds reader and svc: the lowered max_connections of 2 is full.
	if r := testutil.DialRESP(t, env.addr).Do("AUTH", "svc", "alice-secret"); r != "-ERR pubgate: tenant acme has its maximum of 2 connections (tenants.acme.quotas.max_connections)" {
		t.Fatalf("a third acme connection: %s", r)
	}
}
