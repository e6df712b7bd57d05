package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// CertificateMapper reads a tenant and user from a verified client
// certificate: from a URI SAN matching a template such as
// "spiffe://example.org/tenant/{tenant}/svc/{user}", or, without a template,
// from the subject (user = CN, tenant = first O).
type CertificateMapper struct {
	template *regexp.Regexp // nil: use the subject
	tenantAt int            // submatch index of {tenant}
	userAt   int            // submatch index of {user}
}

// ErrNoCertificateIdentity is returned when a certificate names no tenant
// and user under the configured rule.
var ErrNoCertificateIdentity = errors.New("auth: client certificate names no tenant and user")

// NewCertificateMapper compiles a URI template; "" maps from the subject.
// A template must contain {tenant} and {user} once each, each matching one
// path segment.
func NewCertificateMapper(uriTemplate string) (*CertificateMapper, error) {
	if uriTemplate == "" {
		return &CertificateMapper{}, nil
	}
	if strings.Count(uriTemplate, "{tenant}") != 1 || strings.Count(uriTemplate, "{user}") != 1 {
		return nil, fmt.Errorf("auth: uri_template %q must contain {tenant} and {user} once each", uriTemplate)
	}
	m := &CertificateMapper{}
	var expr strings.Builder
	expr.WriteString("^")
	rest, group := uriTemplate, 0
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 || (!strings.HasPrefix(rest[i:], "{tenant}") && !strings.HasPrefix(rest[i:], "{user}")) {
			expr.WriteString(regexp.QuoteMeta(rest))
			break
		}
		expr.WriteString(regexp.QuoteMeta(rest[:i]))
		expr.WriteString(`([^/?#]+)`)
		group++
		if strings.HasPrefix(rest[i:], "{tenant}") {
			m.tenantAt, rest = group, rest[i+len("{tenant}"):]
		} else {
			m.userAt, rest = group, rest[i+len("{user}"):]
		}
	}
	expr.WriteString("$")
	m.template = regexp.MustCompile(expr.String())
	return m, nil
}

// Map returns the tenant and user a certificate names.
func (m *CertificateMapper) Map(cert *x509.Certificate) (tenant, user string, err error) {
	if m.template == nil {
		if cert.Subject.CommonName == "" || len(cert.Subject.Organization) == 0 {
			return "", "", fmt.Errorf("%w: subject %q lacks CN or O", ErrNoCertificateIdentity, cert.Subject)
		}
		return cert.Subject.Organization[0], cert.Subject.CommonName, nil
	}
	for _, u := range cert.URIs {
		if sub := m.template.FindStringSubmatch(u.String()); sub != nil {
			return sub[m.tenantAt], sub[m.userAt], nil
		}
	}
	return "", "", fmt.Errorf("%w: no URI SAN matches %s", ErrNoCertificateIdentity, m.template)
}
