package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pubgate/pubgate/internal/testutil"
)

// proxiedNodeConfig is a pubgate node behind HAProxy: client addresses
// come from PROXY protocol v2 headers sent from 127.0.0.1; the policy
// (addressPolicy) refuses clients from 127.0.0.9, so that the test sees
// the address reach it; every login is audited.
const proxiedNodeConfig = `
listen:
  address: "127.0.0.1:0"
  drain_period: 0s
  tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}
  proxy_protocol: {trusted: [127.0.0.1/32]}
tenants: {acme: {}}
policy: {paths: ["%[1]s/policy.rego"]}
users:
  alice: {tenant: acme, roles: [publisher, subscriber], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
audit: {sink: file, path: "%[1]s/audit/audit.log", key_file: "%[1]s/audit.key", fsync_interval: 10ms}
`

const addressPolicy = `package pubgate.authz

default allow := false

# Decisions depend on the client's address, which is not in the cache key.
cache := false

blocked if startswith(input.client.addr, "127.0.0.9:")

allow if not blocked

reason := "clients from 127.0.0.9 are blocked" if blocked
`

// haproxyConfig balances TLS connections (TCP mode: pubgate terminates
// TLS) over two nodes, telling each the client's address (send-proxy-v2).
const haproxyConfig = `
global
  maxconn 256
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend clients
  bind 127.0.0.1:%d
  default_backend pubgate
backend pubgate
  balance roundrobin
  server node1 %s send-proxy-v2
  server node2 %s send-proxy-v2
`

// TestBehindHAProxy: two pubgate nodes behind a real HAProxy in TCP mode
// with send-proxy-v2. Each node's audit log and policy see the client's
// own address, not HAProxy's; a client cannot claim an address by sending
// a header itself, and a trusted peer must send one.
func TestBehindHAProxy(t *testing.T) {
	haproxy := testutil.RequireBinary(t, "haproxy")
	var nodes [2]testNode
	var dirs [2]string
	for i := range nodes {
		dirs[i] = t.TempDir()
		writeIn(t, dirs[i], "audit.key", strings.Repeat("k", 40)+"\n")
		writeIn(t, dirs[i], "policy.rego", addressPolicy)
		nodes[i] = startGatewayWith(t, fmt.Sprintf(proxiedNodeConfig, dirs[i]), localGateway(dirs[i]))
	}
	front := startHAProxy(t, haproxy, nodes[0].addr(), nodes[1].addr())
	tlsConfig := trustingBoth(t, nodes[0], nodes[1])

	// Four clients from 127.0.0.8, which HAProxy spreads over both nodes.
	for range 4 {
		c := dialTLSFrom(t, front, "127.0.0.8", tlsConfig)
		if r := c.Do("AUTH", "alice", "alice-secret"); r != "OK" {
			t.Fatalf("AUTH through HAProxy: %s", r)
		}
		if r := c.Do("CLIENT", "INFO"); !strings.Contains(r, " addr=127.0.0.8:") {
			t.Fatalf("CLIENT INFO through HAProxy: %s", r)
		}
	}
	blocked := dialTLSFrom(t, front, "127.0.0.9", tlsConfig)
	if r := blocked.Do("AUTH", "alice", "alice-secret"); r != "-NOPERM clients from 127.0.0.9 are blocked" {
		t.Fatalf("a client the policy refuses by address: %s", r)
	}

	// Straight to node 1: a header from an untrusted address, and none
	// from the trusted one.
	claims := dialTLSFromWithHeader(t, nodes[0].addr(), "127.0.0.5", "198.51.100.1:4242", tlsConfig)
	if err := claims.Handshake(); err == nil {
		t.Fatal("a client's own PROXY header was accepted")
	}
	bare, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", nodes[0].addr(), tlsConfig)
	if err == nil {
		bare.Close()
		t.Fatal("a trusted peer without a PROXY header was served")
	}

	for _, g := range nodes {
		g.stop() // the audit logs are complete once the nodes stopped
	}
	blockedLogins, logins := 0, [2]int{}
	for i, dir := range dirs {
		for _, e := range readAudit(t, dir) {
			if e.Client == nil {
				continue
			}
			host, _, _ := net.SplitHostPort(e.Client.Addr)
			switch {
			case e.Event == "auth" && host == "127.0.0.8" && e.Outcome == "success":
				logins[i]++
			case e.Event == "auth" && host == "127.0.0.9" && e.Reason == "denied by the policy: clients from 127.0.0.9 are blocked":
				blockedLogins++
			case host == "127.0.0.1" && !(e.Event == "connect" && e.Outcome == "failure"):
				t.Errorf("node %d recorded HAProxy's address: %s", i+1, summary(e))
			}
		}
	}
	if logins[0]+logins[1] != 4 || logins[0] == 0 || logins[1] == 0 {
		t.Errorf("logins from 127.0.0.8 recorded by each node: %v, want 4 spread over both", logins)
	}
	if blockedLogins != 1 {
		t.Errorf("%d refused logins from 127.0.0.9 recorded, want 1", blockedLogins)
	}
	refused := map[string]bool{}
	for _, e := range readAudit(t, dirs[0]) {
		if e.Event == "connect" && e.Outcome == "failure" && e.Client != nil {
			host, _, _ := net.SplitHostPort(e.Client.Addr)
			refused[host+": "+e.Reason] = true
		}
	}
	for _, want := range []string{
		"127.0.0.5: PROXY protocol header from an address not in listen.proxy_protocol.trusted",
		"127.0.0.1: no PROXY protocol header from a trusted load balancer (listen.proxy_protocol.trusted)",
	} {
		if !refused[want] {
			t.Errorf("node 1 did not record %q; refusals: %v", want, refused)
		}
	}
}

// startHAProxy runs haproxy in the foreground on a free port in front of
// the two nodes, and returns its address.
func startHAProxy(t *testing.T, haproxy, node1, node2 string) string {
	t.Helper()
	port := testutil.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, port, node1, node2)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", cfg)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", logs)
		}
	})
	addr := testutil.Addr(port)
	testutil.EventuallyNoError(t, "haproxy listening", func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

// trustingBoth trusts the local CAs of both nodes.
func trustingBoth(t *testing.T, nodes ...testNode) *tls.Config {
	pool := x509.NewCertPool()
	for _, g := range nodes {
		pem, err := os.ReadFile(g.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// dialTLSFrom connects to addr over TLS from a loopback address of 127/8.
func dialTLSFrom(t *testing.T, addr, from string, cfg *tls.Config) *testutil.RESPConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS from %s to %s: %v", from, addr, err)
	}
	return testutil.NewRESPConn(t, c)
}

// dialTLSFromWithHeader connects from a loopback address, sends a PROXY v2
// header claiming client, and returns the TLS client to handshake.
func dialTLSFromWithHeader(t *testing.T, addr, from, client string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	src, _ := net.ResolveTCPAddr("tcp", client)
	if _, err := proxyproto.HeaderProxyFromAddrs(2, src, raw.RemoteAddr()).WriteTo(raw); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	return tls.Client(raw, cfg)
}
