package tls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/pubgate/pubgate/internal/testutil"
)

// pebbleServer is Let's Encrypt's test ACME server, in-process on loopback.
type pebbleServer struct {
	directoryURL string
	serverRoot   string         // PEM file: the ACME endpoint's HTTPS certificate
	issuerRoots  *x509.CertPool // what the certificates pebble issues chain to
	httpPort     int            // where pebble's VA connects for HTTP-01
}

func startPebble(t *testing.T) *pebbleServer {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.LstdFlags)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	p := &pebbleServer{httpPort: testutil.FreePort(t)}
	validator := va.New(logger, p.httpPort, testutil.FreePort(t), false, "", store)
	frontEnd := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	srv := httptest.NewTLSServer(frontEnd.Handler())
	t.Cleanup(srv.Close)
	p.directoryURL = srv.URL + wfe.DirectoryPath
	p.serverRoot = filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(p.serverRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.issuerRoots = x509.NewCertPool()
	p.issuerRoots.AppendCertsFromPEM(authority.GetRootCert(0).PEM())
	return p
}

// TestACME obtains a certificate from pebble with an HTTP-01 challenge, and
// a client that trusts pebble's root connects to the listener.
func TestACME(t *testing.T) {
	p := startPebble(t)
	src := newSource(t, Options{ACME: &ACMEOptions{
		Domains: []string{"localhost"}, Email: "ops@example.com", DirectoryURL: p.directoryURL,
		CARootFile: p.serverRoot, StorageDir: t.TempDir(),
		HTTPChallengeAddress: "localhost:" + strconv.Itoa(p.httpPort),
	}})
	addr := serve(t, src.Config())
	c, err := dial(addr, &tls.Config{RootCAs: p.issuerRoots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS with the certificate pebble issued: %v", err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") || leaf.DNSNames[0] != "localhost" {
		t.Fatalf("served certificate issued by %q for %v", leaf.Issuer.CommonName, leaf.DNSNames)
	}
	// A name outside domains and on_demand gets no certificate.
	if c, err := dial(addr, &tls.Config{RootCAs: p.issuerRoots, ServerName: "elsewhere.localhost"}); err == nil {
		c.Close()
		t.Fatal("handshake succeeded for a name pubgate does not manage")
	}
}
