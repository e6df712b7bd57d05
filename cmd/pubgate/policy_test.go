package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

func TestPolicyTestRunsTheExampleLibrary(t *testing.T) {
	code, out, errOut := runCLI(t, "", "policy", "test", "../../examples/policies")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "PASS: ") || strings.Contains(out, "FAIL") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestPolicyTestFailsOnAFailingTest(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "p.rego", "package pubgate.authz\nallow := false\n")
	writeIn(t, dir, "p_test.rego", "package pubgate.authz_test\nimport data.pubgate.authz\ntest_allows if authz.allow\n")
	code, out, errOut := runCLI(t, "", "policy", "test", dir)
	if code != 1 || !strings.Contains(out, "test_allows: FAIL") || !strings.Contains(errOut, "policy tests failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	writeIn(t, dir, "p.rego", "package pubgate.authz\nallow if {\n")
	if code, _, errOut := runCLI(t, "", "policy", "test", dir); code != 1 || !strings.Contains(errOut, "p.rego:") {
		t.Fatalf("a syntax error: exit %d, %s", code, errOut)
	}
}

func TestPolicyEvalShowsTheDecidingRules(t *testing.T) {
	input := `{"action": "publish", "tenant": "acme", "user": "alice", "roles": ["subscriber"], "channel": "orders",
		"upstream_channel": "acme:orders", "pattern": false, "pattern_literal_prefix": ""}`
	code, out, errOut := runCLI(t, "", "policy", "eval", "-c", "../../examples/quickstart/pubgate.yaml", "--input", input)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"decision:  DENY", "reason:    role subscriber may not publish", "default allow (", "authz.rego:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, strings.Replace(input, "subscriber", "publisher", 1), "policy", "eval", "-c", "../../examples/quickstart/pubgate.yaml", "--input", "-", "--explain")
	if code != 0 || !strings.Contains(out, "decision:  ALLOW") || !strings.Contains(out, "Enter data.system.pubgate.decision") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestCheckRefusesAPolicyThatDoesNotCompile(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "p.rego", "package pubgate.authz\nallow if x\n")
	code, _, errOut := runCLI(t, "", "check", "-c", writeFile(t, "listen: {plaintext: true}\ntenants: {acme: {}}\npolicy: {paths: ["+dir+"]}\n"))
	if code != 1 || !strings.Contains(errOut, "p.rego:2") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func writeIn(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyPolicies copies the example library (without its tests) to a
// directory the test may edit.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob("../../examples/policies/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") || !(strings.HasSuffix(f, ".rego") || strings.HasSuffix(f, ".yaml")) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeIn(t, dir, filepath.Base(f), string(data))
	}
	return dir
}

const policyE2EConfig = `
listen: {address: "127.0.0.1:0", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
tenants: {acme: {}, globex: {}}
namespace: {shared_prefix: "shared:"}
policy: {paths: ["%s"], watch: %v}
users:
  alice: {tenant: acme, roles: [publisher, subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  reader: {tenant: acme, roles: [subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
`

func startPolicyGateway(t *testing.T, policyDir string, watch bool) testNode {
	t.Helper()
	dataDir := t.TempDir()
	g := localGateway(dataDir)
	return startGatewayWith(t, fmt.Sprintf(policyE2EConfig, dataDir, policyDir, watch), g)
}

// TestPolicyEndToEnd: real clients see NOPERM for what the policy denies
// and nothing else changes; an edit on disk takes effect for new commands
// and revokes a live subscription; a broken edit is refused.
func TestPolicyEndToEnd(t *testing.T) {
	dir := copyPolicies(t)
	g := startPolicyGateway(t, dir, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(user string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: user, Password: "alice-secret", Protocol: 3, TLSConfig: g.tlsConfig(t)})
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, reader := client("alice"), client("reader")

	sub := reader.Subscribe(ctx, "orders")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reader.Publish(ctx, "orders", "x").Err(); err == nil || err.Error() != "NOPERM role subscriber may not publish" {
		t.Fatalf("read-only user PUBLISH: %v", err)
	}
	if n, err := alice.Publish(ctx, "orders", "o-1").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH = %d, %v", n, err)
	}
	if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != "o-1" {
		t.Fatalf("received %+v, %v", m, err)
	}
	cli := testutil.RequireBinary(t, "redis-cli")
	out, _ := exec.Command(cli, "-h", g.host, "-p", strconv.Itoa(g.port), "--tls", "--cacert", g.caFile, "--user", "alice",
		"--pass", "alice-secret", "--no-auth-warning", "PUBLISH", "internal.audit", "x").CombinedOutput()
	if got := strings.TrimSpace(string(out)); got != "NOPERM channel is on the deny list (prefix internal.)" && got != "(error) NOPERM channel is on the deny list (prefix internal.)" {
		t.Fatalf("redis-cli PUBLISH to a denied channel: %q", got)
	}

	// Put "orders" on the deny list: the live subscription is revoked.
	writeIn(t, dir, "data.yaml", "policy_settings:\n  shared_channels: [\"shared:announcements\"]\n  denied_prefixes: [internal., admin., orders]\n")
	msg, err := sub.Receive(ctx)
	if s, ok := msg.(*redis.Subscription); err != nil || !ok || s.Kind != "unsubscribe" || s.Channel != "orders" {
		t.Fatalf("expected the revocation, got %#v, %v", msg, err)
	}
	if err := alice.Publish(ctx, "orders", "o-2").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM channel is on the deny list") {
		t.Fatalf("PUBLISH after the edit: %v", err)
	}

	// A broken module is refused; the policy in effect keeps working.
	writeIn(t, dir, "broken.rego", "package pubgate.authz\nallow if {\n")
	testutil.Eventually(t, "the broken policy is refused", func() bool {
		return strings.Contains(g.logs.String(), "policy reload refused")
	})
	if n, err := alice.Publish(ctx, "events", "e-1").Result(); err != nil || n != 0 {
		t.Fatalf("PUBLISH after a refused reload = %d, %v", n, err)
	}
	if err := alice.Publish(ctx, "orders", "o-3").Err(); err == nil {
		t.Fatal("the refused policy replaced the one in effect")
	}
}

// TestSIGHUPReloadsThePolicy without a file watcher.
func TestSIGHUPReloadsThePolicy(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "p.rego", "package pubgate.authz\nallow := true\n")
	g := startPolicyGateway(t, dir, false)
	c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "alice", Password: "alice-secret", TLSConfig: g.tlsConfig(t)})
	defer c.Close()
	ctx := context.Background()
	if err := c.Publish(ctx, "x", "1").Err(); err != nil {
		t.Fatal(err)
	}
	writeIn(t, dir, "p.rego", "package pubgate.authz\nallow := false\nreason := \"closed for maintenance\"\n")
	g.reload()
	testutil.Eventually(t, "the reload", func() bool {
		err := c.Publish(ctx, "x", "2").Err()
		var rerr redis.Error
		return errors.As(err, &rerr) && err.Error() == "NOPERM closed for maintenance"
	})
}
