package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestMain lets a test run pubgate as a process of its own (see
// startGatewayProcess): the test binary, started with asMainEnv set, is
// pubgate.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const asMainEnv = "PUBGATE_TEST_AS_MAIN"

// runCLI runs a command line in-process.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckQuickstart(t *testing.T) {
	code, out, errOut := runCLI(t, "", "check", "--config", "../../examples/quickstart/pubgate.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"listen:   127.0.0.1:6380", "upstream: memory://", `acme             prefix "acme:"`, "alice            tenant acme", "is valid"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckReportsKeyNamedErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "listen: {plaintext: true}\ntenants:\n  acme: {}\nusers:\n  eve: {tenant: nope, password_hash: x}\nlimits:\n  max_clinets: 3\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "check", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "limits.max_clinets: unknown key (line 7)") {
		t.Errorf("stderr does not name the unknown key:\n%s", errOut)
	}
	code, _, errOut = runCLI(t, "", "check", "--config", writeFile(t, "tenants:\n  acme: {}\nusers:\n  eve: {tenant: nope, password_hash: x}\n"))
	if code != 1 || !strings.Contains(errOut, `users.eve.tenant: unknown tenant "nope"`) || !strings.Contains(errOut, "users.eve.password_hash: not a bcrypt hash") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"check"}, {"bogus"}, {"check", "--nope"}} {
		code, _, errOut := runCLI(t, "", args...)
		if code != 1 || !strings.HasPrefix(errOut, "pubgate: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestPasswd(t *testing.T) {
	code, out, errOut := runCLI(t, "s3cret-pass\n", "passwd", "--cost", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("s3cret-pass")); err != nil {
		t.Fatalf("printed hash %q does not verify: %v", out, err)
	}
	if code, _, errOut := runCLI(t, "\n", "passwd"); code != 1 || !strings.Contains(errOut, "empty password") {
		t.Errorf("empty password: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "x\n", "passwd", "--cost", "99"); code != 1 {
		t.Error("absurd cost accepted")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "pubgate ") {
		t.Fatalf("exit %d, %q", code, out)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pubgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
