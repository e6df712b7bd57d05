package testutil

import (
	"fmt"
	"net"
)

// replicationArgs let a replica sync at once instead of after Redis 7's
// five-second wait for more replicas to batch with.
var replicationArgs = []string{"--repl-diskless-sync-delay", "0"}

// replicaSynced checks that replica r follows master and is in sync with it.
func replicaSynced(r *RedisServer, master string) error {
	info, err := r.fields("INFO", "replication")
	if err != nil {
		return fmt.Errorf("%s: INFO replication: %w", r.Addr(), err)
	}
	following := net.JoinHostPort(info["master_host"], info["master_port"])
	if info["role"] != "slave" || following != master ||
		info["master_link_status"] != "up" || info["master_sync_in_progress"] != "0" {
		return fmt.Errorf("replica %s of %s: role:%s master:%s master_link_status:%s master_sync_in_progress:%s",
			r.Addr(), master, info["role"], following, info["master_link_status"], info["master_sync_in_progress"])
	}
	return nil
}
