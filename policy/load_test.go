package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServedPolicyLeavesOutRegoTests: the *_test.rego files beside a
// policy are for `pubgate policy test`: the served policy does not load
// them (nor list them as loaded), editing one does not change its
// revision, and the tester still finds them.
func TestServedPolicyLeavesOutRegoTests(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"p.rego":      "package pubgate.authz\nallow if input.user == \"alice\"\n",
		"p_test.rego": "package pubgate.authz_test\nimport data.pubgate.authz\ntest_alice if authz.allow with input as {\"user\": \"alice\"}\n",
	})
	if err := os.Mkdir(filepath.Join(dir, "lib"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib", "more_test.rego"), []byte("package lib_test\ntest_x if true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := load(Sources{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if files := l.files(); strings.Contains(files, "_test.rego") || !strings.Contains(files, "p.rego") {
		t.Fatalf("loaded modules: %s", files)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.rego"), []byte("package pubgate.authz_test\ntest_edited if true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := load(Sources{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if again.revision != l.revision {
		t.Errorf("editing a test changed the revision: %s → %s", l.revision, again.revision)
	}

	var out strings.Builder
	passed, err := Test(context.Background(), TestOptions{Paths: []string{dir}, Output: &out, Verbose: true})
	if err != nil || !passed || !strings.Contains(out.String(), "test_edited: PASS") || !strings.Contains(out.String(), "test_x: PASS") {
		t.Fatalf("the tester lost the tests: passed=%v err=%v\n%s", passed, err, out.String())
	}

	// A test file named in policy.paths itself is loaded, as asked.
	named, err := load(Sources{Paths: []string{filepath.Join(dir, "p.rego"), filepath.Join(dir, "p_test.rego")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(named.files(), "p_test.rego") {
		t.Errorf("an explicitly named test file was left out: %s", named.files())
	}
}
