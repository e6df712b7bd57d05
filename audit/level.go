package audit

import (
	"fmt"
	"github.com/pubgate/pubgate/action"
	"slices"
)

// Level is how much an allowed action's record says, in the spirit of
// Kubernetes audit levels. Refusals, logins, reloads and disconnects are
// recorded whatever the level.
type Level uint8

// The levels, each adding to the one before.
const (
	None          Level = iota // allowed actions are not recorded
	Metadata                   // identity, action, channel, outcome (and payload size)
	PayloadDigest              // adds the payload's SHA-256
	Payload                    // adds the payload itself, base64
)

var levelNames = [...]string{"none", "metadata", "payload_digest", "payload"}

func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", l)
}

// ParseLevel reads a level's configuration name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return None, fmt.Errorf("must be none, metadata, payload_digest or payload, not %q", s)
}

// Actions are the names of the actions whose allowed records a level
// governs (action.OnChannels).
var Actions = action.Names(action.OnChannels()...)

// defaultLevel is the level of an action no configuration names:
// subscriptions are recorded, publishes (the bulk of the traffic) are not.
func defaultLevel(name string) Level {
	if a, _ := action.Parse(name); a.Publishes() {
		return None
	}
	return Metadata
}

// Scope is the level configuration of one scope (all tenants, or one):
// a default and per-action overrides; empty strings are unset.
type Scope struct {
	Level   string
	Actions map[string]string
}

// Levels resolves the level of each tenant's actions, the most specific
// setting winning: the tenant's action, the tenant's default, the global
// action, the global default, then defaultLevel.
type Levels struct {
	Global  Scope
	Tenants map[string]Scope
}

// For returns the level of a tenant's allowed action; the configuration
// must have passed Check.
func (l Levels) For(tenant, action string) Level {
	t := l.Tenants[tenant]
	for _, s := range []string{t.Actions[action], t.Level, l.Global.Actions[action], l.Global.Level} {
		if s != "" {
			level, _ := ParseLevel(s)
			return level
		}
	}
	return defaultLevel(action)
}

// Check reports the first unknown level or action, naming its key under
// prefix (e.g. "audit").
func (l Levels) Check(prefix string) error {
	if err := l.Global.check(prefix); err != nil {
		return err
	}
	for name, t := range l.Tenants {
		if err := t.check(prefix + ".tenants." + name); err != nil {
			return err
		}
	}
	return nil
}

func (s Scope) check(prefix string) error {
	if s.Level != "" {
		if _, err := ParseLevel(s.Level); err != nil {
			return fmt.Errorf("%s.level: %w", prefix, err)
		}
	}
	for action, level := range s.Actions {
		if !slices.Contains(Actions, action) {
			return fmt.Errorf("%s.levels: unknown action %q (one of %v)", prefix, action, Actions)
		}
		if _, err := ParseLevel(level); err != nil {
			return fmt.Errorf("%s.levels.%s: %w", prefix, action, err)
		}
	}
	return nil
}
