package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/redis/go-redis/v9"
)

const shutdownConfig = `
listen: {address: "127.0.0.1:0", drain_period: 3s, shutdown_timeout: 10s, tls: {internal: {data_dir: "%[1]s", names: [127.0.0.1]}}}
upstream: {url: "%[2]s", health_interval: 100ms}
tenants: {acme: {}}
users:
  alice: {tenant: acme, password_hash: "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"}
audit: {sink: file, path: "%[1]s/audit/audit.log", key_file: "%[1]s/audit.key"}
admin: {address: "127.0.0.1:0"}
`

// TestSIGTERMDrainsWithoutLosingAcknowledgedMessages is a rolling restart
// of one pubgate process under traffic. On SIGTERM it refuses new clients
// and reports draining on /readyz, yet keeps serving its clients for the
// drain period; then every message a publisher saw acknowledged reaches
// every subscriber before the connections close, the audit log is sealed,
// and pubgate exits 0.
func TestSIGTERMDrainsWithoutLosingAcknowledgedMessages(t *testing.T) {
	dir := t.TempDir()
	writeIn(t, dir, "audit.key", strings.Repeat("k", 40)+"\n")
	g, proc := startGatewayProcess(t, fmt.Sprintf(shutdownConfig, dir, testutil.StartRedis(t).URL()), localGateway(dir))
	admin := "http://" + g.adminAddr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	subs := make([]*orderedSubscriber, 3)
	for i := range subs {
		subs[i] = newOrderedSubscriber(ctx, t, g.client(t, "alice"))
	}
	pub := testutil.StartCountingPublisher(ctx, g.client(t, "alice"), "orders")
	testutil.Eventually(t, "publishes acknowledged", func() bool { return pub.Acked() >= 300 })

	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "readiness reports draining", func() bool {
		code, body := httpGet(t, admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	if v, _ := scrapeMetrics(t, admin).value("pubgate_draining"); v != 1 {
		t.Errorf("pubgate_draining = %v while draining", v)
	}
	testutil.Eventually(t, "new clients refused", func() bool {
		c, err := net.Dial("tcp", g.addr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	during := pub.Acked()
	testutil.Eventually(t, "connected clients still served while draining", func() bool { return pub.Acked() > during })

	if err := proc.Wait(); err != nil {
		t.Fatalf("pubgate did not exit 0: %v; log:\n%s", err, g.logs)
	}
	if readFile(t, g.portsFile) != "" {
		t.Error("the ports file outlives pubgate")
	}
	<-pub.Done()
	acked := pub.Acked()
	t.Logf("%d publishes acknowledged before the connections closed", acked)
	for i, sub := range subs {
		<-sub.done
		if sub.err != nil {
			t.Errorf("subscriber %d: %v", i, sub.err)
		}
		if sub.received < acked {
			t.Errorf("subscriber %d received %d messages; %d were acknowledged", i, sub.received, acked)
		}
	}
	if code, out, errOut := runCLI(t, "", "audit", "verify", "--key-file", filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit", "audit.log")); code != 0 {
		t.Fatalf("audit verify: %d\n%s%s", code, out, errOut)
	}
	if n := strings.Count(readFile(t, filepath.Join(dir, "audit", "audit.log")), `"reason":"server shutting down","forced":true`); n != 4 {
		t.Errorf("%d forced disconnects recorded, want 4 (3 subscribers, 1 publisher)", n)
	}
}

// orderedSubscriber receives "orders" until its connection ends, checking
// that the messages are 0, 1, 2…
type orderedSubscriber struct {
	received int
	err      error // a message out of order
	done     chan struct{}
}

func newOrderedSubscriber(ctx context.Context, t *testing.T, c *redis.Client) *orderedSubscriber {
	t.Helper()
	ps := c.Subscribe(ctx, "orders")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	s := &orderedSubscriber{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			if m.Payload != strconv.Itoa(s.received) {
				s.err = fmt.Errorf("message %d is %q", s.received, m.Payload)
				return
			}
			s.received++
		}
	}()
	return s
}

// startGatewayProcess runs `pubgate serve` as a process of its own (the
// test binary as pubgate, see TestMain), so that it can be sent signals,
// and reads its addresses from its --ports-file. The process is killed if
// the test leaves it running.
func startGatewayProcess(t *testing.T, config string, g testNode) (testNode, *exec.Cmd) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	g.portsFile = filepath.Join(t.TempDir(), "ports.json")
	cmd := exec.Command(self, "serve", "--config", writeFile(t, config), "--ports-file", g.portsFile)
	g.logs = &syncBuffer{}
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("pubgate's log:\n%s", g.logs)
		}
	})
	var ports listening
	testutil.Eventually(t, "pubgate listening", func() bool {
		data := readFile(t, g.portsFile)
		return data != "" && json.Unmarshal([]byte(data), &ports) == nil
	})
	_, port, _ := net.SplitHostPort(ports.Client)
	g.port, _ = strconv.Atoi(port)
	g.adminAddr = ports.Admin
	return g, cmd
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}
