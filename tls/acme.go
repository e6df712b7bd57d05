package tls

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// acmeManager obtains and renews certificates from an ACME CA through
// certmagic, which does all of ACME: accounts, challenges, storage, renewal
// in the background.
type acmeManager struct {
	cfg   *certmagic.Config
	cache *certmagic.Cache
}

func newACME(ctx context.Context, c *ACMEOptions, log *zap.Logger) (*acmeManager, error) {
	// The settings are read before the cache exists: its maintenance
	// goroutine starts with it and must be stopped on every error after.
	issuer := certmagic.ACMEIssuer{
		CA: c.DirectoryURL, Email: c.Email, Agreed: true, Logger: log,
		DisableHTTPChallenge:    c.HTTPChallengeAddress == "",
		DisableTLSALPNChallenge: !c.TLSALPNChallenge,
	}
	if c.HTTPChallengeAddress != "" {
		host, port, err := net.SplitHostPort(c.HTTPChallengeAddress)
		if err != nil {
			return nil, fmt.Errorf("acme http_challenge_address: %w", err)
		}
		issuer.ListenHost = host
		if issuer.AltHTTPPort, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("acme http_challenge_address: %w", err)
		}
	}
	if c.CARootFile != "" {
		pool, err := LoadCertPool(c.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("acme ca_root_file: %w", err)
		}
		issuer.TrustedRoots = pool
	}
	m := &acmeManager{}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		Logger:           log,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: c.StorageDir}, Logger: log})
	m.cfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.cfg, issuer)}
	if len(c.OnDemand) > 0 {
		m.cfg.OnDemand = &certmagic.OnDemandConfig{
			DecisionFunc: func(_ context.Context, name string) error {
				if !slices.Contains(c.OnDemand, name) {
					return fmt.Errorf("%q is not in listen.tls.acme.on_demand", name)
				}
				return nil
			},
		}
	}
	if len(c.Domains) > 0 {
		// Obtain before serving: a proxy without its certificate is no use.
		if err := m.cfg.ManageSync(ctx, c.Domains); err != nil {
			m.cache.Stop()
			return nil, fmt.Errorf("acme: %w", err)
		}
	}
	return m, nil
}

// tlsConfig is certmagic's handshake configuration: the managed
// certificates, on-demand issuance and TLS-ALPN challenge answers.
func (m *acmeManager) tlsConfig() *tls.Config { return m.cfg.TLSConfig() }

func (m *acmeManager) stop() { m.cache.Stop() }
