package testutil

import (
	"slices"
	"strings"
	"testing"
)

func TestRedisClusterServesKeysFromTheirOwner(t *testing.T) {
	c := StartRedisCluster(t, 3, 0)
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("masters = %d, want 3", got)
	}
	for _, addr := range c.Seeds() {
		info, err := c.Node(addr).fields("CLUSTER", "INFO")
		if err != nil || info["cluster_state"] != "ok" {
			t.Fatalf("CLUSTER INFO on %s: %v %v", addr, info, err)
		}
	}
	owner := DialRESP(t, c.MasterOf("{user:1}:profile").Addr())
	if got := owner.Do("SET", "{user:1}:profile", "v"); got != "OK" {
		t.Fatalf("SET on the owner = %s", got)
	}
	if got := owner.Do("GET", "{user:1}:profile"); got != `"v"` {
		t.Fatalf("GET on the owner = %s", got)
	}
	if c.MasterOf("{user:1}:other") != c.MasterOf("{user:1}:profile") {
		t.Fatal("keys with the same hash tag have different owners")
	}
	for _, m := range c.Masters() {
		if m != c.MasterOf("{user:1}:profile") {
			if got := DialRESP(t, m.Addr()).Do("GET", "{user:1}:profile"); !strings.HasPrefix(got, "-MOVED") {
				t.Fatalf("GET on a non-owner = %s, want a MOVED redirection", got)
			}
		}
	}
}

func TestRedisClusterKillMasterPromotesItsReplica(t *testing.T) {
	c := StartRedisCluster(t, 3, 1)
	const key = "orders"
	old := c.MasterOf(key)
	if got := DialRESP(t, old.Addr()).Do("SET", key, "kept"); got != "OK" {
		t.Fatalf("SET = %s", got)
	}
	replica := DialRESP(t, c.ReplicasOf(old)[0].Addr())
	replica.Do("READONLY")
	Eventually(t, "the write reaches the replica", func() bool { return replica.Do("GET", key) == `"kept"` })

	promoted := c.KillMaster(t, old)
	if promoted == old || c.MasterOf(key) != promoted {
		t.Fatalf("after the kill %s owns %q, want the promoted %s", c.MasterOf(key).Addr(), key, promoted.Addr())
	}
	if slices.Contains(c.Masters(), old) || len(c.Masters()) != 3 {
		t.Fatalf("masters after the kill: %v", c.Masters())
	}
	if got := DialRESP(t, promoted.Addr()).Do("GET", key); got != `"kept"` {
		t.Fatalf("GET on the promoted replica = %s", got)
	}

	c.Restart(t, old)
	if c.liveView()[old.Addr()].master != promoted.Addr() {
		t.Fatalf("restarted %s does not replicate %s:\n%s", old.Addr(), promoted.Addr(), c.liveView())
	}
}

func TestParseClusterNodes(t *testing.T) {
	nodes := "07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected\n" +
		"67ed 127.0.0.1:30002@31002,host master - 0 1426238316232 2 connected 5461-10922 [5461->-e7d1]\n" +
		"e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 10923\n" +
		"292f 127.0.0.1:30003@31003 master,fail - 1426238317741 1426238316232 0 disconnected\n"
	view, err := parseClusterNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:30001 master 0-5460,10923\n" +
		"127.0.0.1:30002 master 5461-10922\n" +
		"127.0.0.1:30003 master failed \n" +
		"127.0.0.1:30004 replica-of 127.0.0.1:30001 "
	if view.String() != want {
		t.Fatalf("view:\n%s\nwant:\n%s", view, want)
	}
	owner := view["127.0.0.1:30001"]
	if !owner.serves(0) || !owner.serves(10923) || owner.serves(5461) || view["127.0.0.1:30004"].servesSlots() {
		t.Fatal("slot ownership misread")
	}
}
