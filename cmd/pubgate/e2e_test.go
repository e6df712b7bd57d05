package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
	"github.com/pubgate/pubgate/internal/testutil"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/redis/go-redis/v9"
)

// Cost-4 hashes of alice-secret and bob-secret keep logins fast in tests.
// TLS comes from pubgate's local CA, kept in the test's directory.
const e2eConfig = `
listen: {address: "%s", tls: {internal: {data_dir: "%s", names: [127.0.0.1]}}}
upstream: {url: "%s"}
tenants: {acme: {}, globex: {}}
users:
  alice: {tenant: acme, roles: [publisher], password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
  bob: {tenant: globex, password_hash: "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de"}
`

// testNode is a pubgate node a test started, and how to reach it.
type testNode struct {
	host      string
	port      int
	caFile    string           // the local CA's certificate, for clients to trust
	config    string           // the configuration file
	logs      *syncBuffer      // what pubgate logged so far
	node      *gateway.Gateway // in-process nodes only
	adminAddr string           // nodes in a process of their own, from
	portsFile string           // the --ports-file they write
	hup       chan os.Signal   // the operator's SIGHUP, for in-process nodes
	stop      func() int       // stops pubgate (as SIGTERM does) and returns its exit status
}

// localGateway is a gateway on 127.0.0.1 whose certificate comes from the
// local CA pubgate keeps in dataDir.
func localGateway(dataDir string) testNode {
	return testNode{host: "127.0.0.1", caFile: filepath.Join(dataDir, "ca.crt")}
}

// tlsConfig is a client configuration trusting the gateway's CA.
func (g testNode) tlsConfig(t *testing.T) *tls.Config {
	pool, err := ptls.LoadCertPool(g.caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: g.host}
}

func (g testNode) addr() string { return net.JoinHostPort(g.host, strconv.Itoa(g.port)) }

// startGateway runs `pubgate serve` in-process on a free port and stops it,
// checking for a clean exit, when the test ends.
func startGateway(t *testing.T, upstreamURL string) testNode {
	t.Helper()
	dataDir := t.TempDir()
	g := localGateway(dataDir)
	return startGatewayWith(t, fmt.Sprintf(e2eConfig, "127.0.0.1:0", dataDir, upstreamURL), g)
}

// startGatewayWith serves the given configuration, which listens on
// 127.0.0.1:0, in-process as `pubgate serve` does, with a SIGHUP channel
// of the test's own; the returned node has the port it got.
func startGatewayWith(t *testing.T, config string, g testNode) testNode {
	t.Helper()
	if !strings.Contains(config, "127.0.0.1:0") {
		t.Fatal("gateway configurations listen on 127.0.0.1:0")
	}
	g.config = writeFile(t, config)
	cfg, err := loadChecked(t, g.config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.logs, g.hup = &syncBuffer{}, make(chan os.Signal, 1)
	started, exited := make(chan *gateway.Gateway, 1), make(chan error, 1)
	go func() {
		exited <- serve(ctx, cfg, serveOptions{path: g.config, stdout: io.Discard, stderr: g.logs, reload: g.hup,
			started: func(n *gateway.Gateway) { started <- n }})
	}()
	select {
	case g.node = <-started:
	case err := <-exited:
		cancel()
		t.Fatalf("pubgate exited before listening: %v; log:\n%s", err, g.logs)
	}
	g.port = g.node.Addr().(*net.TCPAddr).Port
	code := -1
	g.stop = func() int {
		if code < 0 {
			cancel()
			if err := <-exited; err != nil {
				t.Logf("pubgate: %v", err)
				code = 1
			} else {
				code = 0
			}
		}
		return code
	}
	t.Cleanup(func() {
		if code := g.stop(); code != 0 || t.Failed() {
			t.Logf("pubgate exited %d; log:\n%s", code, g.logs)
			if code != 0 {
				t.Fail()
			}
		}
	})
	return g
}

// loadChecked loads a configuration as serve does, after making sure that
// `pubgate check` accepts it: check must never refuse what serve runs.
func loadChecked(t *testing.T, path string) (*config.Config, error) {
	t.Helper()
	if code, _, stderr := runCLI(t, "", "check", "--config", path); code != 0 {
		t.Fatalf("pubgate check refuses a configuration the test serves: %s", stderr)
	}
	return config.Load(path)
}

// reload has the node read its configuration file again, as SIGHUP does.
func (g testNode) reload() { g.hup <- syscall.SIGHUP }

// onEngines runs a scenario against pubgate on its embedded engine and on a
// real redis-server.
func onEngines(t *testing.T, scenario func(t *testing.T, g testNode)) {
	t.Run("memory", func(t *testing.T) { scenario(t, startGateway(t, "memory://")) })
	t.Run("redis", func(t *testing.T) { scenario(t, startGateway(t, testutil.StartRedis(t).URL())) })
}

func TestGoRedisClient(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			onEngines(t, func(t *testing.T, g testNode) { goRedisScenario(t, g, proto) })
		})
	}
}

func goRedisScenario(t *testing.T, g testNode, proto int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(user string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: g.addr(), Username: user, Password: user + "-secret", Protocol: proto, TLSConfig: g.tlsConfig(t)})
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := client("alice"), client("bob")

	sub := alice.Subscribe(ctx, "orders")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	if err := sub.PSubscribe(ctx, "orders.*"); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	spy := bob.PSubscribe(ctx, "*") // another tenant, listening to everything
	defer spy.Close()
	if _, err := spy.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	if n, err := alice.Publish(ctx, "orders", "hello").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH orders = %d, %v", n, err)
	}
	if n, err := alice.Publish(ctx, "orders.created", "o-1").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH orders.created = %d, %v", n, err)
	}
	for _, want := range []redis.Message{
		{Channel: "orders", Payload: "hello"},
		{Channel: "orders.created", Pattern: "orders.*", Payload: "o-1"},
	} {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Channel != want.Channel || m.Pattern != want.Pattern || m.Payload != want.Payload {
			t.Fatalf("received %+v, %v; want %+v", m, err, want)
		}
	}
	if counts, err := alice.PubSubNumSub(ctx, "orders").Result(); err != nil || counts["orders"] != 1 {
		t.Fatalf("NUMSUB = %v, %v", counts, err)
	}
	if chans, err := bob.PubSubChannels(ctx, "*").Result(); err != nil || len(chans) != 0 {
		t.Fatalf("globex sees channels %q, %v", chans, err)
	}
	if err := sub.Unsubscribe(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "unsubscribed", func() bool {
		n, err := alice.Publish(ctx, "orders", "gone").Result()
		return err == nil && n == 0
	})
	// globex's own traffic reaches globex's spy; acme's never did.
	if err := bob.Publish(ctx, "orders", "globex-only").Err(); err != nil {
		t.Fatal(err)
	}
	m, err := spy.ReceiveMessage(ctx)
	if err != nil || m.Channel != "orders" || m.Payload != "globex-only" {
		t.Fatalf("globex spy received %+v, %v; acme's messages must never reach it", m, err)
	}
}

func TestRedisCLI(t *testing.T) {
	cli := testutil.RequireBinary(t, "redis-cli")
	for _, proto := range []string{"-2", "-3"} {
		t.Run(proto, func(t *testing.T) {
			onEngines(t, func(t *testing.T, g testNode) {
				args := func(user string, extra ...string) []string {
					return append([]string{"-h", g.host, "-p", strconv.Itoa(g.port), "--tls", "--cacert", g.caFile, "--user", user,
						"--pass", user + "-secret", "--no-auth-warning", proto}, extra...)
				}
				sub := exec.Command(cli, args("alice", "SUBSCRIBE", "orders")...)
				lines := startLines(t, sub)
				expectLines(t, lines, "subscribe", "orders", "1")
				out, err := exec.Command(cli, args("alice", "PUBLISH", "orders", "hello")...).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "1" {
					t.Fatalf("redis-cli PUBLISH: %q, %v", out, err)
				}
				expectLines(t, lines, "message", "orders", "hello")
				out, _ = exec.Command(cli, args("bob", "PUBLISH", "orders", "other tenant")...).CombinedOutput()
				if strings.TrimSpace(string(out)) != "0" {
					t.Fatalf("globex PUBLISH orders reached acme's subscriber: %q", out)
				}
				out, _ = exec.Command(cli, args("alice", "GET", "k")...).CombinedOutput()
				if !strings.Contains(string(out), "pubgate is a pub/sub proxy") {
					t.Fatalf("GET answered %q", out)
				}
			})
		})
	}
}

// requirePython needs Debian's python3-redis, which installs for the system
// interpreter.
func requirePython(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import redis").Run(); err != nil {
		if testutil.InCI() {
			t.Fatalf("redis-py missing (apt-get install python3-redis): %v", err)
		}
		t.Skip("redis-py missing: apt-get install python3-redis")
	}
}

// requireIORedis needs node and the example's packages; it returns node.
func requireIORedis(t *testing.T) string {
	t.Helper()
	node := testutil.RequireBinary(t, "node")
	if _, err := os.Stat("../../examples/clients/node/node_modules/ioredis"); err != nil {
		if testutil.InCI() {
			t.Fatalf("ioredis missing (npm ci --prefix examples/clients/node): %v", err)
		}
		t.Skip("ioredis missing: npm ci --prefix examples/clients/node")
	}
	return node
}

func TestRedisPy(t *testing.T) {
	requirePython(t)
	onEngines(t, func(t *testing.T, g testNode) {
		runClient(t, exec.Command("/usr/bin/python3", "../../examples/clients/python/pubsub.py", g.host, strconv.Itoa(g.port), "alice", "alice-secret", g.caFile))
	})
}

func TestIORedis(t *testing.T) {
	node := requireIORedis(t)
	onEngines(t, func(t *testing.T, g testNode) {
		runClient(t, exec.Command(node, "../../examples/clients/node/pubsub.js", g.host, strconv.Itoa(g.port), "alice", "alice-secret", g.caFile))
	})
}

// runClient runs an example client program, which prints "ok" on success.
func runClient(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

// startLines starts a long-running client and streams its output lines.
func startLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

func expectLines(t *testing.T, lines <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got, ok := <-lines:
			if !ok || got != w {
				t.Fatalf("got line %q (open %v), want %q", got, ok, w)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no line %q", w)
		}
	}
}

// syncBuffer collects a node's log from its goroutines.
type syncBuffer = testutil.SyncBuffer

// TestMutualTLS: services prove who they are with a SPIFFE client
// certificate; redis-cli and go-redis need no AUTH, and a client without a
// certificate from the client CA cannot connect.
func TestMutualTLS(t *testing.T) {
	cli := testutil.RequireBinary(t, "redis-cli")
	serverCA, clientCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA")
	certFile, keyFile := serverCA.Issue(testutil.CertSpec{CommonName: "pubgate", Hosts: []string{"127.0.0.1"}})
	cfg := fmt.Sprintf(`
listen:
  address: 127.0.0.1:0
  tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: require}
auth:
  certificates: {uri_template: "spiffe://example.org/tenant/{tenant}/svc/{user}", login: certificate}
tenants: {acme: {}, globex: {}}
users:
  alice: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
`, certFile, keyFile, clientCA.CertFile)
	g := startGatewayWith(t, cfg, testNode{host: "127.0.0.1", caFile: serverCA.CertFile})

	subCert, subKey := clientCA.Issue(testutil.CertSpec{CommonName: "orders", URIs: []string{"spiffe://example.org/tenant/acme/svc/orders"}, Client: true})
	sub := exec.Command(cli, "-h", g.host, "-p", strconv.Itoa(g.port), "--tls", "--cacert", g.caFile,
		"--cert", subCert, "--key", subKey, "SUBSCRIBE", "orders")
	lines := startLines(t, sub)
	expectLines(t, lines, "subscribe", "orders", "1")

	tlsCfg := g.tlsConfig(t)
	tlsCfg.Certificates = []tls.Certificate{clientCA.IssuePair(testutil.CertSpec{CommonName: "billing", URIs: []string{"spiffe://example.org/tenant/acme/svc/billing"}, Client: true})}
	pub := redis.NewClient(&redis.Options{Addr: g.addr(), TLSConfig: tlsCfg})
	defer pub.Close()
	if n, err := pub.Publish(context.Background(), "orders", "via mTLS").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH with a client certificate = %d, %v", n, err)
	}
	expectLines(t, lines, "message", "orders", "via mTLS")

	out, err := exec.Command(cli, "-h", g.host, "-p", strconv.Itoa(g.port), "--tls", "--cacert", g.caFile, "PING").CombinedOutput()
	if err == nil && strings.Contains(string(out), "PONG") {
		t.Fatalf("a client without a certificate was served: %q", out)
	}

	// redis-py and ioredis present an acme certificate and AUTH as alice
	// (of the certificate's tenant), as the example programs do; they count
	// the subscribers of "orders", so the redis-cli one leaves first.
	_ = sub.Process.Kill()
	testutil.Eventually(t, "redis-cli subscriber gone", func() bool {
		n, err := pub.PubSubNumSub(context.Background(), "orders").Result()
		return err == nil && n["orders"] == 0
	})
	appCert, appKey := clientCA.Issue(testutil.CertSpec{CommonName: "app", URIs: []string{"spiffe://example.org/tenant/acme/svc/app"}, Client: true})
	port := strconv.Itoa(g.port)
	t.Run("redis-py", func(t *testing.T) {
		requirePython(t)
		runClient(t, exec.Command("/usr/bin/python3", "../../examples/clients/python/pubsub.py", g.host, port, "alice", "alice-secret", g.caFile, appCert, appKey))
	})
	t.Run("ioredis", func(t *testing.T) {
		node := requireIORedis(t)
		runClient(t, exec.Command(node, "../../examples/clients/node/pubsub.js", g.host, port, "alice", "alice-secret", g.caFile, appCert, appKey))
	})
}

// TestUpstreamTLSAndACL: pubgate runs against a Redis that speaks only TLS,
// requires a client certificate, and knows only an ACL user.
func TestUpstreamTLSAndACL(t *testing.T) {
	redisCA, clientCA := testutil.NewCA(t, "redis CA"), testutil.NewCA(t, "pubgate client CA")
	srv := testutil.StartRedisTLS(t, redisCA, clientCA,
		"--user", "default", "off", "--user", "gate", "on", ">gate-secret", "~*", "&*", "+@all")
	clientCert, clientKey := clientCA.Issue(testutil.CertSpec{CommonName: "pubgate", Client: true})
	dataDir := t.TempDir()
	g := localGateway(dataDir)
	cfg := fmt.Sprintf(e2eConfig, "127.0.0.1:0", dataDir, "rediss://gate:gate-secret@"+srv.Addr()+"/")
	upstreamTLS := fmt.Sprintf("upstream: {tls: {ca_file: %q, cert_file: %q, key_file: %q}, ", redisCA.CertFile, clientCert, clientKey)
	cfg = strings.Replace(cfg, "upstream: {", upstreamTLS, 1)
	g = startGatewayWith(t, cfg, g)
	goRedisScenario(t, g, 3)
}

// TestJWTLogin: a service logs in with a token from the company's identity
// provider (here a key set on disk) and lands in the token's tenant.
func TestJWTLogin(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgES256}})
	if err != nil {
		t.Fatal(err)
	}
	set := jwkset.NewMemoryStorage()
	_ = set.KeyWrite(context.Background(), jwk)
	raw, err := set.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := writeFile(t, string(raw))
	dataDir := t.TempDir()
	g := localGateway(dataDir)
	cfg := fmt.Sprintf(e2eConfig, "127.0.0.1:0", dataDir, "memory://") + fmt.Sprintf(`auth:
  jwt: {jwks_file: %q, issuer: "https://idp.example", audience: pubgate, algorithms: [ES256]}
`, jwksFile)
	g = startGatewayWith(t, cfg, g)

	token := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.example", "aud": "pubgate", "sub": "orders-svc", "tenant": "globex",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	token.Header["kid"] = "k1"
	signed, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "orders-svc", Password: signed, TLSConfig: g.tlsConfig(t), Protocol: 3})
	defer svc.Close()
	sub := svc.Subscribe(ctx, "reports")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("subscribe with a JWT: %v", err)
	}
	bob := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "bob", Password: "bob-secret", TLSConfig: g.tlsConfig(t)})
	defer bob.Close()
	if n, err := bob.Publish(ctx, "reports", "to globex").Result(); err != nil || n != 1 {
		t.Fatalf("globex publish reached %d subscribers, %v: the token's tenant is globex", n, err)
	}
	forged := redis.NewClient(&redis.Options{Addr: g.addr(), Username: "orders-svc", Password: signed[:len(signed)-4] + "AAAA", TLSConfig: g.tlsConfig(t)})
	defer forged.Close()
	if err := forged.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("forged token: %v", err)
	}
}
