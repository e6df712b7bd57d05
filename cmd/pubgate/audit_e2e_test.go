package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

const auditE2EConfig = `
listen: {address: "127.0.0.1:0", drain_period: 0s, tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}}
tenants: {acme: {}}
policy: {paths: ["%[2]s"], watch: true}
users:
  alice: {tenant: acme, roles: [publisher, subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  reader: {tenant: acme, roles: [subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
limits: {client_output_buffer: {hard_limit: 256KiB, soft_limit: 128KiB}}
audit:
  sink: file
  path: "%[1]s/audit/audit.log"
  key_file: "%[1]s/audit.key"
  fail_closed: true
  fsync_interval: 20ms
`

// auditGateway starts pubgate with a copy of the example policies (whose
// directory it returns) and a file audit log in dir/audit, keyed by
// dir/audit.key.
func auditGateway(t *testing.T) (g testNode, dir, policies string) {
	t.Helper()
	dir = t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	policies = copyPolicies(t)
	g = localGateway(dir)
	return startGatewayWith(t, fmt.Sprintf(auditE2EConfig, dir, policies), g), dir, policies
}

// readAudit reads every record of the audit files in dir/audit, in chain
// order.
func readAudit(t *testing.T, dir string) []audit.Entry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "audit", "audit*"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []audit.Entry
	err = audit.Query(files, audit.Filter{}, func(_ []byte, e *audit.Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// summary is what the test checks of a record.
func summary(e audit.Entry) string {
	s := string(e.Event)
	for _, f := range []string{string(e.Outcome), e.User, e.Action, e.Channel} {
		if f != "" {
			s += " " + f
		}
	}
	if e.Forced {
		s += " forced"
	}
	return s
}

// TestAuditLogOfARealSession: a session of real clients (a failed login,
// logins, an allowed subscribe, a denied publish, a slow consumer cut off,
// a policy reload that revokes a subscription, shutdown) produces exactly
// the expected records, and the log verifies.
func TestAuditLogOfARealSession(t *testing.T) {
	g, dir, policies := auditGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := testutil.RequireBinary(t, "redis-cli")

	// 1. A wrong password, with redis-cli.
	out, _ := exec.Command(cli, "-h", g.host, "-p", strconv.Itoa(g.port), "--tls", "--cacert", g.caFile,
		"--user", "alice", "--pass", "wrong", "--no-auth-warning", "PING").CombinedOutput()
	if !strings.Contains(string(out), "WRONGPASS") {
		t.Fatalf("redis-cli with a wrong password: %s", out)
	}
	// 2. A read-only user subscribes, and may not publish.
	reader := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "reader", Password: "alice-secret", TLSConfig: g.tlsConfig(t)})
	defer reader.Close()
	sub := reader.Subscribe(ctx, "orders")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reader.Publish(ctx, "orders", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Fatalf("read-only PUBLISH: %v", err)
	}
	// 3. A subscriber that never reads is cut off.
	slow := slowSubscriber(t, g, "bulk")
	alice := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "alice", Password: "alice-secret", TLSConfig: g.tlsConfig(t)})
	defer alice.Close()
	payload := strings.Repeat("x", 256<<10)
	testutil.Eventually(t, "the slow subscriber is cut off", func() bool {
		n, err := alice.Publish(ctx, "bulk", payload).Result()
		return err == nil && n == 0
	})
	slow.Close()
	// 4. The policy puts "orders" on the deny list: the subscription is revoked.
	writeIn(t, policies, "data.yaml",
		"policy_settings:\n  shared_channels: [\"shared:announcements\"]\n  denied_prefixes: [internal., admin., orders]\n")
	if msg, err := sub.Receive(ctx); err != nil || msg.(*redis.Subscription).Kind != "unsubscribe" {
		t.Fatalf("expected the revocation, got %#v, %v", msg, err)
	}
	sub.Close()
	reader.Close()
	alice.Close()
	testutil.Eventually(t, "every client gone", func() bool {
		return strings.Count(auditText(t, dir), `"event":"disconnect"`) == 5
	})
	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}

	entries := readAudit(t, dir)
	byClient := map[int64][]string{}
	var global []string
	for _, e := range entries {
		if e.Client != nil && e.Client.ID != 0 {
			byClient[e.Client.ID] = append(byClient[e.Client.ID], summary(e))
		} else {
			global = append(global, summary(e))
		}
	}
	wantGlobal := []string{"audit_start success", "policy_reload success", "seal success"}
	if strings.Join(global, "\n") != strings.Join(wantGlobal, "\n") {
		t.Errorf("records without a client:\n%s\nwant:\n%s", strings.Join(global, "\n"), strings.Join(wantGlobal, "\n"))
	}
	want := [][]string{
		{"connect success", "auth failure alice", "disconnect"},
		{"connect success", "auth success reader", "authz allow reader subscribe orders",
			"revoke deny reader subscribe orders", "disconnect reader"},
		{"connect success", "auth success reader", "authz deny reader publish orders", "disconnect reader"},
		{"connect success", "auth success alice", "authz allow alice subscribe bulk", "disconnect alice forced"},
		{"connect success", "auth success alice", "disconnect alice"},
	}
	// go-redis opens its connections (one for PUBLISH, one for SUBSCRIBE)
	// in its own order; match by content.
	var got [][]string
	for _, id := range slices.Sorted(maps.Keys(byClient)) {
		got = append(got, byClient[id])
	}
	if !sameSessions(got, want) {
		t.Errorf("records per client:\n%s\nwant:\n%s", dump(got), dump(want))
	}
	for _, e := range entries {
		if e.Event == audit.EventDisconnect && e.Forced && !strings.HasPrefix(e.Reason, "slow consumer") {
			t.Errorf("forced disconnect for %q", e.Reason)
		}
		if e.Event == audit.EventPolicyReload && (e.PolicyRevision == "" || !strings.HasPrefix(e.Reason, "replaces revision ")) {
			t.Errorf("policy reload record %+v", e)
		}
	}

	var stdout, stderr bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(dir, "audit", "audit*"))
	args := append([]string{"audit", "verify", "--key-file", filepath.Join(dir, "audit.key")}, files...)
	if code := run(context.Background(), args, nil, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "ok: ") {
		t.Fatalf("verify exited %d: %s%s", code, stdout.String(), stderr.String())
	}
}

func auditText(t *testing.T, dir string) string {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "audit", "audit.log"))
	return string(data)
}

// slowSubscriber subscribes over TLS with a tiny receive buffer and never
// reads again.
func slowSubscriber(t *testing.T, g testNode, channel string) net.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(4096)
	conn := tls.Client(raw, g.tlsConfig(t))
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "AUTH alice alice-secret\r\nSUBSCRIBE %s\r\n", channel)
	buf := make([]byte, 64)
	var got []byte
	for !bytes.Contains(got, []byte(channel)) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	return conn
}

// sameSessions compares two lists of sessions' records, ignoring the
// order of the sessions.
func sameSessions(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && strings.Join(g, "\n") == strings.Join(w, "\n") {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func dump(sessions [][]string) string {
	var b strings.Builder
	for _, s := range sessions {
		b.WriteString("  [" + strings.Join(s, " | ") + "]\n")
	}
	return b.String()
}

// TestAuditFailClosed: when the audit file cannot be written (here, the
// path is swapped for /dev/full, a disk that is always full), new
// subscriptions are refused with a clear error; once it can be written
// again, service resumes; every subscription that was allowed is in the
// log, which verifies across the old file and the new one.
func TestAuditFailClosed(t *testing.T) {
	g, dir, _ := auditGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "alice", Password: "alice-secret", TLSConfig: g.tlsConfig(t), MaxRetries: -1})
	defer c.Close()
	sub := c.Subscribe(ctx)
	defer sub.Close()
	allowed := map[string]bool{}
	subscribe := func(ch string) error {
		err := sub.Subscribe(ctx, ch)
		if err == nil {
			_, err = sub.Receive(ctx)
		}
		if err == nil {
			allowed[ch] = true
		}
		return err
	}
	if err := subscribe("before"); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "audit", "audit.log")
	if err := os.Link(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil { // atomically: pubgate never sees no file
		t.Fatal(err)
	}
	var refusal error
	for i := 0; refusal == nil; i++ {
		if i == 1000 {
			t.Fatal("subscriptions still allowed with the audit file unwritable")
		}
		refusal = subscribe(fmt.Sprintf("during-%d", i))
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(refusal.Error(), "audit log cannot be written") {
		t.Fatalf("refusal: %v", refusal)
	}
	testutil.Eventually(t, "the operational log says so", func() bool {
		return strings.Contains(g.logs.String(), "cannot write the audit log")
	})

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "service resumes", func() bool { return subscribe("after") == nil })
	if code := g.stop(); code != 0 {
		t.Fatalf("pubgate exited %d", code)
	}

	recorded := map[string]bool{}
	for _, e := range readAudit(t, dir) {
		if e.Event == audit.EventAuthz && e.Outcome == audit.Allow {
			recorded[e.Channel] = true
		}
	}
	for ch := range allowed {
		if !recorded[ch] {
			t.Errorf("subscription to %q was allowed but not recorded", ch)
		}
	}
	for ch := range recorded {
		if !allowed[ch] {
			t.Errorf("%q recorded as allowed but the client was refused", ch)
		}
	}
	key := filepath.Join(dir, "audit.key")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "verify", "--key-file", key, path + ".old", path}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("verify exited %d: %s%s", code, stdout.String(), stderr.String())
	}
}
