package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// reloadConfig is edited by the test: %[2]s holds the tenants and users.
const reloadConfig = `
listen: {address: "127.0.0.1:0", drain_period: 0s, tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}}
upstream: {timeout: %[3]s}
audit: {sink: file, path: "%[1]s/audit/audit.log", key_file: "%[1]s/audit.key"}
policy: {watch: false}
%[2]s
`

const (
	aliceHash = "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG" // alice-secret
	bobHash   = "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de" // bob-secret
)

// TestSIGHUPReloadsTheConfiguration: an operator edits the file and sends
// SIGHUP. A tenant and its user are removed (their client is told and
// disconnected), a tenant and a user added (they log in at once), a quota
// lowered (it refuses what comes next); the upstream timeout, which needs
// a restart, is reported as such. A broken edit is refused and changes
// nothing. The audit log records both reloads.
func TestSIGHUPReloadsTheConfiguration(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	before := `tenants: {acme: {}, globex: {}}
users:
  alice: {tenant: acme, password_hash: "` + aliceHash + `"}
  bob: {tenant: globex, password_hash: "` + bobHash + `"}`
	g := startGatewayWith(t, fmt.Sprintf(reloadConfig, dir, before, "5s"), localGateway(dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := g.client(t, "alice").Subscribe(ctx, "orders")
	bob := g.client(t, "bob").Subscribe(ctx, "news")
	for _, ps := range []*redis.PubSub{alice, bob} {
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}

	after := `tenants: {acme: {quotas: {max_subscriptions: 1}}, initech: {}}
users:
  alice: {tenant: acme, password_hash: "` + aliceHash + `"}
  carol: {tenant: initech, password_hash: "` + bobHash + `"}`
	rewriteAndHUP(t, g, fmt.Sprintf(reloadConfig, dir, after, "2s"))
	testutil.Eventually(t, "the reload is logged", func() bool { return strings.Contains(g.logs.String(), "configuration reloaded") })
	if _, err := bob.Receive(ctx); err == nil || err.Error() != "ERR pubgate: tenant globex was removed from the configuration; closing the connection" {
		t.Fatalf("bob's subscriber: %v", err)
	}
	carol := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "carol", Password: "bob-secret", TLSConfig: g.tlsConfig(t)})
	defer carol.Close()
	if err := carol.Publish(ctx, "news", "hello").Err(); err != nil {
		t.Fatalf("the new tenant's user: %v", err)
	}
	err := g.client(t, "alice").Do(ctx, "SUBSCRIBE", "more").Err()
	if err == nil || !strings.Contains(err.Error(), "tenants.acme.quotas.max_subscriptions") {
		t.Fatalf("a second acme subscription under the lowered quota: %v", err)
	}
	if err := g.client(t, "alice").Publish(ctx, "orders", "still here").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := alice.ReceiveMessage(ctx); err != nil || m.Payload != "still here" {
		t.Fatalf("alice's subscription across the reload: %v, %v", m, err)
	}

	rewriteAndHUP(t, g, fmt.Sprintf(reloadConfig, dir, strings.Replace(after, "max_subscriptions: 1", "max_subscriptions: -1", 1), "2s"))
	testutil.Eventually(t, "the refusal is logged", func() bool { return strings.Contains(g.logs.String(), "configuration reload refused") })
	if err := carol.Publish(ctx, "news", "after the refusal").Err(); err != nil {
		t.Fatalf("a refused reload changed the configuration in effect: %v", err)
	}

	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}
	var reloads []string
	for _, e := range readAudit(t, dir) {
		if e.Event == audit.EventConfigReload {
			reloads = append(reloads, string(e.Outcome)+": "+e.Reason)
		}
	}
	want := []string{
		"success: applied: tenants.acme.quotas.max_subscriptions, tenants.globex, tenants.initech, users.bob, users.carol; needs a restart: upstream.timeout",
		"failure: refused: config: " + g.config + ": tenants.acme.quotas.max_subscriptions: must not be negative (0 is unlimited)",
	}
	if strings.Join(reloads, "\n") != strings.Join(want, "\n") {
		t.Fatalf("config_reload records:\n%s\nwant:\n%s", strings.Join(reloads, "\n"), strings.Join(want, "\n"))
	}
}

func rewriteAndHUP(t *testing.T, g testNode, content string) {
	t.Helper()
	if err := os.WriteFile(g.config, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	g.reload()
}

// TestReloadRefusedByThePolicyAppliesNothing: an edit adds a user and
// points the policy at a module that does not compile. The users are
// parsed before the policy is compiled; the policy's refusal leaves them
// as they were too: nothing of the edit is applied, and the audit log says
// why.
func TestReloadRefusedByThePolicyAppliesNothing(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	if err := os.Mkdir(dir+"/broken", 0o700); err != nil {
		t.Fatal(err)
	}
	writeIn(t, dir, "broken/authz.rego", "package pubgate.authz\nallow if {\n")
	users := `tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "` + aliceHash + `"}`
	g := startGatewayWith(t, fmt.Sprintf(reloadConfig, dir, users, "5s"), localGateway(dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	edit := strings.Replace(fmt.Sprintf(reloadConfig, dir, users+`
  carol: {tenant: acme, password_hash: "`+bobHash+`"}`, "5s"),
		"policy: {watch: false}", `policy: {watch: false, paths: ["`+dir+`/broken"]}`, 1)
	rewriteAndHUP(t, g, edit)
	testutil.Eventually(t, "the refusal is logged", func() bool { return strings.Contains(g.logs.String(), "configuration reload refused") })
	carol := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "carol", Password: "bob-secret", TLSConfig: g.tlsConfig(t)})
	defer carol.Close()
	if err := carol.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("the user of a refused reload: %v", err)
	}
	if err := g.client(t, "alice").Publish(ctx, "orders", "x").Err(); err != nil {
		t.Fatalf("alice, under the policy in effect: %v", err)
	}
	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}
	var reasons []string
	for _, e := range readAudit(t, dir) {
		if e.Event == audit.EventConfigReload {
			reasons = append(reasons, string(e.Outcome)+": "+e.Reason)
		}
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "failure: refused: policy") || !strings.Contains(reasons[0], "authz.rego") {
		t.Fatalf("config_reload records: %q", reasons)
	}
}
