package gateway_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

// nodeConfig is a plaintext node on the embedded engine with an audit log
// in dir; %[2]s adds to it.
const nodeConfig = `
listen: {address: "127.0.0.1:0", plaintext: true, drain_period: 0s}
audit: {sink: file, path: "%[1]s/audit.log", key_file: "%[1]s/audit.key"}
admin: {address: "%[3]s"} # "" for none
tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
%[2]s
`

func parseConfig(t *testing.T, dir, extra, adminAddr string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(nodeConfig, dir, extra, adminAddr)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newNode(t *testing.T, cfg *config.Config) (*gateway.Gateway, *testutil.SyncBuffer) {
	t.Helper()
	var logs testutil.SyncBuffer
	g, err := gateway.New(context.Background(), cfg, gateway.Options{Version: "test", LogOutput: &logs})
	if err != nil {
		t.Fatal(err)
	}
	return g, &logs
}

func auditDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestNodeServesUntilShutdown: a node started through the package serves
// clients on the address it reports, its admin listener says ready, and
// Shutdown leaves a sealed, verifiable audit log and both ports closed.
func TestNodeServesUntilShutdown(t *testing.T) {
	dir := auditDir(t)
	g, logs := newNode(t, parseConfig(t, dir, "", "127.0.0.1:0"))
	if g.Addr() != nil || g.AdminAddr() != nil {
		t.Fatal("addresses before Start")
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	addr, adminAddr := g.Addr().String(), g.AdminAddr().String()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "alice-secret"})
	defer c.Close()
	if err := c.Publish(context.Background(), "orders", "o-1").Err(); err != nil {
		t.Fatal(err)
	}
	if code := httpStatus(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}

	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{addr, adminAddr} {
		if conn, err := net.Dial("tcp", a); err == nil {
			conn.Close()
			t.Errorf("%s still accepts after Shutdown", a)
		}
	}
	rep, err := audit.Verify([]byte(strings.Repeat("k", 40)), []string{filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatalf("audit log after Shutdown: %v\n%s", err, logs)
	}
	if len(rep.Warnings) > 0 {
		t.Fatalf("audit log not sealed: %v", rep.Warnings)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("a second Shutdown: %v", err)
	}
	if err := g.Reload(context.Background(), parseConfig(t, dir, "", "")); !errors.Is(err, gateway.ErrStopped) {
		t.Fatalf("Reload after Shutdown: %v", err)
	}
}

// TestStopAtOnce: a node drained as soon as Start returns (a SIGTERM at
// start-up) closes its port, and reports no serving failure. Zero Options
// are enough to run a node.
func TestStopAtOnce(t *testing.T) {
	dir := auditDir(t)
	for range 20 {
		cfg := parseConfig(t, dir, "log: {level: error}", "")
		g, err := gateway.New(context.Background(), cfg, gateway.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		g.Drain(context.Background())
		conn, dialErr := net.Dial("tcp", g.Addr().String())
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if dialErr == nil {
			conn.Close()
			t.Fatal("the port accepts after Drain")
		}
		select {
		case err := <-g.Failed():
			t.Fatalf("Failed after a stop at start-up: %v", err)
		default:
		}
	}
}

// TestFailedStartReleasesWhatNewBuilt: with the admin address taken, Start
// fails and says why; the client port it had opened is closed again and
// the audit log is sealed.
func TestFailedStartReleasesWhatNewBuilt(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := auditDir(t)
	g, _ := newNode(t, parseConfig(t, dir, "", taken.Addr().String()))
	err = g.Start()
	if err == nil || !strings.Contains(err.Error(), "admin: listen") {
		t.Fatalf("Start with the admin address taken: %v", err)
	}
	if conn, err := net.Dial("tcp", g.Addr().String()); err == nil {
		conn.Close()
		t.Error("the client listener stays open after a failed Start")
	}
	if _, err := audit.Verify([]byte(strings.Repeat("k", 40)), []string{filepath.Join(dir, "audit.log")}); err != nil {
		t.Fatalf("audit log after a failed Start: %v", err)
	}
}

// TestReloadIsAllOrNothing: a configuration that adds a user and names a
// policy that does not compile is refused as a whole; the user stays
// unknown, the refusal is returned and audited; a good one then applies.
func TestReloadIsAllOrNothing(t *testing.T) {
	dir := auditDir(t)
	g, _ := newNode(t, parseConfig(t, dir, "", "127.0.0.1:0"))
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Shutdown(context.Background()) }()
	broken := filepath.Join(dir, "broken.rego")
	if err := os.WriteFile(broken, []byte("package pubgate.authz\nallow if {"), 0o600); err != nil {
		t.Fatal(err)
	}
	carol := `  carol: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}`
	next := parseConfig(t, dir, carol, "127.0.0.1:0")
	next.Policy.Paths = []string{broken}
	ctx := context.Background()
	if err := g.Reload(ctx, next); err == nil {
		t.Fatal("a configuration whose policy does not compile was applied")
	}
	login := func() error {
		c := redis.NewClient(&redis.Options{Addr: g.Addr().String(), Username: "carol", Password: "alice-secret", MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	if err := login(); err == nil {
		t.Fatal("carol logs in after a refused reload")
	}
	if err := g.Reload(ctx, parseConfig(t, dir, carol, "127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := login(); err != nil {
		t.Fatalf("carol after the reload: %v", err)
	}
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	err := audit.Query([]string{filepath.Join(dir, "audit.log")}, audit.Filter{}, func(_ []byte, e *audit.Entry) error {
		if e.Event == audit.EventConfigReload {
			reasons = append(reasons, string(e.Outcome))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(reasons, ",") != "failure,success" {
		t.Fatalf("config_reload records: %v", reasons)
	}
}

// TestRefusedReloadKeepsTheTLSMaterial: the listener's client CA file is
// read again on reload, with the rest of the configuration, and taken only
// with it: a reload the policy refuses leaves the previous CA in force.
func TestRefusedReloadKeepsTheTLSMaterial(t *testing.T) {
	dir := auditDir(t)
	serverCA, oldCA, newCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "old client CA"), testutil.NewCA(t, "new client CA")
	certFile, keyFile := serverCA.Issue(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	caFile := writeIn(t, dir, "clients.crt", readFile(t, oldCA.CertFile))
	withTLS := func(cfg *config.Config) *config.Config {
		cfg.Listen.Plaintext = false
		cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile = certFile, keyFile
		cfg.Listen.TLS.ClientCAFile, cfg.Listen.TLS.ClientAuth = caFile, "verify_if_given"
		return cfg
	}
	g, _ := newNode(t, withTLS(parseConfig(t, dir, "", "")))
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Shutdown(context.Background()) }()
	handshake := func(ca *testutil.CA) error {
		cert, key := ca.Issue(testutil.CertSpec{CommonName: "svc", Client: true})
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", g.Addr().String(), &tls.Config{RootCAs: serverCA.Pool(), // sent even if the server names other CAs:
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }})
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict on the certificate comes after the handshake
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
		}
		return err
	}

	if err := handshake(oldCA); err != nil {
		t.Fatalf("the old client CA: %v", err)
	}
	if err := handshake(newCA); err == nil {
		t.Fatal("the new client CA before any reload")
	}
	writeIn(t, dir, "clients.crt", readFile(t, newCA.CertFile))
	broken := writeIn(t, dir, "broken.rego", "package pubgate.authz\nallow if {")
	next := withTLS(parseConfig(t, dir, "", ""))
	next.Policy.Paths = []string{broken}
	if err := g.Reload(context.Background(), next); err == nil {
		t.Fatal("a policy that does not compile was applied")
	}
	if err := handshake(newCA); err == nil {
		t.Fatal("a refused reload put the new client CA in force")
	}
	if err := g.Reload(context.Background(), withTLS(parseConfig(t, dir, "", ""))); err != nil {
		t.Fatal(err)
	}
	if err := handshake(newCA); err != nil {
		t.Fatalf("the new client CA after the reload: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
