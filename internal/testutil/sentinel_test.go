package testutil

import (
	"strings"
	"testing"
)

func TestSentinelFailoverPromotesTheReplica(t *testing.T) {
	s := StartSentinel(t)
	old, replica := s.Servers()[0], s.Servers()[1]
	if s.Primary() != old || len(s.SentinelAddrs()) != 1 || s.MasterName() == "" {
		t.Fatalf("primary %s, sentinels %v, name %q", s.Primary().Addr(), s.SentinelAddrs(), s.MasterName())
	}
	if got := DialRESP(t, old.Addr()).Do("SET", "k", "kept"); got != "OK" {
		t.Fatalf("SET = %s", got)
	}
	onReplica := DialRESP(t, replica.Addr())
	Eventually(t, "the write reaches the replica", func() bool { return onReplica.Do("GET", "k") == `"kept"` })

	promoted := s.Failover(t)
	if promoted != replica || s.Primary() != replica {
		t.Fatalf("promoted %s, sentinel names %s, want %s", promoted.Addr(), s.Primary().Addr(), replica.Addr())
	}
	onPromoted := DialRESP(t, promoted.Addr())
	if got := onPromoted.Do("GET", "k"); got != `"kept"` {
		t.Fatalf("GET on the promoted replica = %s", got)
	}
	if got := onPromoted.Do("SET", "k", "after"); got != "OK" {
		t.Fatalf("SET on the promoted replica = %s", got)
	}

	s.Restart(t, old)
	onOld := DialRESP(t, old.Addr())
	if got := onOld.Do("SET", "k", "x"); !strings.HasPrefix(got, "-READONLY") {
		t.Fatalf("SET on the restarted old primary = %s, want a read-only refusal", got)
	}
	if got := onOld.Do("GET", "k"); got != `"after"` {
		t.Fatalf("GET on the restarted old primary = %s, want the new primary's value", got)
	}
}
