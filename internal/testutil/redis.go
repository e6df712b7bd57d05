package testutil

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
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
	cmd  *exec.Cmd
	exit chan struct{}
	// TLS is the client configuration for a TLS-only server (StartRedisTLS).
	TLS *tls.Config
}

// StartRedis starts a redis-server with no persistence; extra are further
// "--name value" arguments. The server is stopped when the test ends.
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	return startRedis(t, nil, extra)
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
	return startRedis(t, cfg, args)
}

func startRedis(t testing.TB, tlsConfig *tls.Config, extra []string) *RedisServer {
	t.Helper()
	r := &RedisServer{t: t, bin: RequireBinary(t, "redis-server"), dir: t.TempDir(), args: extra, TLS: tlsConfig}
	for attempt := 0; ; attempt++ {
		r.Port = FreePort(t)
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("redis-server: %v", err)
		}
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

// Start starts a stopped server again on the same port.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

func (r *RedisServer) start() error {
	port := []string{"--port", strconv.Itoa(r.Port)}
	if r.TLS != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port)}
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
	info, err := r.command("INFO server")
	if err != nil {
		return false
	}
	if strings.HasPrefix(info, "-NOAUTH") {
		return true
	}
	return strings.Contains(info, "process_id:"+strconv.Itoa(r.cmd.Process.Pid)+"\r\n")
}

// command sends one inline command on a fresh connection and returns the
// raw reply (a bulk reply's content included).
func (r *RedisServer) command(cmd string) (string, error) {
	c, err := r.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "$") {
		return line, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	body := make([]byte, n+2)
	_, err = io.ReadFull(rd, body)
	return string(body), err
}

func (r *RedisServer) dial() (net.Conn, error) {
	if r.TLS != nil {
		return tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.Addr(), r.TLS)
	}
	return net.DialTimeout("tcp", r.Addr(), time.Second)
}

// Stop kills the server and waits for it to exit; it is safe to call twice.
func (r *RedisServer) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exit:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
}
