package proxy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pubgate/pubgate/upstream"
)

// command is one entry of the command table.
type command struct {
	name  string
	arity int // as in Redis: n means exactly n arguments with the name, -n at least n
	// noAuth commands run before AUTH; inSubscribe commands run in RESP2
	// subscribe mode.
	noAuth, inSubscribe bool
	// publish marks PUBLISH and SPUBLISH (kind says which), which sessions
	// queue to send upstream as one pipeline (see deferPublish).
	publish bool
	kind    upstream.Kind
	flags   []string // reported by COMMAND
	run     func(s *session, args [][]byte)
	// subcommands are the full names of a container command's
	// subcommands (client|list), for CLIENT LIST.
	subcommands map[string]*string
}

// commands is pubgate's whole client surface; everything else is refused
// with an error naming pubgate.
var commands = map[string]*command{}

func init() {
	for _, c := range []*command{
		{name: "auth", arity: -2, noAuth: true, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: (*session).cmdAuth},
		{name: "hello", arity: -1, noAuth: true, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: (*session).cmdHello},
		{name: "ping", arity: -1, noAuth: true, inSubscribe: true, flags: []string{"fast"}, run: (*session).cmdPing},
		{name: "quit", arity: -1, noAuth: true, inSubscribe: true, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: (*session).cmdQuit},
		{name: "reset", arity: 1, noAuth: true, inSubscribe: true, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, run: (*session).cmdReset},
		{name: "echo", arity: 2, flags: []string{"fast"}, run: (*session).cmdEcho},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, run: (*session).cmdSelect},
		{name: "client", arity: -2, flags: []string{"noscript", "loading", "stale"}, run: (*session).cmdClient},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, run: (*session).cmdCommand},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, run: (*session).cmdInfo},
		{name: "subscribe", arity: -2, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdSubscribe},
		{name: "psubscribe", arity: -2, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdPSubscribe},
		{name: "ssubscribe", arity: -2, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdSSubscribe},
		{name: "unsubscribe", arity: -1, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdUnsubscribe},
		{name: "punsubscribe", arity: -1, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdPUnsubscribe},
		{name: "sunsubscribe", arity: -1, inSubscribe: true, flags: pubsubFlags, run: (*session).cmdSUnsubscribe},
		{name: "publish", arity: 3, publish: true, kind: upstream.KindChannel, flags: []string{"pubsub", "loading", "stale", "fast"}, run: (*session).cmdPublish},
		{name: "spublish", arity: 3, publish: true, kind: upstream.KindShard, flags: []string{"pubsub", "loading", "stale", "fast"}, run: (*session).cmdPublish},
		{name: "pubsub", arity: -2, flags: []string{"pubsub", "loading", "stale"}, run: (*session).cmdPubsub},
	} {
		c.subcommands = subcommandNames[c.name]
		commands[c.name] = c
	}
}

var pubsubFlags = []string{"pubsub", "noscript", "loading", "stale"}

// commandNames lists the table in a stable order.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookup finds a command by name, case-insensitively, without allocating.
func lookup(name []byte) *command {
	var buf [16]byte
	key, ok := lowered(name, &buf)
	if !ok {
		return nil
	}
	return commands[string(key)]
}

// lowered is name in lower case, written into buf, for a map lookup that
// does not allocate; ok is false for a name too long to be any key.
func lowered(name []byte, buf *[16]byte) (key []byte, ok bool) {
	if len(name) > len(buf) {
		return nil, false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(name)], true
}

// handle runs one client command. A PUBLISH is queued (deferPublish); any
// other command first sends the queued ones, so that replies keep their order.
func (s *session) handle(args [][]byte) {
	if len(args) == 0 {
		return
	}
	cmd := lookup(args[0])
	s.noteCommand(cmd, args)
	mute := s.replyOff || s.skipNext
	s.skipNext = false
	refusal := s.refusal(cmd, args)
	if refusal == "" && cmd.publish && s.deferPublish(cmd, args, mute) {
		return
	}
	s.flushPublishes()
	s.mute = mute
	if refusal != "" {
		s.writeError(refusal)
		return
	}
	cmd.run(s, args)
	s.showCommandEffects()
}

// refusal is the error reply a command gets before it runs, if any.
func (s *session) refusal(cmd *command, args [][]byte) string {
	switch {
	case cmd == nil:
		return fmt.Sprintf("ERR pubgate is a pub/sub proxy: command '%s' is not supported", printable(args[0]))
	case !arityOK(cmd.arity, len(args)):
		return fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd.name)
	case s.ident == nil && !cmd.noAuth:
		return "NOAUTH Authentication required."
	case s.inRESP2SubscribeMode() && !cmd.inSubscribe:
		return fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", cmd.name)
	}
	return ""
}

func arityOK(arity, n int) bool {
	if arity >= 0 {
		return n == arity
	}
	return n >= -arity
}

func (s *session) inRESP2SubscribeMode() bool {
	return s.proto == resp2 && s.subscriptionCount() > 0
}

func (s *session) subscriptionCount() int {
	return len(s.subs[0]) + len(s.subs[1]) + len(s.subs[2])
}

// printable quotes what a client sent in an error reply: one line, bounded.
func printable(b []byte) string {
	const max = 128
	if len(b) > max {
		b = b[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, string(b))
}
