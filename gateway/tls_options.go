package gateway

import (
	"crypto/tls"

	"github.com/pubgate/pubgate/config"
	ptls "github.com/pubgate/pubgate/tls"
)

// tlsOptions maps listen.tls onto the listener's TLS options. t is
// validated: client_auth and min_version hold one of their known values.
func tlsOptions(t config.TLS) ptls.Options {
	o := ptls.Options{
		CertFile: t.CertFile, KeyFile: t.KeyFile, ReloadInterval: t.ReloadInterval,
		ClientCAFile: t.ClientCAFile, MinVersion: tls.VersionTLS12,
	}
	if t.MinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	switch t.ClientAuth {
	case "verify_if_given":
		o.ClientAuth = ptls.ClientAuthVerifyIfGiven
	case "require":
		o.ClientAuth = ptls.ClientAuthRequire
	default: // "none"
		o.ClientAuth = ptls.ClientAuthNone
	}
	if in := t.Internal; in != nil {
		o.Internal = &ptls.InternalCAOptions{Names: in.Names, DataDir: in.DataDir}
	}
	if a := t.ACME; a != nil {
		o.ACME = &ptls.ACMEOptions{
			Domains: a.Domains, Email: a.Email, DirectoryURL: a.DirectoryURL,
			CARootFile: a.CARootFile, StorageDir: a.StorageDir,
			HTTPChallengeAddress: a.HTTPChallengeAddress, TLSALPNChallenge: a.TLSALPNChallenge,
			OnDemand: a.OnDemand,
		}
	}
	return o
}

// upstreamTLSOptions maps upstream.tls onto the client TLS options towards
// Redis.
// The two types have the same fields: a field added to one and not the
// other stops this from compiling.
func upstreamTLSOptions(t config.UpstreamTLS) ptls.ClientOptions { return ptls.ClientOptions(t) }
