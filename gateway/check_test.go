package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
)

// TestCheckRefusesWhatServeRefuses: for configurations that validate but
// that a node cannot be built from, Check gives the error New gives.
// Before Check built what New builds, `pubgate check` only compiled the
// policy and accepted a JWT key set that was not one.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	dir := auditDir(t)
	notJSON := writeIn(t, dir, "jwks.json", "not a key set")
	broken := writeIn(t, dir, "broken.rego", "package pubgate.authz\nallow if {")
	cases := map[string]string{
		"a JWKS file that is no key set": `auth: {jwt: {jwks_file: "` + notJSON + `", issuer: "https://idp.example", audience: pubgate, algorithms: [ES256]}}`,
		"a policy that does not compile": `policy: {paths: ["` + broken + `"], watch: false}`,
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := parseConfig(t, dir, extra, "127.0.0.1:0")
			_, checkErr := gateway.Check(context.Background(), cfg)
			g, newErr := gateway.New(context.Background(), cfg, gateway.Options{LogOutput: &strings.Builder{}})
			if newErr == nil {
				_ = g.Shutdown(context.Background())
				t.Fatal("New accepted it; the case tests nothing")
			}
			if checkErr == nil || checkErr.Error() != newErr.Error() {
				t.Fatalf("Check: %v\nNew:   %v", checkErr, newErr)
			}
		})
	}
}

// TestExamplesCheckAndServe: every configuration under examples/ passes
// Check and starts, on ports and directories of the test's own.
func TestExamplesCheckAndServe(t *testing.T) {
	t.Chdir("..") // the examples name paths relative to the repository
	paths, err := filepath.Glob("examples/*/*.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	for _, path := range paths {
		if filepath.Dir(path) == "examples/policies" {
			continue // policy data, not a configuration
		}
		t.Run(path, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", t.TempDir())
			if filepath.Dir(path) == "examples/compose" {
				path = asMountedByCompose(t, path)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gateway.Check(context.Background(), cfg); err != nil {
				t.Fatalf("check: %v", err)
			}
			onTestPorts(t, cfg)
			var logs strings.Builder
			g, err := gateway.New(context.Background(), cfg, gateway.Options{LogOutput: &logs})
			if err == nil {
				err = g.Start()
			}
			if err != nil {
				t.Fatalf("serve: %v\n%s", err, logs.String())
			}
			if err := g.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// asMountedByCompose lays the compose example out as docker-compose.yml
// mounts it (the file in /etc/pubgate, examples/policies beside it as
// policies) and returns where the file is.
func asMountedByCompose(t *testing.T, path string) string {
	etc := t.TempDir()
	policies, err := filepath.Abs("examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(policies, filepath.Join(etc, "policies")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return writeIn(t, etc, "pubgate.yaml", string(data))
}

// onTestPorts moves what cfg would bind or create to loopback port 0 and
// the test's directories.
func onTestPorts(t *testing.T, cfg *config.Config) {
	dir := t.TempDir()
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Listen.ProxyProtocol.Trusted = nil
	if cfg.Admin.Enabled() {
		cfg.Admin.Address, cfg.Admin.AllowPublic = "127.0.0.1:0", false
	}
	if in := cfg.Listen.TLS.Internal; in != nil {
		in.DataDir = filepath.Join(dir, "ca")
	}
	if cfg.Audit.Sink == "file" {
		cfg.Audit.Path = filepath.Join(dir, "audit", "audit.log")
	}
	if cfg.Audit.KeyAuto {
		cfg.Audit.KeyFile = filepath.Join(dir, "audit.key")
	}
}

func writeIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
