package testutil

import (
	"bufio"
	"fmt"
	"net"
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
}

// StartRedis starts a redis-server with no persistence; extra are further
// "--name value" arguments. The server is stopped when the test ends.
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	r := &RedisServer{t: t, bin: RequireBinary(t, "redis-server"), dir: t.TempDir(), args: extra}
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

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/" }

// Start starts a stopped server again on the same port.
func (r *RedisServer) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

func (r *RedisServer) start() error {
	args := append([]string{
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no",
		"--logfile", r.dir + "/redis.log",
	}, r.args...)
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
			return fmt.Errorf("redis-server on port %d exited at start (port taken?)", r.Port)
		default:
		}
		if r.Ping() == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("redis-server on port %d did not answer PING", r.Port)
}

// Ping sends PING on a fresh connection.
func (r *RedisServer) Ping() error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
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
