package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditKeyFileAuto(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	want := filepath.Join(data, "pubgate", "audit.key")
	cfg := []byte("listen: {plaintext: true}\ntenants: {acme: {}}\naudit: {sink: file, path: /tmp/x/audit.log, key_file: auto}\n")

	// Before the first start there is no key yet: serve creates it.
	c, err := Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Audit.KeyAuto || c.Audit.KeyFile != want {
		t.Fatalf("key_file auto resolved to %q (auto %v); want %s", c.Audit.KeyFile, c.Audit.KeyAuto, want)
	}
	if s := c.Summary(); !strings.Contains(s, "key "+want+" (auto: serve creates it)") {
		t.Errorf("summary:\n%s", s)
	}

	// Once it exists it is loaded like any key file: a bad one is an error.
	if err := os.MkdirAll(filepath.Dir(want), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(cfg); err == nil || !strings.Contains(err.Error(), "audit.key_file: the key is 5 bytes") {
		t.Fatalf("a short auto key: %v", err)
	}

	if _, err := Parse([]byte("listen: {plaintext: true}\ntenants: {acme: {}}\naudit: {sink: stdout, key_file: auto, key_env: K}\n")); err == nil ||
		!strings.Contains(err.Error(), "audit.key_file: auto and audit.key_env both name a key") {
		t.Fatalf("auto and key_env: %v", err)
	}
}

func TestAuditSummaryWarnsOfAReadableKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pubgate.yaml")
	if err := os.WriteFile(path, []byte("listen: {plaintext: true}\ntenants: {acme: {}}\naudit: {sink: stdout, key_file: audit.key}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path) // a warning, not an error
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Summary(); !strings.Contains(s, "warning: the audit key file "+key) || !strings.Contains(s, "chmod 600 "+key) {
		t.Errorf("summary lacks the warning:\n%s", s)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if s := c.Summary(); strings.Contains(s, "warning") {
		t.Errorf("0600 key still warned of:\n%s", s)
	}
}
