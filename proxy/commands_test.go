package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// step sends one command (split on spaces; "”" is an empty argument) and
// expects the rendered replies in order.
// A leading "~" accepts the replies in any order (a push and a reply).
type step struct {
	send string
	want []string
}

func args(cmd string) []string {
	parts := strings.Fields(cmd)
	for i, p := range parts {
		if p == "''" {
			parts[i] = ""
		}
	}
	return parts
}

const notInSubscribe = "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"

var helloNoAuth = "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"

func hello(proto string) string {
	if proto == "3" {
		return `{"server": "redis", "version": "7.0.0", "proto": :3, "id": :1, "mode": "standalone", "role": "master", "modules": []}`
	}
	return `["server" "redis" "version" "7.0.0" "proto" :2 "id" :1 "mode" "standalone" "role" "master" "modules" []]`
}

// TestCommandSurface checks, reply for reply, what a client sees from each
// command pubgate serves, in the order Redis checks things.
func TestCommandSurface(t *testing.T) {
	cases := map[string][]step{
		"unauthenticated may only AUTH/HELLO/PING/QUIT/RESET": {
			{"SUBSCRIBE a", []string{"-NOAUTH Authentication required."}},
			{"PUBLISH a b", []string{"-NOAUTH Authentication required."}},
			{"ECHO x", []string{"-NOAUTH Authentication required."}},
			{"PING", []string{"PONG"}},
			{"HELLO 3", []string{helloNoAuth}},
			{"RESET", []string{"RESET"}},
			{"QUIT", []string{"OK"}},
		},
		"AUTH": {
			{"AUTH alice wrong", []string{"-WRONGPASS invalid username-password pair or user is disabled."}},
			{"AUTH nobody alice-secret", []string{"-WRONGPASS invalid username-password pair or user is disabled."}},
			{"AUTH a b c", []string{"-ERR syntax error"}},
			{"AUTH", []string{"-ERR wrong number of arguments for 'auth' command"}},
			{"AUTH alice-secret", []string{"OK"}}, // one argument: the user named default
			{"AUTH alice alice-secret", []string{"OK"}},
			{"AUTH alice wrong", []string{"-WRONGPASS invalid username-password pair or user is disabled."}},
			{"PING", []string{"PONG"}}, // a failed re-AUTH keeps the identity
		},
		"HELLO": {
			{"HELLO 4", []string{"-NOPROTO unsupported protocol version"}},
			{"HELLO x", []string{"-ERR Protocol version is not an integer or out of range"}},
			{"HELLO 3 AUTH alice wrong", []string{"-WRONGPASS invalid username-password pair or user is disabled."}},
			{"HELLO 3 AUTH alice", []string{"-ERR Syntax error in HELLO option 'AUTH'"}},
			{"HELLO 3 AUTH alice alice-secret SETNAME my-app", []string{hello("3")}},
			{"CLIENT GETNAME", []string{`"my-app"`}},
			{"HELLO 2", []string{hello("2")}},
			{"HELLO", []string{hello("2")}},
			{"HELLO 3 SETNAME bad\x01name", []string{"-ERR Client names cannot contain spaces, newlines or special characters."}},
		},
		"connection commands": {
			{"AUTH alice alice-secret", []string{"OK"}},
			{"PING hello", []string{`"hello"`}},
			{"PING a b", []string{"-ERR wrong number of arguments for 'ping' command"}},
			{"ECHO ''", []string{`""`}},
			{"SELECT 0", []string{"OK"}},
			{"SELECT 1", []string{"-ERR pubgate is a pub/sub proxy: only database 0 exists (pub/sub does not depend on the database)"}},
			{"SELECT x", []string{"-ERR value is not an integer or out of range"}},
			{"GET x", []string{"-ERR pubgate is a pub/sub proxy: command 'GET' is not supported"}},
			{"FLUSHALL", []string{"-ERR pubgate is a pub/sub proxy: command 'FLUSHALL' is not supported"}},
			{"CLIENT ID", []string{":1"}},
			{"CLIENT GETNAME", []string{"nil"}},
			{"CLIENT SETNAME a b", []string{"-ERR wrong number of arguments for 'client|setname' command"}},
			{"CLIENT SETNAME svc-1", []string{"OK"}},
			{"CLIENT GETNAME", []string{`"svc-1"`}},
			{"CLIENT SETINFO LIB-NAME go-redis", []string{"OK"}},
			{"CLIENT SETINFO lib-ver 9.0", []string{"OK"}},
			{"CLIENT SETINFO color red", []string{"-ERR Unrecognized option 'color'"}},
			{"CLIENT KILL ID 7", []string{":0"}},
			{"CLIENT PAUSE 10", []string{"-ERR pubgate is a pub/sub proxy: CLIENT PAUSE is not supported"}},
			{"CLIENT FOO", []string{"-ERR unknown subcommand 'FOO'. Try CLIENT HELP."}},
			{"CLIENT REPLY SKIP", nil},
			{"PING", nil},
			{"CLIENT REPLY OFF", nil},
			{"PING", nil},
			{"PUBLISH a b", nil},
			{"CLIENT REPLY ON", []string{"OK"}},
			{"ECHO back", []string{`"back"`}},
			{"COMMAND COUNT", []string{":19"}},
			{"COMMAND INFO get ping", []string{`[nil ["ping" :-1 [fast] :0 :0 :0 [@connection] [] [] []]]`}},
			{"COMMAND DOCS", []string{"[]"}},
			{"COMMAND NOPE", []string{"-ERR unknown subcommand or wrong number of arguments for 'NOPE'. Try COMMAND HELP."}},
		},
		"RESP2 subscribe mode": {
			{"AUTH alice alice-secret", []string{"OK"}},
			{"SUBSCRIBE a b", []string{`["subscribe" "a" :1]`, `["subscribe" "b" :2]`}},
			{"SUBSCRIBE a", []string{`["subscribe" "a" :2]`}},
			{"PSUBSCRIBE p*", []string{`["psubscribe" "p*" :3]`}},
			{"SSUBSCRIBE s", []string{`["ssubscribe" "s" :1]`}},
			{"GET x", []string{"-ERR pubgate is a pub/sub proxy: command 'GET' is not supported"}},
			{"PUBLISH a b", []string{strings.Replace(notInSubscribe, "%s", "publish", 1)}},
			{"ECHO x", []string{strings.Replace(notInSubscribe, "%s", "echo", 1)}},
			{"PING", []string{`["pong" ""]`}},
			{"PING hi", []string{`["pong" "hi"]`}},
			{"UNSUBSCRIBE a nope", []string{`["unsubscribe" "a" :2]`, `["unsubscribe" "nope" :2]`}},
			{"SUNSUBSCRIBE", []string{`["sunsubscribe" "s" :0]`}},
			{"SUNSUBSCRIBE", []string{`["sunsubscribe" nil :0]`}},
			{"PUNSUBSCRIBE p*", []string{`["punsubscribe" "p*" :1]`}},
			{"UNSUBSCRIBE", []string{`["unsubscribe" "b" :0]`}},
			{"ECHO x", []string{`"x"`}},
		},
		"RESP3 allows commands while subscribed": {
			{"HELLO 3 AUTH alice alice-secret", []string{hello("3")}},
			{"SUBSCRIBE a", []string{`>["subscribe" "a" :1]`}},
			{"PING", []string{"PONG"}},
			{"ECHO x", []string{`"x"`}},
			{"~PUBLISH a hi", []string{`>["message" "a" "hi"]`, ":1"}},
			{"CLIENT GETNAME", []string{"nil"}},
			{"UNSUBSCRIBE", []string{`>["unsubscribe" "a" :0]`}},
			{"UNSUBSCRIBE", []string{`>["unsubscribe" nil :0]`}},
		},
		"RESET forgets identity, protocol and subscriptions": {
			{"HELLO 3 AUTH alice alice-secret", []string{hello("3")}},
			{"CLIENT SETNAME n", []string{"OK"}},
			{"SUBSCRIBE a", []string{`>["subscribe" "a" :1]`}},
			{"RESET", []string{"RESET"}},
			{"CLIENT GETNAME", []string{"-NOAUTH Authentication required."}},
			{"AUTH alice alice-secret", []string{"OK"}},
			{"CLIENT GETNAME", []string{"nil"}},
			{"PUBLISH a x", []string{":0"}},
		},
		"CLIENT REPLY OFF|SKIP still confirms (un)subscriptions, as Redis does": {
			{"HELLO 3 AUTH alice alice-secret", []string{hello("3")}},
			{"CLIENT REPLY SKIP", nil},
			{"SUBSCRIBE a", []string{`>["subscribe" "a" :1]`}},
			{"CLIENT REPLY OFF", nil},
			{"SUBSCRIBE b", []string{`>["subscribe" "b" :2]`}},
			{"UNSUBSCRIBE a", []string{`>["unsubscribe" "a" :1]`}},
			{"PING", nil},
			{"RESET", []string{"RESET"}}, // RESET ends OFF, and answers
			{"CLIENT REPLY SKIP", []string{"-NOAUTH Authentication required."}},
			{"AUTH alice alice-secret", []string{"OK"}},
			{"CLIENT REPLY SKIP", nil},
			{"RESET", nil}, // but a skipped RESET stays silent
		},
		"numbers are parsed as strictly as Redis does": {
			{"HELLO +3", []string{"-ERR Protocol version is not an integer or out of range"}},
			{"HELLO 03", []string{"-ERR Protocol version is not an integer or out of range"}},
			{"AUTH alice alice-secret", []string{"OK"}},
			{"SELECT +0", []string{"-ERR value is not an integer or out of range"}},
			{"SELECT 00", []string{"-ERR value is not an integer or out of range"}},
			{"SELECT -0", []string{"-ERR value is not an integer or out of range"}},
		},
		"argument errors": {
			{"AUTH alice alice-secret", []string{"OK"}},
			{"SUBSCRIBE", []string{"-ERR wrong number of arguments for 'subscribe' command"}},
			{"PUBLISH a", []string{"-ERR wrong number of arguments for 'publish' command"}},
			{"ECHO", []string{"-ERR wrong number of arguments for 'echo' command"}},
			{"PUBSUB", []string{"-ERR wrong number of arguments for 'pubsub' command"}},
			{"PUBSUB FOO", []string{"-ERR unknown subcommand 'FOO'. Try PUBSUB HELP."}},
			{"PUBSUB NUMPAT x", []string{"-ERR wrong number of arguments for 'pubsub|numpat' command"}},
		},
		"publish counts and introspection": {
			{"AUTH alice alice-secret", []string{"OK"}},
			{"PUBLISH orders x", []string{":0"}},
			{"PUBSUB NUMSUB orders", []string{`["orders" :0]`}},
			{"PUBSUB CHANNELS", []string{"[]"}},
			{"PUBSUB NUMPAT", []string{":0"}},
			{"PUBSUB SHARDNUMSUB s", []string{`["s" :0]`}},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			env := startProxy(t, nil, nil)
			c := testutil.DialRESP(t, env.addr)
			for _, st := range steps {
				unordered := strings.HasPrefix(st.send, "~")
				c.Send(args(strings.TrimPrefix(st.send, "~"))...)
				got := make([]string, len(st.want))
				for i := range got {
					got[i] = c.Read()
				}
				if unordered {
					slices.Sort(got)
					slices.Sort(st.want)
				}
				if !slices.Equal(got, st.want) {
					t.Fatalf("%s:\n got %s\nwant %s", st.send, got, st.want)
				}
			}
			if steps[len(steps)-1].send == "QUIT" {
				if !c.Closed() {
					t.Fatal("connection still open after QUIT")
				}
				return
			}
			expectQuiet(t, c) // nothing else may be pending

		})
	}
}
