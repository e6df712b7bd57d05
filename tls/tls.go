// Package tls builds the client listener's *crypto/tls.Config: a server
// certificate from files (picked up again when they change) or from a local
// CA that pubgate creates, client-certificate verification, and protocol
// versions. Import it as ptls.
package tls

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/config"
	"go.uber.org/zap"
)

// Source serves the current certificate to every new handshake and replaces
// it, without dropping connections, when a new one is available.
type Source struct {
	config *tls.Config
	cert   atomic.Pointer[tls.Certificate]
	// CAFile is the local CA's certificate for clients to trust (internal
	// mode only).
	CAFile string

	log   *zap.Logger
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// certLoader returns the certificate to serve now; changed tells whether it
// differs from the last one returned.
type certLoader func() (cert *tls.Certificate, changed bool, err error)

// New builds the listener's TLS configuration and starts keeping its
// certificate current.
func New(c config.TLS, log *zap.Logger) (*Source, error) {
	s := &Source{log: log.Named("tls"), stop: make(chan struct{}), done: make(chan struct{})}
	if c.ACME != nil {
		return s.withACME(c, log)
	}
	var load certLoader
	interval := c.ReloadInterval
	if c.Internal != nil {
		ca, err := loadOrCreateCA(c.Internal.DataDir)
		if err != nil {
			return nil, fmt.Errorf("tls: local CA: %w", err)
		}
		s.CAFile = ca.certFile
		load = ca.serverCertLoader(c.Internal.Names)
		interval = time.Hour
	} else {
		load = fileLoader(c.CertFile, c.KeyFile)
	}
	cert, _, err := load()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s.cert.Store(cert)
	if s.config, err = s.tlsConfig(c, nil); err != nil {
		return nil, err
	}
	go s.keepCurrent(load, interval)
	return s, nil
}

// withACME serves certificates that certmagic obtains and renews.
func (s *Source) withACME(c config.TLS, log *zap.Logger) (*Source, error) {
	ctx, cancel := context.WithCancel(context.Background())
	acme, err := newACME(ctx, c.ACME, log.Named("acme"))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("tls: %w", err)
	}
	base := acme.tlsConfig()
	if s.config, err = s.tlsConfig(c, base); err != nil {
		cancel()
		acme.stop()
		return nil, err
	}
	go func() {
		<-s.stop
		cancel()
		acme.stop()
		close(s.done)
	}()
	return s, nil
}

// tlsConfig completes base (certmagic's, or a new one serving s.cert) with
// the version and client-certificate settings.
func (s *Source) tlsConfig(c config.TLS, base *tls.Config) (*tls.Config, error) {
	cfg := base
	if cfg == nil {
		cfg = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }}
	}
	cfg.MinVersion = tls.VersionTLS12
	if c.MinVersion == "1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	switch c.ClientAuth {
	case "verify_if_given":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if c.ClientCAFile != "" {
		pool, err := config.LoadCertPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

// Config is the configuration for the listener.
func (s *Source) Config() *tls.Config { return s.config }

// Certificate is the certificate new handshakes get (nil with ACME, whose
// certificates depend on the name asked for).
func (s *Source) Certificate() *tls.Certificate { return s.cert.Load() }

func (s *Source) keepCurrent(load certLoader, interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		cert, changed, err := load()
		switch {
		case err != nil:
			s.log.Error("new certificate refused; still serving the previous one", zap.Error(err))
		case changed:
			s.cert.Store(cert)
			s.log.Info("serving a new certificate", zap.Time("not_after", cert.Leaf.NotAfter))
		}
	}
}

// Close stops watching for new certificates. Safe to call twice.
func (s *Source) Close() error {
	s.close.Do(func() { close(s.stop); <-s.done })
	return nil
}

// fileLoader loads a key pair when the files' size or modification time
// changed. A pair that fails to load is retried on the next call, so that a
// half-written rotation (new certificate, old key) is picked up once complete.
func fileLoader(certFile, keyFile string) certLoader {
	var last string
	return func() (*tls.Certificate, bool, error) {
		sig, err := fileSignature(certFile, keyFile)
		if err != nil {
			return nil, false, err
		}
		if sig == last {
			return nil, false, nil
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, false, err
		}
		last = sig
		return &cert, true, nil
	}
}

func fileSignature(files ...string) (string, error) {
	sig := ""
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		sig += fmt.Sprintf("%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return sig, nil
}
