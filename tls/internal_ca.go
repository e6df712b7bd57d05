package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// A local CA, as Caddy's "tls internal": pubgate creates a CA once, keeps it
// in its data directory, and issues itself a server certificate, reissued
// well before it expires. Clients trust the CA certificate.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	leafValidity   = 30 * 24 * time.Hour
	leafRenewAfter = 20 * 24 * time.Hour // reissue with 10 days left
)

type localCA struct {
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile          string
	leafFile, keyFile string
}

// loadOrCreateCA reads the CA from dir, creating it on first use.
func loadOrCreateCA(dir string) (*localCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // also an existing directory: it holds the CA key
		return nil, err
	}
	ca := &localCA{
		certFile: filepath.Join(dir, "ca.crt"),
		leafFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key"),
	}
	caKeyFile := filepath.Join(dir, "ca.key")
	// Nodes sharing a data directory (a volume) may start together: one
	// creates the CA, the others wait and load it.
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pair, err := tls.LoadX509KeyPair(ca.certFile, caKeyFile)
	if os.IsNotExist(err) {
		err := ca.create(caKeyFile)
		return ca, err
	}
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", caKeyFile)
	}
	ca.cert, ca.key = pair.Leaf, key
	return ca, nil
}

func (ca *localCA) create(keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "pubgate local CA " + now.UTC().Format("2006-01-02"), Organization: []string{"pubgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	ca.key = key
	if err := writePEM(keyFile, "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return err
	}
	return writePEM(ca.certFile, "CERTIFICATE", der, 0o644)
}

// serverCertLoader returns the server certificate for names, issuing a new
// one when there is none, it is due for renewal, or the names changed.
func (ca *localCA) serverCertLoader(names []string) certLoader {
	var current *tls.Certificate
	return func() (*tls.Certificate, error) {
		if current == nil {
			if pair, err := tls.LoadX509KeyPair(ca.leafFile, ca.keyFile); err == nil && ca.serves(pair.Leaf, names) {
				current = &pair
				return current, nil
			}
		} else if ca.serves(current.Leaf, names) {
			return current, nil
		}
		cert, err := ca.issue(names)
		if err != nil {
			return nil, err
		}
		current = cert
		return current, nil
	}
}

// serves reports whether leaf is ours, current, and for exactly names.
func (ca *localCA) serves(leaf *x509.Certificate, names []string) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca.cert) != nil || time.Now().After(leaf.NotBefore.Add(leafRenewAfter)) {
		return false
	}
	dns, ips := splitNames(names)
	return slices.Equal(leaf.DNSNames, dns) && slices.EqualFunc(leaf.IPAddresses, ips, net.IP.Equal)
}

func (ca *localCA) issue(names []string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	dns, ips := splitNames(names)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	if err := writePEM(ca.keyFile, "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(ca.leafFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func mustPKCS8(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an ECDSA P-256 key always marshals
	}
	return der
}

// writePEM replaces path atomically and durably: a reader or a crash never
// sees half a file, and the new file has mode from its creation on.
func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // after a successful rename there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		_ = f.Close() // the first error is the one to report
		return err
	}
	if _, err := f.Write(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})); err != nil {
		_ = f.Close() // the first error is the one to report
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close() // the first error is the one to report
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// lockDir holds an exclusive advisory lock on dir's lock file until the
// returned function is called.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close() // the lock's error is the one to report
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { _ = f.Close() }, nil // closing releases the lock
}
