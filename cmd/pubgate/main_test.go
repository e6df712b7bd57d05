package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
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

// TestVersionOf: the version says as much as the build information holds,
// and why it is "dev" when it holds nothing.
func TestVersionOf(t *testing.T) {
	rev := "5ec6d170523125fc074471eade0169956e4b1e72"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	cache := "/root/.cache/go-build/9c/9cc9606c939ed47177edb1fed3c1eb74af05d5646acabeb667052b4197d5cdd0-d/pubgate"
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		exe  string
		want string
	}{
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "/root/go/bin/pubgate", "v1.2.3"},
		{"go build in a dirty checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207042523-5ec6d1705231+dirty"}, Settings: vcs("true")},
			"/src/pubgate", "v0.0.0-20261207042523-5ec6d1705231+dirty"},
		{"revision without a module version", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")}, "/src/pubgate", "dev-5ec6d1705231+dirty"},
		{"clean revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "/src/pubgate", "dev-5ec6d1705231"},
		{"go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "/tmp/go-build3270665199/b001/exe/pubgate", "dev (go run, no VCS stamp)"},
		{"go run, cached binary", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, cache, "dev (go run, no VCS stamp)"},
		{"go build -buildvcs=false", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "/src/pubgate", "dev (no VCS stamp)"},
		{"no build information", nil, "/src/pubgate", "dev"},
	} {
		if got := versionOf(c.info, c.exe); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
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
