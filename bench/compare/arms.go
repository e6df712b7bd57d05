package compare

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pubgate/pubgate/bench"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// arm is one server the comparison measures.
type arm struct {
	name    string
	addr    string
	tls     *tls.Config
	tenants []bench.Tenant
	// storm is W7's user: of acme, with a bcrypt cost 10 hash on pubgate.
	storm bench.Tenant
	// aclAdmin, on the arm with ACL users, may change them (allowNoise);
	// noiseAllowed is how many of globex's noise patterns it allowed.
	aclAdmin     *bench.Tenant
	noiseAllowed int
	proc         *exec.Cmd // whose memory W4 measures, and CPU the rate workloads
	// metrics is the Prometheus endpoint of pubgate's admin listener ("" for
	// the Redis arms), for its client writes per delivered message.
	metrics string
}

// metricsClient scrapes pubgate's metrics; a listener that does not
// answer costs the figure, not the run.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// counters reads the sums of pubgate's client writes and delivered
// messages from its metrics; false if the arm has none, or they cannot be
// read (an older build without the writes counter).
func (a *arm) counters() (writes, delivered float64, ok bool) {
	if a.metrics == "" {
		return 0, 0, false
	}
	resp, err := metricsClient.Get(a.metrics)
	if err != nil {
		return 0, 0, false
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, false
	}
	writes, okW := sumMetric(string(body), "pubgate_client_writes_total")
	delivered, okD := sumMetric(string(body), "pubgate_delivered_messages_total")
	return writes, delivered, okW && okD
}

// sumMetric adds up the samples of a metric (every label set) in the
// Prometheus text format.
func sumMetric(text, name string) (sum float64, found bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// cpu is the CPU time (user + system, all threads) the arm's process used
// so far, from /proc/<pid>/stat; false if it cannot be read (not Linux).
func (a *arm) cpu() (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.proc.Process.Pid))
	if err != nil {
		return 0, false
	}
	return parseProcStatCPU(string(data), clockTicks())
}

// parseProcStatCPU reads utime + stime (fields 14 and 15, in clock ticks)
// from the text of /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses, so fields are counted
// from its last ')'.
func parseProcStatCPU(stat string, ticksPerSecond int64) (time.Duration, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || ticksPerSecond <= 0 {
		return 0, false
	}
	fields := strings.Fields(stat[i+1:]) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	ticks := utime + stime
	return time.Duration(ticks/ticksPerSecond)*time.Second + time.Duration(ticks%ticksPerSecond)*time.Second/time.Duration(ticksPerSecond), true
}

// clockTicks is sysconf(_SC_CLK_TCK), the unit of /proc/<pid>/stat's
// times. Without cgo there is no sysconf: the C library takes it from the
// kernel's auxiliary vector (AT_CLKTCK), and so does this, from
// /proc/self/auxv; 100 (what Linux reports on every architecture) if that
// cannot be read.
var clockTicks = sync.OnceValue(func() int64 {
	const atNull, atClkTck = 0, 17
	data, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	word := strconv.IntSize / 8
	for len(data) >= 2*word {
		key, val := auxvWord(data[:word]), auxvWord(data[word:2*word])
		data = data[2*word:]
		switch key {
		case atNull:
			return 100
		case atClkTck:
			if val > 0 {
				return int64(val)
			}
			return 100
		}
	}
	return 100
})

// auxvWord is one native word of the auxiliary vector.
func auxvWord(b []byte) uint64 {
	if len(b) == 8 {
		return binary.NativeEndian.Uint64(b)
	}
	return uint64(binary.NativeEndian.Uint32(b))
}

// rss is the arm's resident memory in bytes (0 if unknown).
func (a *arm) rss() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.proc.Process.Pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }() // only read
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// aclAdmin is the Redis ACL user that may add ACL users' channels (W8).
var aclAdmin = bench.Tenant{User: "bench-admin", Password: "bench-admin-secret"}

// W7's user and password on the arms that log in.
const stormUser, stormPassword = "storm", "storm-secret"

// listenBacklog is the Redis arms' tcp-backlog, as large as the one Go's
// listener takes (the kernel's somaxconn, 4096 here), so that W7's storm
// of connections meets the same queue on every arm.
const listenBacklog = 4096

// compareTenants are the two tenants every arm serves. Their channels carry
// the tenant's prefix: Redis arms see full names, pubgate adds it itself.
var compareTenants = []string{"acme", "globex"}

// startArms starts redis, redis-tls and pubgate on free loopback ports,
// sharing one certificate from a local CA. stop ends them all.
func startArms(ctx context.Context, o Options, dir string, logs io.Writer) (arms []*arm, stop func(), err error) {
	var procs []*exec.Cmd
	stop = func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}
	certs, err := localCertificates(filepath.Join(dir, "ca"))
	if err != nil {
		return nil, stop, err
	}
	ports, err := freePorts(4) // redis, redis-tls, pubgate, pubgate's admin
	if err != nil {
		return nil, stop, err
	}
	start := func(name string, cmd *exec.Cmd) error {
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		fmt.Fprintf(logs, "started %s (pid %d), log %s\n", name, cmd.Process.Pid, log.Name())
		return nil
	}

	plain := &arm{name: "redis", addr: addrOf(ports[0])}
	secure := &arm{name: "redis-tls", addr: addrOf(ports[1]), tls: certs.client, aclAdmin: &aclAdmin}
	gate := &arm{name: "pubgate", addr: addrOf(ports[2]), tls: certs.client, metrics: "http://" + addrOf(ports[3]) + "/metrics"}
	for _, t := range compareTenants {
		plain.tenants = append(plain.tenants, bench.Tenant{Prefix: t + ":"})
		secure.tenants = append(secure.tenants, bench.Tenant{User: t, Password: t + "-secret", Prefix: t + ":"})
		gate.tenants = append(gate.tenants, bench.Tenant{User: t, Password: t + "-secret"})
	}
	plain.storm = bench.Tenant{Prefix: "acme:"}
	secure.storm = bench.Tenant{User: stormUser, Password: stormPassword, Prefix: "acme:"}
	gate.storm = bench.Tenant{User: stormUser, Password: stormPassword}

	redisDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(redisDir, 0o755); err != nil {
		return nil, stop, err
	}
	plain.proc = exec.Command(o.RedisServer, "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--maxclients", "20000", "--tcp-backlog", strconv.Itoa(listenBacklog), "--dir", redisDir)
	if err := start("redis", plain.proc); err != nil {
		return nil, stop, err
	}
	conf, err := writeRedisTLSConfig(dir, ports[1], certs)
	if err != nil {
		return nil, stop, err
	}
	secure.proc = exec.Command(o.RedisServer, conf)
	if err := start("redis-tls", secure.proc); err != nil {
		return nil, stop, err
	}
	pubgateConf, err := preparePubgateConfig(o.Pubgate, dir, o, ports[2], ports[3], plain.addr, certs.dir)
	if err != nil {
		return nil, stop, err
	}
	gate.proc = exec.Command(o.Pubgate, "serve", "--config", pubgateConf)
	if err := start("pubgate", gate.proc); err != nil {
		return nil, stop, err
	}
	arms = []*arm{plain, secure, gate}
	for _, a := range arms {
		if err := waitReady(ctx, a); err != nil {
			return nil, stop, err
		}
	}
	return arms, stop, nil
}

// certificates are the local CA's files and a client configuration that
// trusts it.
type certificates struct {
	dir, caFile, certFile, keyFile string
	client                         *tls.Config
}

// localCertificates creates pubgate's local CA and server certificate in
// dir (as `tls: {internal: …}` does): Redis and pubgate serve the same one.
func localCertificates(dir string) (*certificates, error) {
	src, err := ptls.New(ptls.Options{Internal: &ptls.InternalCAOptions{Names: []string{"127.0.0.1", "localhost"}, DataDir: dir}},
		zap.NewNop())
	if err != nil {
		return nil, err
	}
	_ = src.Close()
	c := &certificates{dir: dir, caFile: src.CAFile, certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	pool, err := ptls.LoadCertPool(c.caFile)
	if err != nil {
		return nil, err
	}
	c.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return c, nil
}

// writeRedisTLSConfig is Redis with TLS and an ACL user per tenant that
// may use only its channels. Redis checks a PSUBSCRIBE pattern literally
// against the user's channel patterns, so W5's patterns are listed too
// (W8's are added when it runs: see allowNoise). W7's user may subscribe
// to acme's storm channels.
func writeRedisTLSConfig(dir string, port int, c *certificates) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "port 0\ntls-port %d\nbind 127.0.0.1\ntcp-backlog %d\n", port, listenBacklog)
	fmt.Fprintf(&b, "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n", c.certFile, c.keyFile, c.caFile)
	fmt.Fprintf(&b, "save \"\"\nappendonly no\nmaxclients 20000\ndir %s\nuser default off\n", filepath.Join(dir, "redis"))
	for _, t := range compareTenants {
		fmt.Fprintf(&b, "user %s on >%s-secret resetchannels &%s:*", t, t, t)
		for i := range 500 {
			fmt.Fprintf(&b, " &%s:bench:%d:*", t, i)
		}
		b.WriteString(" -@all +@pubsub +ping +auth +hello\n")
	}
	fmt.Fprintf(&b, "user %s on >%s resetchannels &acme:storm:* -@all +@pubsub +ping +auth +hello\n", stormUser, stormPassword)
	fmt.Fprintf(&b, "user %s on >%s allchannels -@all +acl|setuser +ping +auth +hello\n", aclAdmin.User, aclAdmin.Password)
	path := filepath.Join(dir, "redis-tls.conf")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// preparePubgateConfig writes pubgate's configuration and has the arm's
// binary check it. It first lifts globex's quota of patterns for W8's
// neighbour; a build older than that quota rejects the key (and has no
// quota to lift), so it gets the configuration without it.
func preparePubgateConfig(bin, dir string, o Options, port, adminPort int, redisAddr, caDir string) (string, error) {
	tenants := fmt.Sprintf("{acme: {}, globex: {quotas: {max_patterns: %d}}}", neighbourPatterns(o)+1000)
	for {
		path, err := writePubgateConfig(dir, o, port, adminPort, redisAddr, caDir, tenants)
		if err != nil {
			return "", err
		}
		out, err := exec.Command(bin, "check", "--config", path).CombinedOutput()
		switch {
		case err == nil:
			return path, nil
		case strings.Contains(string(out), "max_patterns: unknown key") && strings.Contains(tenants, "max_patterns"):
			tenants = "{acme: {}, globex: {}}"
		default:
			return "", fmt.Errorf("%s check --config %s: %w\n%s", bin, path, err, out)
		}
	}
}

// writePubgateConfig is pubgate with TLS, password logins, the example
// policy and the audit log at level metadata (every action recorded), in
// front of the plain Redis, serving tenants (a YAML map).
func writePubgateConfig(dir string, o Options, port, adminPort int, redisAddr, caDir, tenants string) (string, error) {
	policyDir, err := filepath.Abs(o.PolicyDir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(policyDir, "authz.rego")); err != nil {
		return "", fmt.Errorf("--policy %s: %w (run from the repository, or name the example policy)", o.PolicyDir, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", err
	}
	var users strings.Builder
	for _, t := range compareTenants {
		h, err := hashFor(t+"-secret", o.BcryptCost)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&users, "  %s: {tenant: %s, roles: [publisher, subscriber], password_hash: %q}\n", t, t, h)
	}
	h, err := hashFor(stormPassword, o.StormBcryptCost)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&users, "  %s: {tenant: acme, roles: [subscriber], password_hash: %q}\n", stormUser, h)
	conf := fmt.Sprintf(`listen: {address: "127.0.0.1:%d", drain_period: 0s, tls: {internal: {data_dir: %q, names: [127.0.0.1, localhost]}}}
upstream: {url: "redis://%s/"}
tenants: %s
users:
%spolicy: {paths: [%q], watch: false}
audit: {sink: file, path: %q, key_file: %q, level: metadata}
limits: {max_clients: 20000}
admin: {address: "127.0.0.1:%d"}
log: {level: warn}
`, port, caDir, redisAddr, tenants, users.String(), policyDir, filepath.Join(dir, "audit", "audit.log"), filepath.Join(dir, "audit.key"), adminPort)
	path := filepath.Join(dir, "pubgate.yaml")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// waitReady waits until the arm answers PING as its first tenant.
func waitReady(ctx context.Context, a *arm) error {
	t := a.tenants[0]
	c := redis.NewClient(&redis.Options{Addr: a.addr, TLSConfig: a.tls, Username: t.User, Password: t.Password,
		DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s on %s did not answer: %w", a.name, a.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func addrOf(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
