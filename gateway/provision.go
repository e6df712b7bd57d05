package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	ptls "github.com/pubgate/pubgate/tls"
	"go.uber.org/zap"
)

// provisioned is what a configuration yields before anything is opened,
// connected or created: the compiled policy, the password table, the
// certificate and token authenticators and the upstream's TLS settings.
// Building it reads the files the configuration names; a JWT key set
// named by URL is fetched when serving only, in the background. New
// continues from it, and Check stops there, so that `pubgate check`
// refuses every configuration serve would refuse for what it says.
type provisioned struct {
	authz        *policy.Authorizer
	passwords    *auth.Passwords
	certIdentity func(*x509.Certificate) (auth.Identity, error) // nil without auth.certificates
	tokens       *auth.JWT                                      // nil without auth.jwt
	upstreamTLS  *tls.Config                                    // nil without upstream.tls
}

// provision builds the parts of cfg that need no listener or new file.
// ctx bounds the building (a policy bundle's download); life bounds the
// JWT key set's fetches. checking leaves out a key set named by URL: its
// fetch cannot fail the start (tokens fail until it arrives), so checking
// it would only wait on the network.
func provision(ctx, life context.Context, cfg *config.Config, log *zap.Logger, checking bool) (p provisioned, err error) {
	if p.authz, err = NewAuthorizer(ctx, cfg, log.Named("policy")); err != nil {
		return p, err
	}
	if p.passwords, err = auth.NewPasswordsWith(passwordUsers(cfg), passwordOptions(cfg)); err != nil {
		return p, fmt.Errorf("users: %w", err)
	}
	if c := cfg.Auth.Certificates; c != nil {
		mapper, err := auth.NewCertificateMapper(c.URITemplate)
		if err != nil {
			return p, fmt.Errorf("auth.certificates.uri_template: %w", err)
		}
		p.certIdentity = mapper.IdentityWithRoles(p.passwords.Lookup)
	}
	if j := cfg.Auth.JWT; j != nil && !(checking && j.JWKSFile == "") {
		if p.tokens, err = newJWT(life, cfg.Auth.JWT); err != nil {
			return p, fmt.Errorf("%s: %w", jwksKey(cfg.Auth.JWT), err)
		}
	}
	if !cfg.Upstream.IsMemory() {
		if p.upstreamTLS, err = ptls.ClientConfig(upstreamTLSOptions(cfg.Upstream.TLS)); err != nil {
			return p, err
		}
	}
	return p, nil
}

// jwksKey names the setting the JWT key set comes from, for errors.
func jwksKey(j *config.JWT) string {
	if j.JWKSFile != "" {
		return "auth.jwt.jwks_file"
	}
	return "auth.jwt.jwks_url"
}

// Check runs everything New would refuse cfg for, without opening,
// connecting or creating anything: config.Load's validation and file
// checks come first (the caller loaded cfg with it), then the policy
// compiles, the password table, certificate template, JWT key set file
// and upstream TLS files are built. What only starting can tell (a port in
// use, an unwritable audit directory, an unreachable upstream or JWKS URL)
// is left to serve. It returns the compiled policy's revision.
func Check(ctx context.Context, cfg *config.Config) (policyRevision string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a JWT key set's refresh ends with the check
	p, err := provision(ctx, ctx, cfg, zap.NewNop(), true)
	if err != nil {
		return "", err
	}
	return p.authz.Revision(), nil
}
