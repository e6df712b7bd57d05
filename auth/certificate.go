package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strconv"
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

// CheckURITemplate says what is wrong with a non-empty URI template, if
// anything: configuration validation and NewCertificateMapper share it.
func CheckURITemplate(uriTemplate string) error {
	if strings.Count(uriTemplate, "{tenant}") != 1 || strings.Count(uriTemplate, "{user}") != 1 {
		return errors.New("must contain {tenant} and {user} once each")
	}
	if strings.Count(uriTemplate, "{") != 2 || strings.Count(uriTemplate, "}") != 2 {
		return errors.New("may contain no braces but those of {tenant} and {user}")
	}
	return nil
}

// NewCertificateMapper compiles a URI template; "" maps from the subject.
// A template must contain {tenant} and {user} once each, each matching one
// path segment.
func NewCertificateMapper(uriTemplate string) (*CertificateMapper, error) {
	if uriTemplate == "" {
		return &CertificateMapper{}, nil
	}
	if err := CheckURITemplate(uriTemplate); err != nil {
		return nil, fmt.Errorf("auth: uri_template %q %w", uriTemplate, err)
	}
	m := &CertificateMapper{}
	value := placeholderExpr(uriTemplate)
	var expr strings.Builder
	expr.WriteString("^")
	rest, group := uriTemplate, 0
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			expr.WriteString(regexp.QuoteMeta(rest))
			break
		}
		expr.WriteString(regexp.QuoteMeta(rest[:i]))
		expr.WriteString(value)
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

// placeholderExpr matches a placeholder's value: within one path segment,
// and containing none of the characters the template puts right before or
// after a placeholder. Otherwise "{tenant}-{user}" would read a certificate
// for tenant acme-eu, user bob ("acme-eu-bob") as tenant acme.
func placeholderExpr(template string) string {
	stop := map[byte]bool{'/': true, '?': true, '#': true}
	for i := 0; i < len(template); i++ {
		if template[i] == '{' && i > 0 {
			stop[template[i-1]] = true
		}
		if template[i] == '}' && i+1 < len(template) {
			stop[template[i+1]] = true
		}
	}
	var class strings.Builder
	for c := range stop {
		class.WriteString(`\x`)
		class.WriteString(strconv.FormatUint(uint64(c)|0x100, 16)[1:])
	}
	return "([^" + class.String() + "]+)"
}

// namePattern is what tenant, user and role names may contain: they
// appear in logs, policies and audit records, so they are kept plain.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$`)

// ValidName reports whether s may name a tenant, a user or a role, in the
// configuration or read from a certificate.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Map returns the tenant and user a certificate names.
func (m *CertificateMapper) Map(cert *x509.Certificate) (tenant, user string, err error) {
	tenant, user, err = m.names(cert)
	if err == nil && (!ValidName(tenant) || !ValidName(user)) {
		err = fmt.Errorf("%w: %q/%q are not valid tenant and user names", ErrNoCertificateIdentity, tenant, user)
	}
	return tenant, user, err
}

// IdentityWithRoles maps verified certificates to identities (method
// "mtls"). A configured user of the same name and tenant, as users finds
// it, lends the identity its roles.
func (m *CertificateMapper) IdentityWithRoles(users func(name string) (Identity, bool)) func(*x509.Certificate) (Identity, error) {
	return func(c *x509.Certificate) (Identity, error) {
		tenant, user, err := m.Map(c)
		if err != nil {
			return Identity{}, err
		}
		id := Identity{Tenant: tenant, User: user, Method: MethodCertificate}
		if u, ok := users(user); ok && u.Tenant == tenant {
			id.Roles = u.Roles
		}
		return id, nil
	}
}

func (m *CertificateMapper) names(cert *x509.Certificate) (tenant, user string, err error) {
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
