// Package tls builds the client listener's *crypto/tls.Config: a server
// certificate from files (picked up again when they change), from a local
// CA that pubgate creates, or from an ACME CA through certmagic;
// client-certificate verification, and protocol versions, as Options says.
// ClientConfig builds a client's configuration (pubgate's towards Redis)
// from ClientOptions. Import it as ptls.
package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

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

	load         certLoader // nil with ACME, which keeps its certificates itself
	clientCAFile string
	clientCAs    atomic.Pointer[x509.CertPool]

	log   *zap.Logger
	mu    sync.Mutex // one refresh at a time
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// certLoader returns the certificate to serve now: the same pointer as
// last time while its source has not changed.
type certLoader func() (*tls.Certificate, error)

// New builds the listener's TLS configuration and starts keeping its
// certificate current.
func New(o Options, log *zap.Logger) (*Source, error) {
	s := &Source{log: log.Named("tls"), stop: make(chan struct{}), done: make(chan struct{})}
	if o.ACME != nil {
		return s.withACME(o, log)
	}
	var load certLoader
	interval := o.ReloadInterval
	switch {
	case interval == 0:
		interval = DefaultReloadInterval
	case interval < 0:
		return nil, fmt.Errorf("tls: reload interval %v is not positive", interval)
	}
	if o.Internal != nil {
		if len(o.Internal.Names) == 0 {
			return nil, fmt.Errorf("tls: local CA: no name for the server certificate")
		}
		ca, err := loadOrCreateCA(o.Internal.DataDir)
		if err != nil {
			return nil, fmt.Errorf("tls: local CA: %w", err)
		}
		s.CAFile = ca.certFile
		load = ca.serverCertLoader(o.Internal.Names)
		interval = time.Hour
	} else {
		load = fileLoader(o.CertFile, o.KeyFile)
	}
	cert, err := load()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s.cert.Store(cert)
	s.load = load
	if s.config, err = s.tlsConfig(o, nil); err != nil {
		return nil, err
	}
	go s.keepCurrent(interval)
	return s, nil
}

// withACME serves certificates that certmagic obtains and renews.
func (s *Source) withACME(o Options, log *zap.Logger) (*Source, error) {
	ctx, cancel := context.WithCancel(context.Background())
	acme, err := newACME(ctx, o.ACME, log.Named("acme"))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("tls: %w", err)
	}
	base := acme.tlsConfig()
	if s.config, err = s.tlsConfig(o, base); err != nil {
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
func (s *Source) tlsConfig(o Options, base *tls.Config) (*tls.Config, error) {
	cfg := base
	if cfg == nil {
		cfg = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }}
	}
	cfg.MinVersion = o.MinVersion
	if cfg.MinVersion == 0 {
		cfg.MinVersion = DefaultMinVersion
	}
	switch o.ClientAuth {
	case ClientAuthNone:
	case ClientAuthVerifyIfGiven:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls: unknown client auth mode %d", o.ClientAuth)
	}
	if o.ClientCAFile == "" {
		return cfg, nil
	}
	pool, err := LoadCertPool(o.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("tls: client CA: %w", err)
	}
	s.clientCAFile = o.ClientCAFile
	s.clientCAs.Store(pool)
	// Each handshake verifies against the client CAs in effect, which
	// Stage's apply replaces.
	cfg.ClientCAs = pool
	return &tls.Config{
		MinVersion: cfg.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.Clone()
			c.ClientCAs = s.clientCAs.Load()
			return c, nil
		},
	}, nil
}

// Config is the configuration for the listener.
func (s *Source) Config() *tls.Config { return s.config }

// Certificate is the certificate new handshakes get (nil with ACME, whose
// certificates depend on the name asked for).
func (s *Source) Certificate() *tls.Certificate { return s.cert.Load() }

func (s *Source) keepCurrent(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.refreshCertificate()
	}
}

// refreshCertificate serves the loader's certificate if it changed; one
// that fails to load is logged and the previous one kept.
func (s *Source) refreshCertificate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, err := s.load()
	if err != nil {
		s.log.Error("new certificate refused; still serving the previous one", zap.Error(err))
		return
	}
	s.serve(s.cert.Load(), cert)
}

// serve serves cert in place of was, unless the certificate served is no
// longer was (a newer one came in between); s.mu is held.
func (s *Source) serve(was, cert *tls.Certificate) {
	if cert != was && s.cert.CompareAndSwap(was, cert) {
		s.log.Info("serving a new certificate", zap.Time("not_after", cert.Leaf.NotAfter))
	}
}

// Stage reads the certificate files and the client CA file now, without
// waiting for ReloadInterval, and returns what serves them; nothing
// changes until apply is called, and nothing at all if either fails to
// load: a SIGHUP reload takes the new TLS material with the rest of the
// configuration, or none of it. ACME certificates are renewed by certmagic
// on its own schedule.
func (s *Source) Stage() (apply func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.cert.Load()
	cert := was
	if s.load != nil {
		if cert, err = s.load(); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	var pool *x509.CertPool
	if s.clientCAFile != "" {
		if pool, err = LoadCertPool(s.clientCAFile); err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.serve(was, cert) // unless a refresh since served a newer one
		if pool != nil {
			s.clientCAs.Store(pool)
		}
	}, nil
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
	var current *tls.Certificate
	return func() (*tls.Certificate, error) {
		sig, err := fileSignature(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		if sig == last {
			return current, nil
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		last, current = sig, &cert
		return current, nil
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
