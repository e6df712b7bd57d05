package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateSettingsReadsNoFile: a configuration naming files that do not
// exist passes ValidateSettings, which reads none, and fails CheckFiles
// (and so Validate) with an error naming each file's key.
func TestValidateSettingsReadsNoFile(t *testing.T) {
	missing := func(name string) string { return filepath.Join(t.TempDir(), "missing", name) }
	const env = "PUBGATE_TEST_AUDIT_KEY_NOT_SET"
	t.Setenv(env, "")

	c := Default()
	c.Listen.TLS.CertFile, c.Listen.TLS.KeyFile = missing("cert.pem"), missing("key.pem")
	c.Listen.TLS.ClientCAFile = missing("clients-ca.pem")
	c.Upstream.URL = "rediss://redis.example:6380/"
	c.Upstream.TLS = UpstreamTLS{CAFile: missing("redis-ca.pem"), CertFile: missing("redis-cert.pem"), KeyFile: missing("redis-key.pem")}
	c.Tenants = map[string]*Tenant{"acme": nil}
	c.Users = map[string]*User{"alice": {Tenant: "acme", PasswordHash: hash}}
	c.Policy.Paths = []string{missing("policy.rego")}
	c.Policy.Bundle = missing("bundle.tar.gz")
	c.Auth.JWT = &JWT{JWKSFile: missing("jwks.json"), Issuer: "https://idp.example", Audience: "pubgate"}
	c.Audit.Sink, c.Audit.KeyEnv = "stdout", env
	c.fillDerivedDefaults()

	if err := c.ValidateSettings(); err != nil {
		t.Fatalf("ValidateSettings read a file or the environment: %v", err)
	}
	err := c.CheckFiles()
	if err == nil {
		t.Fatal("CheckFiles accepted files that do not exist")
	}
	keys := []string{
		"listen.tls.cert_file: ", "listen.tls.client_ca_file: ", "upstream.tls.cert_file: ", "upstream.tls.ca_file: ",
		"policy.paths[0]: ", "policy.bundle: ", "auth.jwt.jwks_file: ", "audit.key_env: ",
	}
	for _, key := range keys {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("CheckFiles does not name %s:\n%v", strings.TrimSuffix(key, ": "), err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != len(keys) {
		t.Errorf("CheckFiles reported %d errors, want %d:\n%v", n, len(keys), err)
	}
	if v := c.Validate(); v == nil || v.Error() != err.Error() {
		t.Errorf("Validate (settings valid) is not CheckFiles' errors:\n%v\nwant\n%v", v, err)
	}

	// An error of each kind: Validate reports both, sorted together.
	c.Policy.Timeout = 0
	if err := c.ValidateSettings(); err == nil || err.Error() != "policy.timeout: must be positive" {
		t.Errorf("ValidateSettings: %v", err)
	}
	v := c.Validate()
	if v == nil || !strings.Contains(v.Error(), "policy.bundle: ") || !strings.Contains(v.Error(), "policy.timeout: must be positive") {
		t.Fatalf("Validate does not join both steps' errors: %v", v)
	}
	lines := strings.Split(v.Error(), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i-1] > lines[i] {
			t.Errorf("Validate's errors are not sorted: %q before %q", lines[i-1], lines[i])
		}
	}
}

// TestCheckFilesReadsTheACMERoot: a private ACME CA's root that does not
// load is refused by check as serve refuses it.
func TestCheckFilesReadsTheACMERoot(t *testing.T) {
	c := Default()
	c.Listen.TLS.ACME = &ACME{Domains: []string{"pubgate.example"}, DirectoryURL: "https://acme.example/dir",
		CARootFile: filepath.Join(t.TempDir(), "missing.pem"), TLSALPNChallenge: true}
	c.Tenants = map[string]*Tenant{"acme": nil}
	c.fillDerivedDefaults()
	if err := c.ValidateSettings(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "listen.tls.acme.ca_root_file: ") {
		t.Fatalf("CheckFiles: %v", err)
	}
}
