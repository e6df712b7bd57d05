package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap/zaptest"
)

// Cost-4 bcrypt hashes keep the tests fast.
var testUsers = map[string]auth.PasswordUser{
	"alice":   {Tenant: "acme", PasswordHash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG", Roles: []string{"publisher", "subscriber"}}, // alice-secret
	"default": {Tenant: "acme", PasswordHash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"},                                             // alice-secret
	"bob":     {Tenant: "globex", PasswordHash: "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de"},                                           // bob-secret
}

var testTenants = map[string]TenantOptions{"acme": {Prefix: "acme:"}, "globex": {Prefix: "globex:"}}

type testEnv struct {
	srv       *Server
	addr      string
	broker    upstream.Broker
	passwords *auth.Passwords // the password table, when Options.Auth is one
}

// startProxy serves pubgate on a free loopback port over broker (the memory
// engine when nil); adjust may change the options.
func startProxy(t testing.TB, broker upstream.Broker, adjust func(*Options)) *testEnv {
	t.Helper()
	return startProxyTLS(t, broker, nil, adjust)
}

// startProxyTLS is startProxy with a TLS listener when tlsConfig is set.
func startProxyTLS(t testing.TB, broker upstream.Broker, tlsConfig *tls.Config, adjust func(*Options)) *testEnv {
	t.Helper()
	return startProxyOn(t, nil, broker, tlsConfig, adjust)
}

// startProxyOn is startProxyTLS whose TCP listener is wrapped by wrap, if
// set (PROXY protocol).
func startProxyOn(t testing.TB, wrap func(net.Listener) net.Listener, broker upstream.Broker, tlsConfig *tls.Config, adjust func(*Options)) *testEnv {
	t.Helper()
	if broker == nil {
		broker = upstream.NewMemory()
	}
	pw, err := auth.NewPasswords(testUsers)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Limits: testLimits(), Tenants: testTenants,
		Broker: broker, Auth: pw, UpstreamTimeout: 5 * time.Second, Version: "test", Logger: zaptest.NewLogger(t),
	}
	if adjust != nil {
		adjust(&o)
	}
	passwords, _ := o.Auth.(*auth.Passwords)
	if o.Users == nil && passwords != nil {
		o.Users = passwords.Lookup
	}
	if o.Authorizer == nil {
		o.Authorizer = newTestAuthorizer(t, o.Tenants, o.Namespace, policy.Sources{Builtin: policy.Builtin})
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = broker.Close()

	})
	return &testEnv{srv: srv, addr: ln.Addr().String(), broker: broker, passwords: passwords}
}

// login connects and authenticates as user (password "<user>-secret").
func (e *testEnv) login(t *testing.T, user string) *testutil.RESPConn {
	t.Helper()
	pass := user + "-secret"
	if user == "default" {
		pass = "alice-secret"
	}
	return e.loginWith(t, user, pass)
}

// loginWith connects and authenticates as user with a password.
func (e *testEnv) loginWith(t *testing.T, user, pass string) *testutil.RESPConn {
	t.Helper()
	c := testutil.DialRESP(t, e.addr)
	if r := c.Do("AUTH", user, pass); r != "OK" {
		t.Fatalf("AUTH %s: %s", user, r)
	}
	return c
}

var authIdentityAlice = auth.Identity{Tenant: "acme", User: "alice", Method: "password"}

// newTestAuthorizer compiles a policy with the data pubgate gives it.
func newTestAuthorizer(t testing.TB, tenants map[string]TenantOptions, ns NamespaceOptions, src policy.Sources) *policy.Authorizer {
	t.Helper()
	src.Data = testPolicyData(tenants, ns)
	a, err := policy.New(context.Background(), policy.Options{Sources: src, CacheSize: 1000, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testLimits are limits.* as the configuration file has them by default.
func testLimits() Limits {
	return Limits{
		MaxClients: 10000, MaxSubscriptionsPerClient: 10000, MaxPayloadBytes: 1 << 20, MaxChannelBytes: 4 << 10,
		ClientOutputBuffer: OutputBuffer{HardLimit: 32 << 20, SoftLimit: 8 << 20, SoftFor: 60 * time.Second},
		CoverPatternsOver:  32,
	}
}

// testPolicyData is data.pubgate as serve makes it (config.Config's
// PolicyData) of a configuration with these tenants and namespace, and no
// users.
func testPolicyData(tenants map[string]TenantOptions, ns NamespaceOptions) map[string]any {
	ts := make(map[string]any, len(tenants))
	for name, t := range tenants {
		q := t.Quotas
		ts[name] = map[string]any{"prefix": t.Prefix, "quotas": map[string]any{
			"max_connections": q.MaxConnections, "max_subscriptions": q.MaxSubscriptions,
			"max_payload_bytes": q.MaxPayloadBytes,
			"publish_rate":      map[string]any{"messages": q.PublishRate.Messages, "bytes": q.PublishRate.Bytes},
		}}
	}
	mode := "rewrite"
	if ns.Enforce {
		mode = "enforce"
	}
	return map[string]any{
		"tenants": ts, "users": map[string]any{},
		"namespace": map[string]any{"mode": mode, "shared_prefix": ns.SharedPrefix},
	}
}
