package testutil

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster of redis-server processes on free loopback
// ports, created by redis-cli as operators do, whose masters a test can kill
// to see a replica take over. Methods that take no testing.TB fail the test
// that started the cluster, and ask the nodes rather than remember: after a
// failover the answers change.
type RedisCluster struct {
	t     testing.TB
	nodes []*RedisServer
}

// clusterNodeArgs make failover quick and the topology predictable: a
// silent node is failed after one second, any replica may take over however
// stale, replicas never move to another master, the live masters keep
// serving their slots while a dead master's wait for its replica (as a
// production pub/sub cluster would be set up), and replicas sync at once.
var clusterNodeArgs = slices.Concat(replicationArgs, []string{
	"--cluster-node-timeout", "1000",
	"--cluster-replica-validity-factor", "0",
	"--cluster-allow-replica-migration", "no",
	"--cluster-require-full-coverage", "no",
})

// StartRedisCluster starts masters*(1+replicasPerMaster) cluster nodes,
// joins them with redis-cli --cluster create and waits until the cluster is
// healthy (see WaitHealthy). Redis Cluster needs at least three masters.
// The nodes are stopped when the test ends.
func StartRedisCluster(t testing.TB, masters, replicasPerMaster int) *RedisCluster {
	t.Helper()
	if masters < 3 || replicasPerMaster < 0 {
		t.Fatalf("StartRedisCluster(%d, %d): Redis Cluster needs at least 3 masters", masters, replicasPerMaster)
	}
	cli := RequireBinary(t, "redis-cli")
	c := &RedisCluster{t: t}
	for range masters * (1 + replicasPerMaster) {
		c.nodes = append(c.nodes, launch(t, &RedisServer{cluster: true, args: clusterNodeArgs}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := slices.Concat([]string{"--cluster", "create"}, c.Seeds(),
		[]string{"--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes"})
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitHealthy(t)
	return c
}

// Seeds is host:port of every node, as a cluster client's seed list.
func (c *RedisCluster) Seeds() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Node is the node listening on addr (host:port), or nil.
func (c *RedisCluster) Node(addr string) *RedisServer {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Masters are the nodes that serve slots now, as the cluster itself says,
// in the order the nodes were started.
func (c *RedisCluster) Masters() []*RedisServer {
	view := c.liveView()
	var masters []*RedisServer
	for _, n := range c.nodes {
		if e, ok := view[n.Addr()]; ok && e.servesSlots() {
			masters = append(masters, n)
		}
	}
	return masters
}

// MasterOf is the master that serves the hash slot of key (a channel name
// for sharded pub/sub), hash tags included, now.
func (c *RedisCluster) MasterOf(key string) *RedisServer {
	c.t.Helper()
	n := c.anyRunning()
	reply, err := n.text("CLUSTER", "KEYSLOT", key)
	slot, convErr := strconv.Atoi(reply)
	if err != nil || convErr != nil {
		c.t.Fatalf("CLUSTER KEYSLOT %q on %s: %q %v", key, n.Addr(), reply, err)
	}
	for addr, e := range c.liveView() {
		if e.servesSlots() && e.serves(slot) {
			return c.Node(addr)
		}
	}
	c.t.Fatalf("no master serves slot %d of %q", slot, key)
	return nil
}

// KillMaster stops master m and waits until one of its replicas has taken
// over its slots and every surviving node agrees (see WaitHealthy). It
// returns the promoted replica. With the settings above this takes about
// the node timeout plus a second or two.
func (c *RedisCluster) KillMaster(t testing.TB, m *RedisServer) (promoted *RedisServer) {
	t.Helper()
	if !c.liveView()[m.Addr()].servesSlots() {
		t.Fatalf("KillMaster: %s is not a master serving slots", m.Addr())
	}
	replicas := c.ReplicasOf(m)
	if len(replicas) == 0 {
		t.Fatalf("KillMaster: %s has no replica to promote", m.Addr())
	}
	m.Stop()
	EventuallyNoError(t, "a replica of "+m.Addr()+" takes over its slots", func() error {
		view, err := c.health()
		if err != nil {
			return err
		}
		for _, r := range replicas {
			if view[r.Addr()].servesSlots() {
				promoted = r
				return nil
			}
		}
		return fmt.Errorf("no replica of %s serves slots:\n%s", m.Addr(), view)
	})
	return promoted
}

// ReplicasOf are the nodes that replicate m now, in start order.
func (c *RedisCluster) ReplicasOf(m *RedisServer) []*RedisServer {
	view := c.liveView()
	var replicas []*RedisServer
	for _, n := range c.nodes {
		if view[n.Addr()].master == m.Addr() {
			replicas = append(replicas, n)
		}
	}
	return replicas
}

// Restart starts a stopped node again on its ports with its nodes.conf and
// waits until the cluster is healthy with it back; a killed master whose
// slots were taken over rejoins as a replica of the promoted node.
func (c *RedisCluster) Restart(t testing.TB, n *RedisServer) {
	t.Helper()
	n.Start()
	c.WaitHealthy(t)
}

// WaitHealthy waits until every running node reports cluster_state:ok with
// all 16384 slots served, all running nodes agree on the whole topology
// (slot owners, who replicates whom, which stopped nodes are failed), the
// slots are served by running nodes only, and every running replica is
// synced with its master.
func (c *RedisCluster) WaitHealthy(t testing.TB) {
	t.Helper()
	EventuallyNoError(t, "the cluster is healthy", func() error {
		_, err := c.health()
		return err
	})
}

// health checks what WaitHealthy waits for and returns the agreed view.
func (c *RedisCluster) health() (clusterView, error) {
	var agreed clusterView
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		view, err := c.nodeHealth(n)
		if err != nil {
			return nil, err
		}
		if agreed == nil {
			agreed = view
		} else if view.String() != agreed.String() {
			return nil, fmt.Errorf("%s sees\n%s\nbut another node\n%s", n.Addr(), view, agreed)
		}
	}
	if agreed == nil {
		return nil, errors.New("no node is running")
	}
	return agreed, c.checkAgainstProcesses(agreed)
}

// nodeHealth is one node's CLUSTER INFO verdict and its view of the cluster.
func (c *RedisCluster) nodeHealth(n *RedisServer) (clusterView, error) {
	info, err := n.fields("CLUSTER", "INFO")
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr(), err)
	}
	if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
		return nil, fmt.Errorf("%s: cluster_state:%s cluster_slots_ok:%s",
			n.Addr(), info["cluster_state"], info["cluster_slots_ok"])
	}
	return nodeView(n)
}

// checkAgainstProcesses checks an agreed view against the processes: every
// node known, stopped ones failed and slotless, running replicas synced.
func (c *RedisCluster) checkAgainstProcesses(view clusterView) error {
	if len(view) != len(c.nodes) {
		return fmt.Errorf("the cluster knows %d nodes, not %d:\n%s", len(view), len(c.nodes), view)
	}
	for _, n := range c.nodes {
		e, ok := view[n.Addr()]
		switch {
		case !ok:
			return fmt.Errorf("the cluster does not know %s:\n%s", n.Addr(), view)
		case !n.running() && (!e.failed || len(e.slots) > 0):
			return fmt.Errorf("stopped node %s is not failed over yet:\n%s", n.Addr(), view)
		case n.running() && e.failed:
			return fmt.Errorf("running node %s is flagged failed:\n%s", n.Addr(), view)
		case n.running() && e.master != "":
			if err := replicaSynced(n, e.master); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveView is the topology as a running node sees it now.
func (c *RedisCluster) liveView() clusterView {
	c.t.Helper()
	n := c.anyRunning()
	view, err := nodeView(n)
	if err != nil {
		c.t.Fatalf("CLUSTER NODES on %s: %v", n.Addr(), err)
	}
	return view
}

// anyRunning is the first node that is running.
func (c *RedisCluster) anyRunning() *RedisServer {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.running() {
			return n
		}
	}
	c.t.Fatalf("no cluster node is running")
	return nil
}
