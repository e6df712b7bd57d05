package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
)

// mtlsEnv serves pubgate over TLS requiring client certificates from
// clientCA, mapping SPIFFE IDs to identities.
type mtlsEnv struct {
	*testEnv
	serverCA, clientCA *testutil.CA
}

func startMTLSProxy(t *testing.T, certLogin bool, adjust ...func(*Options)) *mtlsEnv {
	serverCA, clientCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA")
	pair := serverCA.IssuePair(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	mapper, err := auth.NewCertificateMapper("spiffe://example.org/tenant/{tenant}/svc/{user}")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clientCA.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	env := startProxyTLS(t, nil, serverTLS, func(o *Options) {
		o.CertificateLogin = certLogin
		o.CertificateIdentity = func(c *x509.Certificate) (auth.Identity, error) {
			tenant, user, err := mapper.Map(c)
			if err != nil {
				return auth.Identity{}, err
			}
			if _, ok := testTenants[tenant]; !ok {
				return auth.Identity{}, errors.New("unknown tenant " + tenant)
			}
			return auth.Identity{Tenant: tenant, User: user, Method: "mtls"}, nil
		}
		for _, a := range adjust {
			a(o)
		}
	})
	return &mtlsEnv{testEnv: env, serverCA: serverCA, clientCA: clientCA}
}

// dial connects over TLS, with a client certificate for spiffeID if set.
func (e *mtlsEnv) dial(t *testing.T, spiffeID string) *testutil.RESPConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: e.serverCA.Pool(), ServerName: "127.0.0.1"}
	if spiffeID != "" {
		cfg.Certificates = []tls.Certificate{e.clientCA.IssuePair(testutil.CertSpec{CommonName: "client", URIs: []string{spiffeID}, Client: true})}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewRESPConn(t, c)
}

func TestCertificateLogin(t *testing.T) {
	env := startMTLSProxy(t, true)
	c := env.dial(t, "spiffe://example.org/tenant/acme/svc/orders")
	if got := c.Do("SUBSCRIBE", "news"); got != `["subscribe" "news" :1]` {
		t.Fatalf("certificate alone did not authenticate: %s", got)
	}
	other := env.dial(t, "spiffe://example.org/tenant/acme/svc/billing")
	if got := other.Do("PUBLISH", "news", "hi"); got != ":1" {
		t.Fatalf("PUBLISH from a certificate identity: %s", got)
	}
	expect(t, c, `["message" "news" "hi"]`)

	mismatch := "-ERR pubgate: the client certificate is of tenant acme; AUTH as a user of tenant globex refused"
	if got := other.Do("AUTH", "bob", "bob-secret"); got != mismatch {
		t.Fatalf("AUTH into another tenant than the certificate's: %s", got)
	}
	if got := other.Do("AUTH", "alice", "alice-secret"); got != "OK" {
		t.Fatalf("AUTH within the certificate's tenant: %s", got)
	}
	other.Send("RESET")
	expect(t, other, "RESET")
	if got := other.Do("ECHO", "x"); got != `"x"` {
		t.Fatalf("after RESET the certificate identity applies again: %s", got)
	}

	none := env.dial(t, "")
	if got := none.Do("SUBSCRIBE", "x"); got != "-NOAUTH Authentication required." {
		t.Fatalf("no certificate, no AUTH: %s", got)
	}
	unknown := env.dial(t, "spiffe://example.org/tenant/initech/svc/x")
	if got := unknown.Read(); got != "-ERR pubgate: the client certificate names no known identity" {
		t.Fatalf("certificate of an unknown tenant: %s", got)
	}
	if !unknown.Closed() {
		t.Fatal("connection with an unusable certificate left open")
	}
}

func TestCertificateMustAgreeWithPassword(t *testing.T) {
	env := startMTLSProxy(t, false)
	c := env.dial(t, "spiffe://example.org/tenant/globex/svc/reports")
	if got := c.Do("SUBSCRIBE", "x"); got != "-NOAUTH Authentication required." {
		t.Fatalf("with login: password a certificate alone must not authenticate: %s", got)
	}
	if got := c.Do("AUTH", "alice", "alice-secret"); got != "-ERR pubgate: the client certificate is of tenant globex; AUTH as a user of tenant acme refused" {
		t.Fatalf("AUTH disagreeing with the certificate: %s", got)
	}
	if got := c.Do("HELLO", "3", "AUTH", "bob", "bob-secret"); got == "" || got[0] != '{' {
		t.Fatalf("AUTH agreeing with the certificate: %s", got)
	}
}

// TestDefaultUserStaysInTheCertificatesTenant: with auth.default_user in
// tenant acme, a client whose certificate is of globex is not bound to it.
func TestDefaultUserStaysInTheCertificatesTenant(t *testing.T) {
	env := startMTLSProxy(t, false, func(o *Options) { o.DefaultUser = &authIdentityAlice })
	globex := env.dial(t, "spiffe://example.org/tenant/globex/svc/reports")
	if got := globex.Do("PUBLISH", "x", "y"); got != "-NOAUTH Authentication required." {
		t.Fatalf("certificate of globex acting as the acme default user: %s", got)
	}
	acme := env.dial(t, "spiffe://example.org/tenant/acme/svc/orders")
	if got := acme.Do("PUBLISH", "x", "y"); got != ":0" {
		t.Fatalf("certificate of the default user's tenant: %s", got)
	}
}
