package proxy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pubgate/pubgate/upstream"
)

// CLIENT: the connection's own settings, and LIST / INFO / KILL over the
// connections of the caller's own user (same tenant, same user) on this
// node. Another user's connections, and another tenant's, are never shown
// nor killed: to the caller they do not exist.

// clientView is what other connections see of a session in CLIENT LIST and
// CLIENT KILL. The session's reader owns the session, so it copies here the
// few fields they show, where they change; the per-command cost is one
// atomic store, and none while a client repeats the same command.
type clientView struct {
	cmd    atomic.Pointer[string] // the last command, as Redis names it (client|list); nil: none or unknown
	active atomic.Int64           // unix nanoseconds of the last batch of commands; 0: none yet

	mu     sync.Mutex
	fields clientFields
}

// clientFields are a session's shown fields that change only with
// commands that are not hot (SETNAME, HELLO, AUTH, SUBSCRIBE…).
type clientFields struct {
	addr, laddr           string
	name, libName, libVer string
	tenant, user          string // tenant "": not authenticated
	proto                 int32
	subs                  [3]int // by upstream.Kind: channels, patterns, shard channels
}

// noteCommand records the command a session is about to run, for CLIENT
// LIST's cmd and idle. It is on every command's path: one atomic store
// when the command differs from the last one, none otherwise.
func (s *session) noteCommand(cmd *command, args [][]byte) {
	s.ran = true
	if name := cmd.fullName(args); name != s.lastCmd {
		s.lastCmd = name
		s.view.cmd.Store(name)
	}
}

// showClient brings the session's view up to date once commands ran, and
// once at the start; the reader calls it before handing replies to the
// outbox, so that a client that read a reply (CLIENT SETNAME's +OK) finds
// its effect in every other connection's CLIENT LIST. It reads the clock
// once per batch of PUBLISHes (idle has a resolution of seconds), not per
// PUBLISH.
func (s *session) showClient() {
	if !s.ran && s.shown.laddr != "" {
		return
	}
	s.ran = false
	s.view.active.Store(time.Now().UnixNano())
	f := s.shown
	if f.laddr == "" {
		f.laddr = s.conn.LocalAddr().String()
	}
	f.addr, f.name, f.libName, f.libVer, f.proto = s.addr, s.name, s.libName, s.libVer, s.proto
	f.tenant, f.user = "", "default"
	if s.ident != nil {
		f.tenant, f.user = s.ident.Tenant, s.ident.User
	}
	if f != s.shown {
		s.setShown(f)
	}
}

// showSubscriptions records for CLIENT LIST that the session holds n
// subscriptions of kind. It is called where they change, before the
// client is told: by subscribe, with the names about to be confirmed; by
// dropSubscription; and after every command but PUBLISH, from what the
// session holds (showCommandEffects).
func (s *session) showSubscriptions(kind upstream.Kind, n int) {
	if s.shown.subs[kind] != n {
		f := s.shown
		f.subs[kind] = n
		s.setShown(f)
	}
}

// showCommandEffects shows what a command other than PUBLISH changed
// (identity, name, protocol, subscriptions) before the next command runs:
// a connection that logged in as another user must not stay in its former
// user's CLIENT LIST, or KILL, for the rest of a pipeline.
func (s *session) showCommandEffects() {
	s.showClient()
	for kind := range s.subs {
		s.showSubscriptions(upstream.Kind(kind), len(s.subs[kind]))
	}
}

func (s *session) setShown(f clientFields) {
	s.shown = f
	s.view.mu.Lock()
	s.view.fields = f
	s.view.mu.Unlock()
}

// subcommandNames maps each subcommand of a container command to its full
// name as Redis reports it in CLIENT LIST (client|list). A subcommand
// Redis does not have is shown as Redis shows it: NULL.
var subcommandNames = func() map[string]map[string]*string {
	lists := map[string][]string{
		"pubsub":  {"channels", "help", "numpat", "numsub", "shardchannels", "shardnumsub"},
		"command": {"count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"},
	}
	for sub := range clientKnown {
		lists["client"] = append(lists["client"], sub)
	}
	for sub := range clientUnsupported {
		lists["client"] = append(lists["client"], sub)
	}
	names := make(map[string]map[string]*string, len(lists))
	for cmd, subs := range lists {
		names[cmd] = make(map[string]*string, len(subs))
		for _, sub := range subs {
			full := cmd + "|" + sub
			names[cmd][sub] = &full
		}
	}
	return names
}()

// fullName is the command's name as CLIENT LIST shows it, without
// allocating: nil (NULL) for an unknown command or subcommand.
func (c *command) fullName(args [][]byte) *string {
	switch {
	case c == nil:
		return nil
	case c.subcommands == nil || len(args) < 2:
		return &c.name
	}
	var buf [16]byte
	sub, ok := lowered(args[1], &buf)
	if !ok {
		return nil
	}
	return c.subcommands[string(sub)]
}

// cmdClient answers CLIENT: settings of the caller's own connection, and
// LIST / INFO / KILL over its own user's connections.
func (s *session) cmdClient(args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	n := len(args)
	switch {
	case sub == "id" && n == 2:
		s.writeInt(s.id)
	case sub == "getname" && n == 2:
		if s.name == "" {
			s.writeNull()
		} else {
			s.writeBulk(s.name)
		}
	case sub == "setname" && n == 3:
		if !validClientName(string(args[2])) {
			s.writeError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		s.name = string(args[2])
		s.writeOK()
	case sub == "setinfo" && n == 4:
		s.clientSetInfo(strings.ToLower(string(args[2])), string(args[3]))
	case sub == "info" && n == 2:
		s.showClient()
		s.writeVerbatim(string(describeClients([]*session{s}, time.Now())))
	case sub == "list":
		s.clientList(args[2:])
	case sub == "kill" && n >= 3:
		s.clientKill(args[2:])
	case sub == "reply" && n == 3:
		s.clientReply(strings.ToLower(string(args[2])))
	case sub == "help" && n == 2:
		s.writeStrings(clientHelp)
	case clientUnsupported[sub]:
		s.writeErrorf("ERR pubgate is a pub/sub proxy: CLIENT %s is not supported", strings.ToUpper(sub))
	case clientKnown[sub]:
		s.writeErrorf("ERR wrong number of arguments for 'client|%s' command", sub)
	default:
		s.writeErrorf("ERR unknown subcommand '%s'. Try CLIENT HELP.", printable(args[1]))
	}
}

var clientHelp = []string{
	"CLIENT <subcommand> [<arg> ...]. pubgate shows and kills only your own user's connections on this node:",
	"ID", "GETNAME", "SETNAME <name>", "SETINFO <LIB-NAME|LIB-VER> <value>",
	"INFO", "LIST [TYPE <NORMAL|PUBSUB>] [ID <id> [<id> ...]]",
	"KILL <ip:port>", "KILL <option> <value> [<option> <value> [...]]",
	"    ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, USER <username>, TYPE <NORMAL|PUBSUB>, SKIPME <YES|NO> (default YES)",
	"REPLY <ON|OFF|SKIP>", "HELP",
}

var clientKnown = map[string]bool{"id": true, "getname": true, "setname": true, "setinfo": true, "info": true, "list": true, "kill": true, "reply": true, "help": true}

var clientUnsupported = map[string]bool{
	"pause": true, "unpause": true, "tracking": true, "trackinginfo": true, "caching": true,
	"getredir": true, "no-evict": true, "no-touch": true, "unblock": true,
}

func (s *session) clientSetInfo(attr, value string) {
	if attr != "lib-name" && attr != "lib-ver" {
		s.writeErrorf("ERR Unrecognized option '%s'", attr)
		return
	}
	if strings.ContainsAny(value, " \r\n") {
		s.writeErrorf("ERR %s cannot contain spaces, newlines or special characters.", strings.ToUpper(attr))
		return
	}
	if attr == "lib-name" {
		s.libName = value
	} else {
		s.libVer = value
	}
	s.writeOK()
}

func (s *session) clientReply(mode string) {
	switch mode {
	case "on":
		s.replyOff, s.mute = false, false
		s.writeOK()
	case "off":
		s.replyOff, s.mute = true, true
	case "skip":
		s.skipNext, s.mute = true, true
	default:
		s.writeError("ERR syntax error")
	}
}

// clientList is CLIENT LIST [TYPE type] | [ID id [id ...]], as Redis 7.0
// parses it: TYPE and ID do not combine; listed IDs come in the order
// given, the others by ID.
func (s *session) clientList(opts [][]byte) {
	s.showClient()
	mine := s.srv.clientsOf(s)
	var list []*session
	switch {
	case len(opts) == 0:
		list = mine
	case len(opts) == 2 && strings.EqualFold(string(opts[0]), "type"):
		typ := clientTypeOf(string(opts[1]))
		if typ == typeUnknown {
			s.writeErrorf("ERR Unknown client type '%s'", printable(opts[1]))
			return
		}
		for _, c := range mine {
			if c.fields().clientType() == typ {
				list = append(list, c)
			}
		}
	case len(opts) >= 2 && strings.EqualFold(string(opts[0]), "id"):
		for _, arg := range opts[1:] {
			id, ok := parseInt(arg)
			if !ok {
				s.writeError("ERR Invalid client ID")
				return
			}
			if i := slices.IndexFunc(mine, func(c *session) bool { return c.id == id }); i >= 0 {
				list = append(list, mine[i])
			}
		}
	default:
		s.writeError("ERR syntax error")
		return
	}
	s.writeVerbatim(string(describeClients(list, time.Now())))
}

// clientType is a connection's type in CLIENT LIST and KILL filters.
type clientType uint8

const (
	typeUnknown clientType = iota
	typeNormal
	typePubSub
	typeOther // Redis's master and replica: no pubgate connection is one
)

// clientTypeOf reads a type name as Redis does.
func clientTypeOf(name string) clientType {
	switch strings.ToLower(name) {
	case "normal":
		return typeNormal
	case "pubsub":
		return typePubSub
	case "master", "replica", "slave":
		return typeOther
	}
	return typeUnknown
}

// killFilter is CLIENT KILL's filters; a zero id, a nil string or
// typeUnknown matches every connection.
type killFilter struct {
	id                int64
	addr, laddr, user *string
	typ               clientType
	skipMe            bool
}

// clientKill is CLIENT KILL, old form (addr) and new form (filters), over
// the caller's own user's connections only.
func (s *session) clientKill(opts [][]byte) {
	old := len(opts) == 1
	f := killFilter{skipMe: !old}
	if old {
		addr := string(opts[0])
		f.addr = &addr
	} else if refusal := f.parse(opts); refusal != "" {
		s.writeError(refusal)
		return
	}
	s.showClient()
	killed := 0
	reason := closeFor(causeKilled, fmt.Sprintf("killed by client %d (CLIENT KILL)", s.id))
	for _, c := range s.srv.clientsOf(s) {
		if !f.matches(c, s) {
			continue
		}
		killed++
		if c == s {
			s.logger().Info("closing connection: " + reason.detail)
			s.forceEnd(reason)
			s.quit = true // after this reply, as Redis closes after replying
			continue
		}
		c.endWith(reason, fmt.Sprintf("ERR pubgate: connection killed by client %d (CLIENT KILL); closing the connection", s.id))
	}
	switch {
	case !old:
		s.writeInt(int64(killed))
	case killed == 0:
		s.writeError("ERR No such client")
	default:
		s.writeOK()
	}
}

// parse reads CLIENT KILL's new form, returning Redis's error reply for a
// malformed one.
func (f *killFilter) parse(opts [][]byte) string {
	if len(opts)%2 != 0 {
		return "ERR syntax error"
	}
	for i := 0; i < len(opts); i += 2 {
		value := string(opts[i+1])
		switch strings.ToLower(string(opts[i])) {
		case "id":
			id, ok := parseInt(opts[i+1])
			if !ok || id < 1 {
				return "ERR client-id should be greater than 0"
			}
			f.id = id
		case "type":
			if f.typ = clientTypeOf(value); f.typ == typeUnknown {
				return fmt.Sprintf("ERR Unknown client type '%s'", printable(opts[i+1]))
			}
		case "addr":
			f.addr = &value
		case "laddr":
			f.laddr = &value
		case "user":
			f.user = &value
		case "skipme":
			switch strings.ToLower(value) {
			case "yes":
				f.skipMe = true
			case "no":
				f.skipMe = false
			default:
				return "ERR syntax error"
			}
		default:
			return "ERR syntax error"
		}
	}
	return ""
}

func (f *killFilter) matches(c, caller *session) bool {
	v := c.fields()
	switch {
	case f.skipMe && c == caller:
		return false
	case f.id != 0 && c.id != f.id:
		return false
	case f.addr != nil && v.addr != *f.addr:
		return false
	case f.laddr != nil && v.laddr != *f.laddr:
		return false
	case f.user != nil && v.user != *f.user:
		return false
	case f.typ != typeUnknown && v.clientType() != f.typ:
		return false
	}
	return true
}

// clientsOf lists, by ID, the connections of caller's user on this node
// (caller's included), leaving out those pubgate is already ending.
func (s *Server) clientsOf(caller *session) []*session {
	if caller.ident == nil {
		return nil
	}
	tenant, user := caller.ident.Tenant, caller.ident.User
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for c := range s.sessions {
		all = append(all, c)
	}
	s.mu.Unlock()
	mine := all[:0]
	for _, c := range all {
		if v := c.fields(); v.tenant == tenant && v.user == user && c.forcedEnd.Load() == nil {
			mine = append(mine, c)
		}
	}
	slices.SortFunc(mine, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	return slices.Clip(mine)
}

// fields is a consistent copy of the session's shown fields, from any
// goroutine.
func (s *session) fields() clientFields {
	s.view.mu.Lock()
	defer s.view.mu.Unlock()
	return s.view.fields
}

// clientType is pubsub while the connection holds a subscription, as in
// Redis, whatever its protocol.
func (f clientFields) clientType() clientType {
	if f.subscribed() {
		return typePubSub
	}
	return typeNormal
}

func (f clientFields) subscribed() bool { return f.subs[0]+f.subs[1]+f.subs[2] > 0 }

// describeClients renders connections as CLIENT LIST does, one line each,
// with Redis 7.2's fields: real where pubgate knows them, neutral where
// the field is about Redis's own machinery (fd, buffers, MULTI, tracking).
// omem (and tot-mem) is what the connection's output queue holds.
func describeClients(list []*session, now time.Time) []byte {
	var b []byte
	for _, c := range list {
		v := c.fields()
		cmd := "NULL"
		if p := c.view.cmd.Load(); p != nil {
			cmd = *p
		}
		idle := now.Sub(c.created)
		if at := c.view.active.Load(); at != 0 {
			idle = now.Sub(time.Unix(0, at))
		}
		flags := "N"
		if v.subscribed() {
			flags = "P"
		}
		omem := c.out.Queued()
		b = fmt.Appendf(b, "id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=0 sub=%d psub=%d ssub=%d multi=-1 "+
			"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=%d tot-mem=%d events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
			c.id, v.addr, v.laddr, v.name, int64(now.Sub(c.created).Seconds()), max(int64(idle.Seconds()), 0), flags,
			v.subs[upstream.KindChannel], v.subs[upstream.KindPattern], v.subs[upstream.KindShard],
			omem, omem, cmd, v.user, v.proto, v.libName, v.libVer)
	}
	return b
}

// writeVerbatim writes a text reply as Redis writes CLIENT LIST and INFO:
// a RESP3 verbatim string ("txt"), a bulk string in RESP2.
func (s *session) writeVerbatim(text string) {
	if s.mute {
		return
	}
	if s.proto != resp3 {
		s.writeBulk(text)
		return
	}
	s.reply = appendHeader(s.reply, '=', len(text)+4)
	s.reply = append(s.reply, "txt:"...)
	s.reply = append(s.reply, text...)
	s.reply = append(s.reply, '\r', '\n')
}
