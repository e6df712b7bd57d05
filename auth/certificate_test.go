package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"
)

func TestCertificateMapper(t *testing.T) {
	uri := func(s ...string) []*url.URL {
		var out []*url.URL
		for _, v := range s {
			u, _ := url.Parse(v)
			out = append(out, u)
		}
		return out
	}
	spiffe := "spiffe://example.org/tenant/{tenant}/svc/{user}"
	cases := []struct {
		name, template string
		cert           x509.Certificate
		tenant, user   string // "" = no identity
	}{
		{"SPIFFE ID", spiffe, x509.Certificate{URIs: uri("spiffe://example.org/tenant/acme/svc/orders")}, "acme", "orders"},
		{"second URI matches", spiffe, x509.Certificate{URIs: uri("https://x", "spiffe://example.org/tenant/globex/svc/billing")}, "globex", "billing"},
		{"other trust domain", spiffe, x509.Certificate{URIs: uri("spiffe://evil.org/tenant/acme/svc/orders")}, "", ""},
		{"extra path segment", spiffe, x509.Certificate{URIs: uri("spiffe://example.org/tenant/acme/x/svc/orders")}, "", ""},
		{"trailing suffix", spiffe, x509.Certificate{URIs: uri("spiffe://example.org/tenant/acme/svc/orders/extra")}, "", ""},
		{"no URI", spiffe, x509.Certificate{Subject: pkix.Name{CommonName: "orders", Organization: []string{"acme"}}}, "", ""},
		{"user before tenant", "urn:svc:{user}@{tenant}", x509.Certificate{URIs: uri("urn:svc:orders@acme")}, "acme", "orders"},
		{"delimiter inside a name", "spiffe://ex.org/{tenant}-{user}", x509.Certificate{URIs: uri("spiffe://ex.org/acme-eu-bob")}, "", ""},
		{"escaped characters in a name", spiffe, x509.Certificate{URIs: uri("spiffe://example.org/tenant/acme/svc/b%2Fc")}, "", ""},
		{"template metacharacters are literal", "spiffe://ex.org/t/{tenant}/s/{user}", x509.Certificate{URIs: uri("spiffe://exXorg/t/acme/s/orders")}, "", ""},
		{"subject", "", x509.Certificate{Subject: pkix.Name{CommonName: "orders", Organization: []string{"acme", "other"}}}, "acme", "orders"},
		{"subject without O", "", x509.Certificate{Subject: pkix.Name{CommonName: "orders"}}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewCertificateMapper(c.template)
			if err != nil {
				t.Fatal(err)
			}
			tenant, user, err := m.Map(&c.cert)
			if c.tenant == "" {
				if !errors.Is(err, ErrNoCertificateIdentity) {
					t.Fatalf("mapped to %q/%q, %v; want no identity", tenant, user, err)
				}
				return
			}
			if err != nil || tenant != c.tenant || user != c.user {
				t.Fatalf("mapped to %q/%q, %v; want %q/%q", tenant, user, err, c.tenant, c.user)
			}
		})
	}
	for _, bad := range []string{"spiffe://x/{tenant}", "spiffe://x/{user}/{user}/{tenant}", "plain", "spiffe://{x}/{tenant}/{user}"} {
		if _, err := NewCertificateMapper(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}
