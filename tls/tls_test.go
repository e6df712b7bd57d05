package tls

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"go.uber.org/zap/zaptest"
)

// serve accepts TLS connections and echoes one byte, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes and exchanges one byte; the error is the handshake's or
// the server's refusal.
func dial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Read(make([]byte, 1)); err != nil { // a refused client certificate surfaces here in TLS 1.3
		c.Close()
		return nil, err
	}
	return c, nil
}

func newSource(t *testing.T, o Options) *Source {
	t.Helper()
	if o.ReloadInterval == 0 {
		o.ReloadInterval = 20 * time.Millisecond
	}
	s, err := New(o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVersions(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	certFile, keyFile := ca.Issue(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	for _, min := range []uint16{0, tls.VersionTLS12, tls.VersionTLS13} { // 0: DefaultMinVersion
		src := newSource(t, Options{CertFile: certFile, KeyFile: keyFile, MinVersion: min})
		addr := serve(t, src.Config())
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			c, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: v, MaxVersion: v})
			want := !(min == tls.VersionTLS13 && v == tls.VersionTLS12)
			if (err == nil) != want {
				t.Errorf("MinVersion %x, client TLS %x: err %v", min, v, err)
			}
			if c != nil {
				c.Close()
			}
		}
	}
}

func TestClientAuth(t *testing.T) {
	serverCA := testutil.NewCA(t, "server CA")
	certFile, keyFile := serverCA.Issue(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	clientCA := testutil.NewCA(t, "client CA")
	otherCA := testutil.NewCA(t, "other CA")
	good := loadPair(t, clientCA, testutil.CertSpec{CommonName: "svc", Client: true})
	foreign := loadPair(t, otherCA, testutil.CertSpec{CommonName: "svc", Client: true})

	cases := []struct {
		mode   ClientAuth
		client []tls.Certificate
		ok     bool
	}{
		{ClientAuthRequire, nil, false},
		{ClientAuthRequire, foreign, false},
		{ClientAuthRequire, good, true},
		{ClientAuthVerifyIfGiven, nil, true},
		{ClientAuthVerifyIfGiven, foreign, false},
		{ClientAuthVerifyIfGiven, good, true},
		{ClientAuthNone, foreign, true},
	}
	for _, c := range cases {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			src := newSource(t, Options{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCA.CertFile, ClientAuth: c.mode})
			client := &tls.Config{RootCAs: serverCA.Pool(), MaxVersion: v}
			if c.client != nil {
				// Offer the certificate whatever CAs the server names, as a
				// misconfigured or hostile client would.
				client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c.client[0], nil }
			}
			conn, err := dial(serve(t, src.Config()), client)
			if (err == nil) != c.ok {
				t.Errorf("ClientAuth %d, %d client certs, TLS %x: err %v, want ok=%v", c.mode, len(c.client), v, err, c.ok)
			}
			if conn != nil {
				conn.Close()
			}
		}
	}
}

// TestRotation: new files are served to new clients while an established
// connection carries on; a broken pair is refused and the previous kept.
func TestRotation(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	dir := t.TempDir()
	certFile, keyFile := dir+"/server.crt", dir+"/server.key"
	install := func(c, k string) { installPair(t, c, k, certFile, keyFile) }
	install(ca.Issue(testutil.CertSpec{CommonName: "first", Hosts: []string{"127.0.0.1"}}))
	src := newSource(t, Options{CertFile: certFile, KeyFile: keyFile})
	addr := serve(t, src.Config())
	client := &tls.Config{RootCAs: ca.Pool()}
	established, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()

	install(ca.Issue(testutil.CertSpec{CommonName: "second", Hosts: []string{"127.0.0.1"}}))
	testutil.Eventually(t, "new clients get the second certificate", func() bool {
		return servedName(t, addr, client) == "second"
	})
	if _, err := established.Write([]byte{'y'}); err != nil {
		t.Fatalf("established connection broken by the rotation: %v", err)
	}
	if _, err := established.Read(make([]byte, 1)); err != nil {
		t.Fatalf("established connection broken by the rotation: %v", err)
	}

	// A certificate with another pair's key is refused; "second" stays.
	third, _ := ca.Issue(testutil.CertSpec{CommonName: "third", Hosts: []string{"127.0.0.1"}})
	_, otherKey := ca.Issue(testutil.CertSpec{CommonName: "fourth", Hosts: []string{"127.0.0.1"}})
	install(third, otherKey)
	time.Sleep(100 * time.Millisecond) // several reload intervals
	if got := servedName(t, addr, client); got != "second" {
		t.Fatalf("after a broken pair, new clients get %q", got)
	}
}

func servedName(t *testing.T, addr string, cfg *tls.Config) string {
	c, err := dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestInternalCA(t *testing.T) {
	dir := t.TempDir()
	src := newSource(t, Options{Internal: &InternalCAOptions{Names: []string{"localhost", "127.0.0.1"}, DataDir: dir}})
	pool, err := LoadCertPool(src.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, src.Config())
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := dial(addr, &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("client trusting %s, server name %s: %v", src.CAFile, name, err)
		}
		c.Close()
	}
	if c, err := dial(addr, &tls.Config{RootCAs: pool, ServerName: "elsewhere.example"}); err == nil {
		c.Close()
		t.Fatal("certificate valid for a name it was not issued for")
	}
	if info, err := os.Stat(dir + "/ca.key"); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file mode: %v, %v", info, err)
	}

	// A restart keeps the CA and the certificate; other names get a new
	// certificate from the same CA.
	again := newSource(t, Options{Internal: &InternalCAOptions{Names: []string{"localhost", "127.0.0.1"}, DataDir: dir}})
	if !again.Certificate().Leaf.Equal(src.Certificate().Leaf) {
		t.Error("restart issued a new certificate although the old one is current")
	}
	renamed := newSource(t, Options{Internal: &InternalCAOptions{Names: []string{"pubgate.internal"}, DataDir: dir}})
	leaf := renamed.Certificate().Leaf
	if leaf.Equal(src.Certificate().Leaf) || leaf.DNSNames[0] != "pubgate.internal" {
		t.Error("changed names did not get a new certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "pubgate.internal"}); err != nil {
		t.Errorf("new certificate not from the same CA: %v", err)
	}
}

func loadPair(t *testing.T, ca *testutil.CA, spec testutil.CertSpec) []tls.Certificate {
	t.Helper()
	return []tls.Certificate{ca.IssuePair(spec)}
}

// TestInternalCASharedDirectory: nodes that share a data directory and start
// together end up with one CA, not one each.
func TestInternalCASharedDirectory(t *testing.T) {
	dir := t.TempDir()
	cas := make([]*localCA, 8)
	var wg sync.WaitGroup
	for i := range cas {
		wg.Go(func() {
			ca, err := loadOrCreateCA(dir)
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = ca
		})
	}
	wg.Wait()
	for _, ca := range cas[1:] {
		if ca == nil || !ca.cert.Equal(cas[0].cert) {
			t.Fatal("nodes sharing a data directory created different CAs")
		}
	}
}

// TestStageReadsFilesNowAndAppliesAllOrNothing: Stage (SIGHUP) reads a
// new certificate and a new client CA file at once, whatever
// reload_interval says, and serves them when applied, not before; with a
// client CA file that does not load, neither the new certificate nor the
// CA is taken.
func TestStageReadsFilesNowAndAppliesAllOrNothing(t *testing.T) {
	serverCA, clientCA, nextCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA"), testutil.NewCA(t, "next client CA")
	dir := t.TempDir()
	certFile, keyFile, caFile := dir+"/server.crt", dir+"/server.key", dir+"/clients.crt"
	copyFile(t, clientCA.CertFile, caFile)
	install := func(c, k string) { installPair(t, c, k, certFile, keyFile) }
	install(serverCA.Issue(testutil.CertSpec{CommonName: "first", Hosts: []string{"127.0.0.1"}}))
	src := newSource(t, Options{CertFile: certFile, KeyFile: keyFile, ReloadInterval: time.Hour,
		ClientCAFile: caFile, ClientAuth: ClientAuthRequire})
	addr := serve(t, src.Config())
	withCert := func(pair []tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: serverCA.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair[0], nil }}
	}
	current := withCert(loadPair(t, clientCA, testutil.CertSpec{CommonName: "svc", Client: true}))
	next := withCert(loadPair(t, nextCA, testutil.CertSpec{CommonName: "svc", Client: true}))
	if _, err := dial(addr, next); err == nil {
		t.Fatal("a certificate of the next CA was accepted before the reload")
	}

	install(serverCA.Issue(testutil.CertSpec{CommonName: "second", Hosts: []string{"127.0.0.1"}}))
	copyFile(t, nextCA.CertFile, caFile)
	if apply, err := src.Stage(); err != nil {
		t.Fatal(err)
	} else if got := servedName(t, addr, current); got != "first" {
		t.Fatalf("staged but not applied, new clients get %q", got)
	} else {
		apply()
	}
	if got := servedName(t, addr, next); got != "second" {
		t.Fatalf("after Reload, new clients get %q", got)
	}
	if _, err := dial(addr, current); err == nil {
		t.Fatal("a certificate of the replaced client CA is still accepted")
	}

	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	install(serverCA.Issue(testutil.CertSpec{CommonName: "third", Hosts: []string{"127.0.0.1"}}))
	if _, err := src.Stage(); err == nil {
		t.Fatal("a broken client CA file was taken")
	}
	if got := servedName(t, addr, next); got != "second" {
		t.Fatalf("after a refused reload, new clients get %q", got)
	}
}

// installPair copies a certificate and key where the source reads them.
func installPair(t *testing.T, cert, key, certFile, keyFile string) {
	t.Helper()
	copyFile(t, cert, certFile)
	copyFile(t, key, keyFile)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// TestNewRefusesWhatWouldPanic: options that would make the certificate
// loop panic are errors.
func TestNewRefusesWhatWouldPanic(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	certFile, keyFile := ca.Issue(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	for name, o := range map[string]Options{
		"negative reload interval": {CertFile: certFile, KeyFile: keyFile, ReloadInterval: -time.Second},
		"local CA without names":   {Internal: &InternalCAOptions{DataDir: t.TempDir()}},
	} {
		if s, err := New(o, zaptest.NewLogger(t)); err == nil {
			s.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
}
