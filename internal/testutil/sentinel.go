package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// SentinelSet is a primary, its replica and one Sentinel watching them, each
// a process on a free loopback port, for testing an upstream that finds its
// primary through Sentinel and must follow it across a failover. Methods
// that take no testing.TB fail the test that started the set, and ask
// Sentinel rather than remember: after a failover the answers change.
type SentinelSet struct {
	t        testing.TB
	name     string
	sentinel *RedisServer
	servers  []*RedisServer // the first primary, then its replica
}

// sentinelMasterName is the name Sentinel knows the primary by.
const sentinelMasterName = "pubgate"

// StartSentinel starts a primary, a replica of it and a Sentinel with
// quorum 1, and waits until Sentinel knows the replica and the replica is in
// sync. Everything is stopped when the test ends.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	primary := launch(t, &RedisServer{args: replicationArgs})
	replica := launch(t, &RedisServer{args: slices.Concat(replicationArgs,
		[]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)})})
	s := &SentinelSet{t: t, name: sentinelMasterName, servers: []*RedisServer{primary, replica}}
	s.sentinel = launchSentinel(t, s.name, primary)
	EventuallyNoError(t, "Sentinel knows the synced replica", func() error { return s.replicaKnown(replica) })
	return s
}

// launchSentinel starts a Sentinel monitoring primary as name, with
// timings that make a failover take seconds instead of a minute (Redis 7.0
// has SENTINEL DEBUG for the ones the config file cannot set). They keep
// Sentinel's own rules satisfied with room to spare:
//   - down-after 1 s, pings every 500 ms: Sentinel reconnects to a
//     relocated primary at most once per ping period, and a reconnect slower
//     than down-after marks the new primary down and starts a second,
//     spurious failover;
//   - INFO every 1 s (10 s by default): during a failover Sentinel asks the
//     replica for INFO once a second regardless, and only promotes a replica
//     whose INFO is newer than five ping periods;
//   - hello messages every 250 ms: a returning old primary is made a
//     replica only after four hello periods (8 s by default);
//   - failover timeout 2 s: the next failover may start 4 s after the last.
func launchSentinel(t testing.TB, name string, primary *RedisServer) *RedisServer {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it, so it must be writable
	lines := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 2000\n", name, primary.Port)
	if err := os.WriteFile(conf, []byte(lines), 0o600); err != nil {
		t.Fatalf("write %s: %v", conf, err)
	}
	sentinel := launch(t, &RedisServer{dir: dir, conf: conf, args: []string{"--sentinel"}})
	if _, err := sentinel.do("SENTINEL", "DEBUG",
		"PING-PERIOD", "500", "INFO-PERIOD", "1000", "PUBLISH-PERIOD", "250"); err != nil {
		t.Fatalf("SENTINEL DEBUG on %s: %v", sentinel.Addr(), err)
	}
	return sentinel
}

// MasterName is the name Sentinel knows the primary by.
func (s *SentinelSet) MasterName() string { return s.name }

// SentinelAddrs is host:port of every Sentinel.
func (s *SentinelSet) SentinelAddrs() []string { return []string{s.sentinel.Addr()} }

// Servers are the data servers, the first primary first, whatever their
// roles are now.
func (s *SentinelSet) Servers() []*RedisServer { return slices.Clone(s.servers) }

// Primary is the server Sentinel names as primary now.
func (s *SentinelSet) Primary() *RedisServer {
	s.t.Helper()
	p, err := s.primary()
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// Failover stops the current primary and waits until Sentinel names the
// other server, that server is a master, and the failover is over (about
// 2.5 s). It returns the new primary. Sentinel starts a failover at most
// once per 4 s, so back-to-back failovers wait for that.
func (s *SentinelSet) Failover(t testing.TB) (newPrimary *RedisServer) {
	t.Helper()
	old := s.Primary()
	old.Stop()
	EventuallyNoError(t, "Sentinel promotes a replica of "+old.Addr(), func() error {
		p, err := s.primary()
		switch {
		case err != nil:
			return err
		case p == old:
			return fmt.Errorf("sentinel still names %s", old.Addr())
		}
		newPrimary = p
		return s.settledOn(p)
	})
	return newPrimary
}

// Restart starts a stopped server again and waits until Sentinel has made
// it a synced replica of the current primary, as it does with an old
// primary that comes back (about 2 s after it is up).
func (s *SentinelSet) Restart(t testing.TB, r *RedisServer) {
	t.Helper()
	r.Start()
	EventuallyNoError(t, "Sentinel makes "+r.Addr()+" a synced replica", func() error { return s.replicaKnown(r) })
}

// primary asks Sentinel for the primary's address and maps it to a server.
func (s *SentinelSet) primary() (*RedisServer, error) {
	reply, err := s.sentinel.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.name)
	hostPort, _ := reply.([]any)
	if err != nil || len(hostPort) != 2 {
		return nil, fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v %v", s.name, reply, err)
	}
	host, _ := hostPort[0].(string)
	port, _ := hostPort[1].(string)
	for _, r := range s.servers {
		if r.Addr() == net.JoinHostPort(host, port) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("sentinel names %s:%s, which is none of ours", host, port)
}

// settledOn checks that p reports role:master and that Sentinel's failover
// is over, so that the set is steady for whatever the test does next.
func (s *SentinelSet) settledOn(p *RedisServer) error {
	info, err := p.fields("INFO", "replication")
	if err != nil || info["role"] != "master" {
		return fmt.Errorf("%s: role:%s %v", p.Addr(), info["role"], err)
	}
	reply, err := s.sentinel.do("SENTINEL", "MASTER", s.name)
	if flags := pairs(reply)["flags"]; err != nil || flags != "master" {
		return fmt.Errorf("sentinel's flags for %s: %q %v", s.name, flags, err)
	}
	return nil
}

// replicaKnown checks that r is a synced replica of the current primary and
// that Sentinel lists it as a healthy replica.
func (s *SentinelSet) replicaKnown(r *RedisServer) error {
	p, err := s.primary()
	if err != nil {
		return err
	}
	if err := replicaSynced(r, p.Addr()); err != nil {
		return err
	}
	reply, err := s.sentinel.do("SENTINEL", "REPLICAS", s.name)
	if err != nil {
		return err
	}
	replicas, _ := reply.([]any)
	for _, entry := range replicas {
		fields := pairs(entry)
		if net.JoinHostPort(fields["ip"], fields["port"]) != r.Addr() {
			continue
		}
		if fields["flags"] != "slave" || fields["master-link-status"] != "ok" {
			return fmt.Errorf("sentinel sees replica %s with flags %q, master link %q",
				r.Addr(), fields["flags"], fields["master-link-status"])
		}
		return nil
	}
	return errors.New("sentinel does not list " + r.Addr() + " as a replica of " + s.name)
}
