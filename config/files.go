package config

import (
	"crypto/tls"
	"fmt"
	"os"

	ptls "github.com/pubgate/pubgate/tls"
)

// checkFiles is CheckFiles' checks, reported through add: every file and
// environment variable the settings name, read as serve reads it. Each
// check runs under the same conditions as when it was part of the
// settings' checks, so that Validate reports what it always did.
func (c *Config) checkFiles(add addFunc) {
	if t := c.Listen.TLS; t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("listen.tls.cert_file", "%v", err)
		}
	}
	if t := c.Listen.TLS; t.ClientCAFile != "" {
		checkCAFile(add, "listen.tls.client_ca_file", t.ClientCAFile)
	}
	if a := c.Listen.TLS.ACME; a != nil && a.CARootFile != "" {
		checkCAFile(add, "listen.tls.acme.ca_root_file", a.CARootFile)
	}
	if t := c.Upstream.TLS; t.Enabled() {
		if t.CertFile != "" && t.KeyFile != "" {
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				add("upstream.tls.cert_file", "%v", err)
			}
		}
		if t.CAFile != "" {
			checkCAFile(add, "upstream.tls.ca_file", t.CAFile)
		}
	}
	for i, path := range c.Policy.Paths {
		if _, err := os.Stat(path); err != nil {
			add(fmt.Sprintf("policy.paths[%d]", i), "%v", err)
		}
	}
	if b := c.Policy.Bundle; b != "" {
		if _, err := os.Stat(b); err != nil {
			add("policy.bundle", "%v", err)
		}
	}
	// Only a key set named alone is read: naming both, or neither, is
	// ValidateSettings' error.
	if j := c.Auth.JWT; j != nil && j.JWKSFile != "" && j.JWKSURL == "" {
		if _, err := os.Stat(j.JWKSFile); err != nil {
			add("auth.jwt.jwks_file", "%v", err)
		}
	}
	c.checkAuditKey(add)
}

// checkCAFile reports a CA file that cannot be read or holds no
// certificate, reading it as the TLS setup will.
func checkCAFile(add addFunc, key, path string) {
	if _, err := ptls.LoadCertPool(path); err != nil {
		add(key, "%v", err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
