package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestWriteKeyFileIsOwnerOnlyAndNeverReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	if err := WriteKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	key, err := LoadKey(path, "")
	if err != nil || len(key) != 64 {
		t.Fatalf("key %q, %v; want 64 hex characters", key, err)
	}
	if err := WriteKeyFile(path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second write: %v; want a refusal", err)
	}
	if again, _ := LoadKey(path, ""); !bytes.Equal(again, key) {
		t.Fatal("the key was replaced")
	}
	if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".audit-key-*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestLoadOrCreateKeyCreatesOnceThenReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "pubgate", "audit.key")
	first, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v; want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v; want 0700", fi.Mode().Perm())
	}
	second, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(first, second) {
		t.Fatalf("second start: created %v, same key %v, %v", created, bytes.Equal(first, second), err)
	}
}

func TestKeyFileWarningNamesFileAndFix(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	if w := KeyFileWarning(path); w != "" {
		t.Fatalf("0600: %q; want no warning", w)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		w := KeyFileWarning(path)
		if !strings.Contains(w, path) || !strings.Contains(w, "chmod 600 "+path) {
			t.Errorf("%04o: %q; want the file and chmod 600", mode, w)
		}
	}
	if w := KeyFileWarning(filepath.Join(t.TempDir(), "missing")); w != "" {
		t.Errorf("missing file: %q", w)
	}
}
