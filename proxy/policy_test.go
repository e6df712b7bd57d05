package proxy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
)

const examplePolicies = "../examples/policies"

// policyUsers cover the example library's roles; every password is
// alice-secret.
var policyUsers = map[string]auth.PasswordUser{
	"alice":  {Tenant: "acme", PasswordHash: testUsers["alice"].PasswordHash, Roles: []string{"publisher", "subscriber"}},
	"reader": {Tenant: "acme", PasswordHash: testUsers["alice"].PasswordHash, Roles: []string{"subscriber"}},
	"svc":    {Tenant: "acme", PasswordHash: testUsers["alice"].PasswordHash, Roles: []string{"publisher"}},
	"nobody": {Tenant: "acme", PasswordHash: testUsers["alice"].PasswordHash},
	"bob":    {Tenant: "globex", PasswordHash: testUsers["alice"].PasswordHash, Roles: []string{"publisher", "subscriber"}},
	"herald": {Tenant: "globex", PasswordHash: testUsers["alice"].PasswordHash, Roles: []string{"announcer", "subscriber"}},
}

// startPolicyProxy serves pubgate with the policy in paths (the built-in
// one if none) in the given namespace mode.
func startPolicyProxy(t *testing.T, ns NamespaceOptions, adjust func(*Options), paths ...string) (*testEnv, *policy.Authorizer) {
	t.Helper()
	src := policy.Sources{Paths: paths, Builtin: policy.Builtin}
	authz := newTestAuthorizer(t, testTenants, ns, src)
	env := startProxy(t, nil, func(o *Options) {
		pw, err := auth.NewPasswords(policyUsers)
		if err != nil {
			t.Fatal(err)
		}
		o.Auth, o.Namespace, o.Authorizer = pw, ns, authz
		if adjust != nil {
			adjust(o)
		}
	})
	return env, authz
}

var (
	rewriteShared = NamespaceOptions{SharedPrefix: "shared:"}
	enforce       = NamespaceOptions{Enforce: true}
)

type authzRow struct {
	user, cmd, name string
	allowed         bool
}

// runAuthzRows runs each row on a fresh connection: ALLOWED means the
// command succeeded, DENIED that it got NOPERM and changed nothing.
func runAuthzRows(t *testing.T, env *testEnv, rows []authzRow) {
	t.Helper()
	for _, r := range rows {
		verdict := map[bool]string{true: "ALLOWED", false: "DENIED"}[r.allowed]
		t.Run(verdict+"/"+r.user+"/"+r.cmd+"/"+r.name, func(t *testing.T) {
			c := env.loginWith(t, r.user, "alice-secret")
			var got string
			if strings.HasSuffix(r.cmd, "SUBSCRIBE") {
				got = c.Do(r.cmd, r.name)
			} else {
				got = c.Do(r.cmd, r.name, "payload")
			}
			denied := strings.HasPrefix(got, "-NOPERM ")
			if denied == r.allowed {
				t.Fatalf("%s %s %q as %s: %s", verdict, r.cmd, r.name, r.user, got)
			}
			if !r.allowed && c.Do("PUBSUB", "NUMPAT") != ":0" {
				t.Fatal("a denied command left a subscription")
			}
		})
	}
}

func TestAuthorizationRewriteMode(t *testing.T) {
	env, _ := startPolicyProxy(t, rewriteShared, nil, examplePolicies)
	runAuthzRows(t, env, []authzRow{
		// Every action in the tenant's own namespace.
		{"alice", "SUBSCRIBE", "orders", true},
		{"alice", "PSUBSCRIBE", "orders.*", true},
		{"alice", "SSUBSCRIBE", "orders", true},
		{"alice", "PUBLISH", "orders", true},
		{"alice", "SPUBLISH", "orders", true},
		// Names that look foreign stay inside acme's namespace in rewrite
		// mode (acme:globex:orders), so they are acme's to use.
		{"alice", "SUBSCRIBE", "globex:orders", true},
		{"alice", "PUBLISH", "acmex:orders", true},
		// Hostile patterns: confined by the rewrite, and refused by the
		// deny-list rule because they could match acme:internal.*.
		{"alice", "PSUBSCRIBE", "*", false},
		{"alice", "PSUBSCRIBE", "?", false},
		{"alice", "PSUBSCRIBE", "[a-z]*", false},
		{"alice", "PSUBSCRIBE", `\*`, true}, // the literal channel "*"
		{"alice", "PSUBSCRIBE", "intern*", false},
		// Deny list.
		{"alice", "SUBSCRIBE", "internal.secrets", false},
		{"alice", "PUBLISH", "admin.x", false},
		// Roles.
		{"reader", "SUBSCRIBE", "orders", true},
		{"reader", "PSUBSCRIBE", "orders.*", true},
		{"reader", "PUBLISH", "orders", false},
		{"reader", "SPUBLISH", "orders", false},
		{"svc", "PUBLISH", "orders", true},
		{"svc", "SPUBLISH", "orders", true},
		{"svc", "SUBSCRIBE", "orders", false},
		{"svc", "PSUBSCRIBE", "orders.*", false},
		{"nobody", "SUBSCRIBE", "orders", false},
		{"nobody", "PUBLISH", "orders", false},
		// The shared announcements channel: readable by every tenant,
		// writable by announcers, never by pattern.
		{"alice", "SUBSCRIBE", "shared:announcements", true},
		{"bob", "SUBSCRIBE", "shared:announcements", true},
		{"alice", "PUBLISH", "shared:announcements", false},
		{"herald", "PUBLISH", "shared:announcements", true},
		{"alice", "PSUBSCRIBE", "shared:*", false},
		{"alice", "SUBSCRIBE", "shared:other", false},
		{"bob", "SUBSCRIBE", "orders", true},
	})
}

func TestAuthorizationEnforceMode(t *testing.T) {
	env, _ := startPolicyProxy(t, enforce, nil, examplePolicies)
	runAuthzRows(t, env, []authzRow{
		{"alice", "SUBSCRIBE", "acme:orders", true},
		{"alice", "PSUBSCRIBE", "acme:orders.*", true},
		{"alice", "SSUBSCRIBE", "acme:orders", true},
		{"alice", "PUBLISH", "acme:orders", true},
		{"alice", "SPUBLISH", "acme:orders", true},
		// Other tenants and look-alike prefixes.
		{"alice", "SUBSCRIBE", "globex:orders", false},
		{"alice", "PUBLISH", "globex:orders", false},
		{"alice", "SPUBLISH", "acmex:orders", false},
		{"alice", "SUBSCRIBE", "acme", false},
		{"alice", "SUBSCRIBE", "orders", false},
		{"bob", "SUBSCRIBE", "acme:orders", false},
		{"bob", "SUBSCRIBE", "globex:orders", true},
		// Hostile patterns: only the literal prefix counts.
		{"alice", "PSUBSCRIBE", "*", false},
		{"alice", "PSUBSCRIBE", "acme*", false},
		{"alice", "PSUBSCRIBE", "acm?:orders", false},
		{"alice", "PSUBSCRIBE", "[a]cme:orders", false},
		{"alice", "PSUBSCRIBE", "acme[:]orders", false},
		{"alice", "PSUBSCRIBE", "globex:*", false},
		{"alice", "PSUBSCRIBE", `acme\:orders.*`, true}, // an escaped ':' is a literal ':'
		{"alice", "PSUBSCRIBE", "acme:*", false},        // could match acme:internal.*
		// Deny list and roles.
		{"alice", "SUBSCRIBE", "acme:internal.x", false},
		{"reader", "PUBLISH", "acme:orders", false},
		{"svc", "SUBSCRIBE", "acme:orders", false},
		// Shared channel.
		{"bob", "SUBSCRIBE", "shared:announcements", true},
		{"bob", "PUBLISH", "shared:announcements", false},
		{"herald", "PUBLISH", "shared:announcements", true},
	})
}

func TestBuiltinPolicyInEnforceModeConfinesTenants(t *testing.T) {
	env, _ := startPolicyProxy(t, enforce, nil)
	runAuthzRows(t, env, []authzRow{
		{"alice", "SUBSCRIBE", "acme:orders", true},
		{"alice", "PSUBSCRIBE", "acme:*", true},
		{"alice", "PUBLISH", "acme:orders", true},
		{"alice", "SUBSCRIBE", "globex:orders", false},
		{"alice", "PSUBSCRIBE", "*", false},
		{"alice", "PSUBSCRIBE", "acme*", false},
		{"alice", "PUBLISH", "shared:announcements", false},
	})
}

func TestDeniedCommandsAreAllOrNothingAndInOrder(t *testing.T) {
	env, _ := startPolicyProxy(t, enforce, nil, examplePolicies)
	alice := env.loginWith(t, "alice", "alice-secret")
	if r := alice.Do("SUBSCRIBE", "acme:a", "globex:b"); r != "-NOPERM channel outside tenant acme" {
		t.Fatalf("SUBSCRIBE with one foreign channel: %s", r)
	}
	if r := alice.Do("PUBSUB", "NUMSUB", "acme:a"); r != `["acme:a" :0]` {
		t.Fatalf("a refused SUBSCRIBE subscribed: %s", r)
	}
	// In a pipeline, a denied PUBLISH answers in its place.
	alice.Send("PUBLISH", "acme:a", "1")
	alice.Send("PUBLISH", "globex:a", "2")
	alice.Send("PUBLISH", "acme:a", "3")
	expect(t, alice, ":0", "-NOPERM channel outside tenant acme", ":0")
}

func TestAllowedTrafficFlowsInEnforceModeAndAcrossTheSharedChannel(t *testing.T) {
	env, _ := startPolicyProxy(t, enforce, nil, examplePolicies)
	alice, bob, herald := env.loginWith(t, "alice", "alice-secret"), env.loginWith(t, "bob", "alice-secret"), env.loginWith(t, "herald", "alice-secret")
	if r := alice.Do("PSUBSCRIBE", "acme:orders.*"); r != `["psubscribe" "acme:orders.*" :1]` {
		t.Fatal(r)
	}
	if r := bob.Do("SUBSCRIBE", "shared:announcements"); r != `["subscribe" "shared:announcements" :1]` {
		t.Fatal(r)
	}
	if r := alice.Do("SUBSCRIBE", "shared:announcements"); r != `["subscribe" "shared:announcements" :2]` {
		t.Fatal(r)
	}
	pub := env.loginWith(t, "svc", "alice-secret")
	if r := pub.Do("PUBLISH", "acme:orders.new", "o1"); r != ":1" {
		t.Fatalf("PUBLISH: %s", r)
	}
	expect(t, alice, `["pmessage" "acme:orders.*" "acme:orders.new" "o1"]`)
	if r := herald.Do("PUBLISH", "shared:announcements", "hello"); r != ":2" {
		t.Fatalf("PUBLISH shared: %s", r)
	}
	expect(t, alice, `["message" "shared:announcements" "hello"]`)
	expect(t, bob, `["message" "shared:announcements" "hello"]`)
}

func TestSharedChannelInRewriteModeIsNotPrefixed(t *testing.T) {
	env, _ := startPolicyProxy(t, rewriteShared, nil, examplePolicies)
	alice, herald := env.loginWith(t, "alice", "alice-secret"), env.loginWith(t, "herald", "alice-secret")
	if r := alice.Do("SUBSCRIBE", "shared:announcements", "orders"); !strings.Contains(r, "shared:announcements") {
		t.Fatal(r)
	}
	alice.Read()
	if r := herald.Do("PUBLISH", "shared:announcements", "hi"); r != ":1" {
		t.Fatalf("PUBLISH: %s", r)
	}
	expect(t, alice, `["message" "shared:announcements" "hi"]`)
	// globex's "orders" is not acme's.
	if r := env.loginWith(t, "bob", "alice-secret").Do("PUBLISH", "orders", "x"); r != ":0" {
		t.Fatalf("cross-tenant PUBLISH reached %s", r)
	}
}

// TestPolicyReloadRevokesSubscriptions: a new policy applies to the next
// command at once, and each subscription it no longer allows is dropped
// with the unsubscribe confirmation Redis sends, as a push in RESP3.
func TestPolicyReloadRevokesSubscriptions(t *testing.T) {
	dir := t.TempDir()
	write := func(rego string) {
		if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package pubgate.authz\n"+rego), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`allow := true` + "\n")
	env, authz := startPolicyProxy(t, rewriteShared, nil, dir)
	authz.OnReload(func(r policy.ReloadResult) {
		if r.Changed() {
			env.srv.Recheck()
		}
	})

	resp2 := env.loginWith(t, "alice", "alice-secret")
	resp2.Do("SUBSCRIBE", "keep", "drop.a")
	resp2.Read()
	resp3 := env.loginWith(t, "bob", "alice-secret")
	resp3.Do("HELLO", "3")
	resp3.Do("PSUBSCRIBE", "drop.*")
	pub := env.loginWith(t, "svc", "alice-secret")

	write(`allow if not startswith(input.channel, "drop")
reason := "drop is closed" if not allow
`)
	if _, err := authz.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, resp2, `["unsubscribe" "drop.a" :1]`)
	expect(t, resp3, `>["punsubscribe" "drop.*" :0]`)
	if r := pub.Do("PUBLISH", "drop.a", "x"); r != "-NOPERM drop is closed" {
		t.Fatalf("new policy not in effect: %s", r)
	}
	if r := pub.Do("PUBLISH", "keep", "x"); r != ":1" {
		t.Fatalf("PUBLISH keep: %s", r)
	}
	expect(t, resp2, `["message" "keep" "x"]`)
	expectQuiet(t, resp3)

	// A broken policy is refused and the one in effect keeps working.
	write("allow if {\n")
	if _, err := authz.Reload(context.Background()); err == nil {
		t.Fatal("broken policy accepted")
	}
	if r := pub.Do("PUBLISH", "keep", "y"); r != ":1" {
		t.Fatalf("PUBLISH after a refused reload: %s", r)
	}
	expect(t, resp2, `["message" "keep" "y"]`)
}

func TestPolicyReloadEndsConnectionsItNoLongerAdmits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authz.rego")
	if err := os.WriteFile(path, []byte("package pubgate.authz\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, authz := startPolicyProxy(t, rewriteShared, nil, dir)
	authz.OnReload(func(r policy.ReloadResult) {
		if r.Changed() {
			env.srv.Recheck()
		}
	})
	bob := env.loginWith(t, "bob", "alice-secret")
	alice := env.loginWith(t, "alice", "alice-secret")
	if err := os.WriteFile(path, []byte("package pubgate.authz\nallow if input.tenant != \"globex\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := authz.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, bob, "-ERR pubgate: the policy no longer admits this connection; closing the connection")
	testutil.Eventually(t, "the refused connection closes", bob.Closed)
	if r := alice.Do("PING"); r != "PONG" {
		t.Fatal(r)
	}
	if r := testutil.DialRESP(t, env.addr).Do("AUTH", "bob", "alice-secret"); r != "-NOPERM this user has no permissions to access one of the channels used as arguments" {
		t.Fatalf("AUTH of a tenant the policy refuses: %s", r)
	}
}
