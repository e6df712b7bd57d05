package proxy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// cmdCommand answers COMMAND, COMMAND COUNT|INFO|LIST|DOCS with pubgate's own
// table, so that clients that discover commands see what pubgate serves.
func (s *session) cmdCommand(args [][]byte) {
	if len(args) == 1 {
		names := commandNames()
		s.writeArray(len(names))
		for _, n := range names {
			s.writeCommandInfo(commands[n])
		}
		return
	}
	switch sub := strings.ToLower(string(args[1])); {
	case sub == "count" && len(args) == 2:
		s.writeInt(int64(len(commands)))
	case sub == "list" && len(args) == 2:
		s.writeStrings(commandNames())
	case sub == "info":
		s.writeArray(len(args) - 2)
		for _, name := range args[2:] {
			if c := lookup(name); c != nil {
				s.writeCommandInfo(c)
			} else {
				s.writeNull()
			}
		}
	case sub == "docs":
		// No documentation: clients (redis-cli hints) fall back to their own.
		s.writeMap(0)
	case sub == "help" && len(args) == 2:
		s.writeStrings([]string{"COMMAND [<subcommand>]. pubgate supports:", "(no subcommand)", "COUNT", "DOCS", "INFO [<command-name> ...]", "LIST", "HELP"})
	default:
		s.writeErrorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try COMMAND HELP.", printable(args[1]))
	}
}

// writeCommandInfo writes one COMMAND entry in Redis 7's ten-field shape.
func (s *session) writeCommandInfo(c *command) {
	s.writeArray(10)
	s.writeBulk(c.name)
	s.writeInt(int64(c.arity))
	s.writeArray(len(c.flags))
	for _, f := range c.flags {
		s.writeSimple(f)
	}
	s.writeInt(0) // first key
	s.writeInt(0) // last key
	s.writeInt(0) // step
	category := "@connection"
	if slices.Contains(c.flags, "pubsub") {
		category = "@pubsub"
	}
	s.writeArray(1)
	s.writeSimple(category)
	s.writeArray(0) // tips
	s.writeArray(0) // key specs
	s.writeArray(0) // subcommands
}

// cmdInfo answers INFO with what clients check before they are ready
// (ioredis waits on loading:0), and nothing about other tenants or clients.
func (s *session) cmdInfo(args [][]byte) {
	sections := map[string]bool{}
	for _, a := range args[1:] {
		sections[strings.ToLower(string(a))] = true
	}
	all := len(sections) == 0 || sections["all"] || sections["default"] || sections["everything"]
	var b strings.Builder
	if all || sections["server"] {
		uptime := time.Since(s.srv.started)
		fmt.Fprintf(&b, "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\npubgate_version:%s\r\narch_bits:64\r\n"+
			"tcp_port:%d\r\nuptime_in_seconds:%d\r\nuptime_in_days:%d\r\nloading:0\r\n\r\n",
			redisVersion, s.srv.version, s.srv.port(), int(uptime.Seconds()), int(uptime.Hours()/24))
	}
	if all || sections["persistence"] {
		b.WriteString("# Persistence\r\nloading:0\r\n\r\n")
	}
	if all || sections["replication"] {
		b.WriteString("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n")
	}
	s.writeBulk(b.String())
}
