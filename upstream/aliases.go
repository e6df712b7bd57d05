package upstream

import "sync"

// aliases track, in a cluster's sharded mode, which local kinds hold each
// shard channel: a client's SUBSCRIBE and SSUBSCRIBE of one name share one
// upstream SSUBSCRIBE, and each of them receives its messages.
type aliases struct {
	mu    sync.RWMutex
	names map[string][2]bool // [0]: KindChannel, [1]: KindShard
}

func newAliases() *aliases { return &aliases{names: make(map[string][2]bool)} }

func aliasIndex(kind Kind) int {
	if kind == KindShard {
		return 1
	}
	return 0
}

func (a *aliases) add(kind Kind, names []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		held := a.names[n]
		held[aliasIndex(kind)] = true
		a.names[n] = held
	}
}

// remove drops kind's hold on names and returns those no kind holds any
// more, which may leave the engine.
func (a *aliases) remove(kind Kind, names []string) (unheld []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		held, ok := a.names[n]
		if !ok {
			continue
		}
		held[aliasIndex(kind)] = false
		if held == [2]bool{} {
			delete(a.names, n)
			unheld = append(unheld, n)
		} else {
			a.names[n] = held
		}
	}
	return unheld
}

var (
	kindsChannel = []Kind{KindChannel}
	kindsShard   = []Kind{KindShard}
	kindsBoth    = []Kind{KindChannel, KindShard}
)

// kinds lists the local kinds that hold name.
func (a *aliases) kinds(name []byte) []Kind {
	a.mu.RLock()
	held := a.names[string(name)]
	a.mu.RUnlock()
	switch held {
	case [2]bool{true, true}:
		return kindsBoth
	case [2]bool{true, false}:
		return kindsChannel
	case [2]bool{false, true}:
		return kindsShard
	}
	return nil
}
