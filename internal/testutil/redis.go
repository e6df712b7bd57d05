package testutil

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisServer is a redis-server process owned by one test, on a free loopback
// port, that the test can stop and start again on the same port.
type RedisServer struct {
	t    testing.TB
	bin  string
	Port int
	dir  string
	args []string
	// conf is a config file given before all options: Sentinel needs one
	// that it can rewrite.
	conf string
	// cluster makes the server a cluster node. Its bus listens on busPort,
	// picked free like Port because port+10000 may be out of range or
	// taken, and its nodes.conf lives in dir so that a restart rejoins.
	cluster bool
	busPort int
	cmd     *exec.Cmd
	exit    chan struct{}
	// TLS is the client configuration for a TLS-only server (StartRedisTLS).
	TLS *tls.Config
}

// StartRedis starts a redis-server with no persistence; extra are further
// "--name value" arguments. The server is stopped when the test ends.
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	return launch(t, &RedisServer{args: extra})
}

// StartRedisTLS starts a redis-server that speaks only TLS, with a
// certificate from serverCA for 127.0.0.1, and requires client certificates
// from clientCA. r.TLS is a client configuration that it accepts.
func StartRedisTLS(t testing.TB, serverCA, clientCA *CA, extra ...string) *RedisServer {
	t.Helper()
	certFile, keyFile := serverCA.Issue(CertSpec{CommonName: "redis", Hosts: []string{"127.0.0.1"}})
	pair := clientCA.IssuePair(CertSpec{CommonName: "pubgate", Client: true})
	cfg := &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1"}
	args := append([]string{"--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", clientCA.CertFile, "--tls-auth-clients", "yes"}, extra...)
	return launch(t, &RedisServer{args: args, TLS: cfg})
}

// launch starts r, set up by the caller (args, TLS, conf, cluster; dir if
// a file must be there first), on free ports, retrying on ports that
// another process took in the meantime. It is stopped when the test ends.
func launch(t testing.TB, r *RedisServer) *RedisServer {
	t.Helper()
	r.t, r.bin = t, RequireBinary(t, "redis-server")
	if r.dir == "" {
		r.dir = t.TempDir()
	}
	for attempt := 0; ; attempt++ {
		r.Port = FreePort(t)
		for r.cluster && (r.busPort == 0 || r.busPort == r.Port) {
			r.busPort = FreePort(t)
		}
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("redis-server: %v", err)
		}
		r.busPort = 0
	}
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port of the server.
func (r *RedisServer) Addr() string { return Addr(r.Port) }

// URL is the redis:// (or, with TLS, rediss://) URL of the server.
func (r *RedisServer) URL() string {
	if r.TLS != nil {
		return "rediss://" + r.Addr() + "/"
	}
	return "redis://" + r.Addr() + "/"
}

// Start starts a stopped server again on the same port. Starting a running
// one fails the test: the new process would replace the tracked one, which
// would then outlive the test.
func (r *RedisServer) Start() {
	r.t.Helper()
	if r.running() {
		r.t.Fatalf("redis-server on port %d is already running", r.Port)
	}
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

func (r *RedisServer) start() error {
	port := []string{"--port", strconv.Itoa(r.Port)}
	if r.TLS != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port)}
	}
	if r.cluster {
		port = append(port, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(r.busPort),
			"--cluster-config-file", r.dir+"/nodes.conf")
	}
	if r.conf != "" {
		port = append([]string{r.conf}, port...)
	}
	args := append(append(port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no",
		"--logfile", r.dir+"/redis.log",
	), r.args...)
	r.cmd = exec.Command(r.bin, args...)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) { _ = cmd.Wait(); close(exit) }(r.cmd, r.exit)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exit:
			log, _ := os.ReadFile(r.dir + "/redis.log")
			return fmt.Errorf("redis-server on port %d exited at start; its log:\n%s", r.Port, log)
		default:
		}
		if r.ours() {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("redis-server on port %d did not answer INFO", r.Port)
}

// ours reports whether the server answering on the port is this process
// (and not another test's that took the port first). A server that requires
// AUTH cannot tell: its NOAUTH answer is taken as ours.
func (r *RedisServer) ours() bool {
	info, err := r.fields("INFO", "server")
	if re, ok := err.(redisError); ok {
		return strings.HasPrefix(string(re), "NOAUTH")
	}
	return err == nil && info["process_id"] == strconv.Itoa(r.cmd.Process.Pid)
}

func (r *RedisServer) dial() (net.Conn, error) {
	if r.TLS != nil {
		return tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr(), r.TLS)
	}
	return net.DialTimeout("tcp", r.Addr(), time.Second)
}

// Stop kills the server and waits for it to exit; it is safe to call twice.
func (r *RedisServer) Stop() {
	if !r.running() {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
}

// Shutdown stops the server the way an operator's restart does (SHUTDOWN
// NOSAVE), and waits for it to exit. Unlike Stop's kill, it cannot cut
// the server off between acknowledging a PUBLISH and writing the message
// to its subscribers: Redis writes both before it runs the next command.
func (r *RedisServer) Shutdown() {
	if !r.running() {
		return
	}
	if _, err := r.do("SHUTDOWN", "NOSAVE"); err == nil {
		r.t.Fatalf("redis-server on port %d answered SHUTDOWN instead of exiting", r.Port)
	}
	<-r.exit
}

// running reports whether the process is started and has not exited.
func (r *RedisServer) running() bool {
	if r.exit == nil {
		return false
	}
	select {
	case <-r.exit:
		return false
	default:
		return true
	}
}
