package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditKeygenOutWritesOwnerOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	code, out, errOut := runCLI(t, "", "audit", "keygen", "--out", path)
	if code != 0 || !strings.Contains(out, path) {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	key, _ := os.ReadFile(path)
	if code, _, errOut := runCLI(t, "", "audit", "keygen", "--out", path); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second keygen --out: exit %d: %s", code, errOut)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, key) {
		t.Fatal("keygen --out replaced an existing key")
	}
	// Without --out the key is printed, as before.
	if code, out, _ := runCLI(t, "", "audit", "keygen"); code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("keygen: exit %d: %q", code, out)
	}
}

func TestCheckWarnsOfAReadableAuditKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	writeIn(t, dir, "pubgate.yaml", "listen: {plaintext: true}\ntenants: {acme: {}}\naudit: {sink: stdout, key_file: audit.key}\n")
	code, out, errOut := runCLI(t, "", "check", "--config", filepath.Join(dir, "pubgate.yaml"))
	if code != 0 {
		t.Fatalf("a readable key must warn, not fail: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "warning: the audit key file "+key) || !strings.Contains(out, "chmod 600 "+key) {
		t.Fatalf("no warning naming the file and chmod 600:\n%s", out)
	}
}

const autoKeyConfig = `
listen: {address: "127.0.0.1:0", drain_period: 0s, tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}}
tenants: {acme: {}}
policy: {paths: ["%[2]s"]}
audit: {sink: file, path: "%[1]s/audit/audit.log", key_file: auto, fsync_interval: 20ms}
`

// TestServeAutoAuditKey runs pubgate twice with key_file: auto: the first
// start creates the key (0600) and logs where; verify --live accepts the
// running log with exit 3, strict verify refuses it until pubgate stops;
// the second start reuses the key, warning that it became readable.
func TestServeAutoAuditKey(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_DATA_HOME", xdg)
	key := filepath.Join(xdg, "pubgate", "audit.key")
	dir := t.TempDir()
	cfg := fmt.Sprintf(autoKeyConfig, dir, copyPolicies(t))
	logFile := filepath.Join(dir, "audit", "audit.log")
	verify := func(flags ...string) (int, string) {
		code, out, errOut := runCLI(t, "", append(append([]string{"audit", "verify", "--key-file", key}, flags...), logFile)...)
		return code, out + errOut
	}

	g := startGatewayWith(t, cfg, localGateway(dir))
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("auto key: %v, %v; want a 0600 file", fi, err)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "audit key created") || !strings.Contains(logs, `"key_file": "`+key+`"`) {
		t.Fatalf("the key's path is not logged:\n%s", logs)
	}
	first, _ := os.ReadFile(key)
	// The writer is live: its audit_start is not sealed yet (seal_interval is 1m).
	if code, out := verify("--live"); code != exitLiveTail || !strings.Contains(out, "verified through seq 1") || !strings.Contains(out, "unsealed tail of 1 record(s)") {
		t.Fatalf("verify --live on a running log: exit %d: %s", code, out)
	}
	if code, out := verify(); code != 1 || !strings.Contains(out, "ends without a seal") {
		t.Fatalf("strict verify on a running log: exit %d: %s", code, out)
	}
	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}
	for _, flags := range [][]string{nil, {"--live"}} {
		if code, out := verify(flags...); code != 0 || !strings.Contains(out, "sealed") {
			t.Fatalf("verify %v after shutdown: exit %d: %s", flags, code, out)
		}
	}

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	g = startGatewayWith(t, cfg, localGateway(dir))
	logs := g.logs.String()
	if strings.Contains(logs, "audit key created") || !strings.Contains(logs, "chmod 600 "+key) {
		t.Fatalf("second start: want the key reused and a warning naming it:\n%s", logs)
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(again, first) {
		t.Fatal("the auto key changed between starts")
	}
	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "ok: 4 records, seq 1 to 4") {
		t.Fatalf("both runs: exit %d: %s", code, out)
	}

	// Two swapped records are a reordering, not a missing one.
	data, _ := os.ReadFile(logFile)
	ls := strings.SplitAfter(string(data), "\n")
	ls[1], ls[2] = ls[2], ls[1]
	if err := os.WriteFile(logFile, []byte(strings.Join(ls, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := verify(); code != 1 || !strings.Contains(out, "seq 3 appears before seq 2") || !strings.Contains(out, "records reordered") {
		t.Fatalf("swapped records: exit %d: %s", code, out)
	}
}
