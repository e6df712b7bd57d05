// Package action is the one list of what a client asks pubgate to do. The
// policy input's "action", the audit record's "action", the audit levels'
// keys and the metrics' "action" label all spell these names.
package action

// Action is what a client asks to do.
type Action uint8

const (
	Connect Action = iota
	Subscribe
	PSubscribe
	SSubscribe
	Publish
	SPublish
	// Count is the number of actions: arrays indexed by Action use it.
	Count
)

var names = [Count]string{"connect", "subscribe", "psubscribe", "ssubscribe", "publish", "spublish"}

func (a Action) String() string {
	if a < Count {
		return names[a]
	}
	return "unknown"
}

// Parse returns the action a name names.
func Parse(name string) (Action, bool) {
	for a, n := range names {
		if n == name {
			return Action(a), true
		}
	}
	return 0, false
}

// Names are the names of actions, in their order.
func Names(actions ...Action) []string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.String()
	}
	return names
}

// All are every action, in order.
func All() []Action {
	all := make([]Action, Count)
	for i := range all {
		all[i] = Action(i)
	}
	return all
}

// OnChannels are the actions on channels, every one but Connect, in order:
// the actions an audit level governs.
func OnChannels() []Action {
	return []Action{Subscribe, PSubscribe, SSubscribe, Publish, SPublish}
}

// Publishes reports whether a is a publish (PUBLISH or SPUBLISH).
func (a Action) Publishes() bool { return a == Publish || a == SPublish }
