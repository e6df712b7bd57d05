package tls

import (
	"crypto/tls"
	"time"
)

// Defaults New applies to the settings Options leaves at zero.
const (
	// DefaultReloadInterval is how often certificate files are checked for
	// a new pair.
	DefaultReloadInterval = 10 * time.Second
	// DefaultMinVersion is the oldest protocol version accepted.
	DefaultMinVersion = tls.VersionTLS12
)

// Options is how the listener gets its certificate, from exactly one
// source: files (CertFile and KeyFile), a local CA (Internal) or an ACME CA
// (ACME); and how it verifies client certificates.
type Options struct {
	// CertFile and KeyFile are the server's key pair, loaded again when
	// either file changes.
	CertFile string
	KeyFile  string
	// ReloadInterval is how often the files are checked for a new pair
	// (0: DefaultReloadInterval). The local CA's certificate is checked
	// hourly; ACME certificates are renewed by certmagic.
	ReloadInterval time.Duration
	Internal       *InternalCAOptions
	ACME           *ACMEOptions
	// ClientCAFile (PEM) verifies client certificates as ClientAuth says;
	// Source.Stage reads it again.
	ClientCAFile string
	ClientAuth   ClientAuth
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13 (0:
	// DefaultMinVersion).
	MinVersion uint16
}

// ClientAuth is what the listener asks of clients' certificates.
type ClientAuth int

const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = iota
	// ClientAuthVerifyIfGiven verifies a certificate that a client offers,
	// and accepts clients that offer none.
	ClientAuthVerifyIfGiven
	// ClientAuthRequire requires a certificate that verifies.
	ClientAuthRequire
)

// InternalCAOptions makes pubgate its own certificate authority (like
// Caddy's "tls internal"): a CA created once in DataDir issues the server
// certificate, reissued well before it expires.
type InternalCAOptions struct {
	// Names are the server certificate's DNS names and IP addresses; at
	// least one.
	Names []string
	// DataDir keeps the CA (ca.crt, whose path Source.CAFile gives, and
	// its key) and the server certificate.
	DataDir string
}

// ACMEOptions obtains and renews certificates from an ACME CA (RFC 8555):
// Let's Encrypt, or a private one such as step-ca.
type ACMEOptions struct {
	// Domains are obtained before New returns and renewed in the
	// background.
	Domains []string
	Email   string
	// DirectoryURL is the CA's directory ("": certmagic's default, Let's
	// Encrypt production).
	DirectoryURL string
	// CARootFile (PEM) is trusted for the ACME server's HTTPS (a private
	// CA); "": system roots.
	CARootFile string
	// StorageDir keeps accounts and certificates.
	StorageDir string
	// HTTPChallengeAddress (host:port) serves HTTP-01 ("" disables it);
	// the CA connects to port 80 of each domain, so map that port here.
	HTTPChallengeAddress string
	// TLSALPNChallenge enables TLS-ALPN-01, which the CA performs on port
	// 443 of each domain: the listener must be reachable there.
	TLSALPNChallenge bool
	// OnDemand lists names for which a certificate is obtained at the
	// first handshake that asks for them; no other name ever is.
	OnDemand []string
}

// ClientOptions is a client's TLS towards a server (pubgate's towards
// Redis, or bench's towards any RESP server).
type ClientOptions struct {
	// Enable turns TLS on with no other setting.
	Enable bool
	// CAFile (PEM) is what the server's certificate must chain to; "":
	// system roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate, when the server
	// requires one.
	CertFile string
	KeyFile  string
	// ServerName is verified in the server's certificate ("": the
	// caller's default, such as the address's host).
	ServerName string
}

// Enabled reports whether any option is set.
func (o ClientOptions) Enabled() bool { return o != ClientOptions{} }
