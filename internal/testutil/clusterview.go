package testutil

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// clusterView is the topology as one node's CLUSTER NODES gives it, by
// node address. It keeps only what every node must agree on, so that two
// views compare equal exactly when the nodes agree.
type clusterView map[string]clusterEntry

// clusterEntry is one node in a clusterView.
type clusterEntry struct {
	master string   // address of the master it replicates; "" for a master
	failed bool     // flagged fail: the masters agreed it is down (not fail?, one node's suspicion)
	slots  []string // slot ranges it serves, as CLUSTER NODES prints them
}

// servesSlots reports whether the entry is a master serving slots.
func (e clusterEntry) servesSlots() bool { return e.master == "" && len(e.slots) > 0 }

// serves reports whether slot is in one of the entry's ranges.
func (e clusterEntry) serves(slot int) bool {
	for _, r := range e.slots {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		first, _ := strconv.Atoi(lo)
		last, _ := strconv.Atoi(hi)
		if first <= slot && slot <= last {
			return true
		}
	}
	return false
}

// String renders the view one node a line, sorted, for comparing views and
// for failure messages.
func (v clusterView) String() string {
	lines := make([]string, 0, len(v))
	for addr, e := range v {
		line := addr + " master"
		if e.master != "" {
			line = addr + " replica-of " + e.master
		}
		if e.failed {
			line += " failed"
		}
		lines = append(lines, line+" "+strings.Join(e.slots, ","))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// nodeView asks n for CLUSTER NODES and parses it.
func nodeView(n *RedisServer) (clusterView, error) {
	text, err := n.text("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	return parseClusterNodes(text)
}

// parseClusterNodes parses CLUSTER NODES lines: id ip:port@bus[,hostname]
// flags master-id ping-sent pong-recv epoch link-state slot…; a replica's
// master is given by id, which it resolves to an address.
func parseClusterNodes(text string) (clusterView, error) {
	addrOf := map[string]string{}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("short CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addrOf[f[0]] = addr
		rows = append(rows, f)
	}
	view := clusterView{}
	for _, f := range rows {
		e := clusterEntry{failed: slices.Contains(strings.Split(f[2], ","), "fail")}
		if f[3] != "-" {
			e.master = cmp.Or(addrOf[f[3]], "unknown node "+f[3])
		}
		for _, s := range f[8:] {
			if !strings.HasPrefix(s, "[") { // skip [slot->-importing] markers
				e.slots = append(e.slots, s)
			}
		}
		view[addrOf[f[0]]] = e
	}
	return view, nil
}
