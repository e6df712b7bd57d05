package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// TestClusterExample runs examples/cluster/run.sh --smoke, as a reader of
// the example would run it (on free ports): three Redis Cluster nodes, two
// pubgate nodes from node1.yaml and node2.yaml, a message published on one
// and received on the other through redis-cli over TLS. Its output is the
// script's own lines and nothing else: an error printed while it stops
// (once, redis-cli's "Server closed the connection") would alarm a reader.
func TestClusterExample(t *testing.T) {
	for _, bin := range []string{"bash", "redis-server", "redis-cli", "curl", "go"} {
		testutil.RequireBinary(t, bin)
	}
	ports := func(n int) string {
		var p []string
		for len(p) < n {
			// Redis Cluster's bus listens on the port + 10000.
			if port := testutil.FreePort(t); port < 55535 {
				p = append(p, fmt.Sprint(port))
			}
		}
		return strings.Join(p, " ")
	}
	cmd := exec.Command("bash", "../../examples/cluster/run.sh", "--smoke")
	cmd.Env = append(os.Environ(), "REDIS_PORTS="+ports(3), "PUBGATE_PORTS="+ports(2), "ADMIN_PORTS="+ports(2),
		"DATA_DIR="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "smoke test passed") {
		t.Fatalf("run.sh --smoke: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "building pubgate") && !strings.HasPrefix(line, "Redis Cluster up: ") &&
			!strings.HasPrefix(line, "pubgate nodes up on ") && !strings.HasPrefix(line, "smoke test passed") {
			t.Errorf("run.sh --smoke printed an unexpected line %q; all of it:\n%s", line, out)
		}
	}
}
