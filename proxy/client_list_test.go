package proxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/internal/testutil"
	"github.com/pubgate/pubgate/policy"
	"github.com/redis/go-redis/v9"
)

// clientLines parses a CLIENT LIST / INFO reply as RESPConn renders it (a
// quoted bulk or verbatim string) the way redis-py's parse_client_info
// does, strictly: every field is key=value, and the integer fields it
// converts must be there and be integers. It returns the lines by id.
func clientLines(t *testing.T, reply string) map[string]map[string]string {
	t.Helper()
	text, err := strconv.Unquote(reply)
	if err != nil {
		t.Fatalf("CLIENT LIST reply %s: not a string: %v", reply, err)
	}
	lines := map[string]map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		fields := map[string]string{}
		for _, kv := range strings.Split(line, " ") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.Contains(v, "=") {
				t.Fatalf("field %q of %q is not key=value", kv, line)
			}
			fields[k] = v
		}
		for _, k := range []string{"id", "age", "idle", "db", "sub", "psub", "multi", "qbuf", "qbuf-free", "obl", "argv-mem", "oll", "omem", "tot-mem"} {
			if _, err := strconv.Atoi(fields[k]); err != nil {
				t.Fatalf("field %s of %q is not an integer", k, line)
			}
		}
		lines[fields["id"]] = fields
	}
	return lines
}

func clientID(t *testing.T, c *testutil.RESPConn) string {
	t.Helper()
	return strings.TrimPrefix(c.Do("CLIENT", "ID"), ":")
}

// ids lists the ids of CLIENT LIST lines in numeric order.
func ids(lines map[string]map[string]string) []string {
	var out []string
	for id := range lines {
		out = append(out, id)
	}
	return byNumber(out...)
}

func byNumber(ids ...string) []string {
	slices.SortFunc(ids, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return ids
}

// TestClientListGoRedisSubscriberName is go-redis's own pub/sub suite case
// ("should ClientSetName on PubSub connection"): the name set on the
// PubSub connection shows in CLIENT LIST run on another connection of the
// same user.
func TestClientListGoRedisSubscriberName(t *testing.T) {
	env := startProxy(t, nil, nil)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: env.addr, Username: "alice", Password: "alice-secret"})
	t.Cleanup(func() { _ = client.Close() })

	pubsub := client.Subscribe(ctx, "test-channel")
	defer pubsub.Close()
	if _, err := pubsub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pubsub.ClientSetName(ctx, "my-subscriber"); err != nil {
		t.Fatal(err)
	}
	if _, err := pubsub.Receive(ctx); err != nil { // SETNAME's +OK
		t.Fatal(err)
	}
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, "name=my-subscriber") {
		t.Fatalf("CLIENT LIST does not show the subscriber's name:\n%s", list)
	}
}

// TestClientListShowsOnlyTheCallersUser: alice sees her two connections,
// with their real fields, and neither bob's (another tenant) nor those of
// acme's other user; bob sees only his own.
func TestClientListShowsOnlyTheCallersUser(t *testing.T) {
	env := startProxy(t, nil, nil)
	a1, a2 := env.login(t, "alice"), env.login(t, "alice")
	bob, acmeDefault := env.login(t, "bob"), env.login(t, "default")
	a1ID, a2ID, bobID, defaultID := clientID(t, a1), clientID(t, a2), clientID(t, bob), clientID(t, acmeDefault)

	for _, cmd := range [][]string{
		{"CLIENT", "SETNAME", "worker-2"}, {"CLIENT", "SETINFO", "LIB-NAME", "go-redis(x)"}, {"CLIENT", "SETINFO", "LIB-VER", "9.23.0"},
	} {
		if r := a2.Do(cmd...); r != "OK" {
			t.Fatalf("%v: %s", cmd, r)
		}
	}
	if r := a2.Do("SUBSCRIBE", "orders", "invoices"); r != `["subscribe" "orders" :1]` {
		t.Fatalf("SUBSCRIBE: %s", r)
	}
	a2.Read()
	if r := a2.Do("PSUBSCRIBE", "o*"); r != `["psubscribe" "o*" :3]` {
		t.Fatalf("PSUBSCRIBE: %s", r)
	}
	if r := a2.Do("SSUBSCRIBE", "s"); r != `["ssubscribe" "s" :1]` {
		t.Fatalf("SSUBSCRIBE: %s", r)
	}
	_ = bob.Do("HELLO", "3") // RESP3: CLIENT LIST while subscribed, as a verbatim string
	if r := bob.Do("SUBSCRIBE", "orders"); r != `>["subscribe" "orders" :1]` {
		t.Fatalf("bob's SUBSCRIBE: %s", r)
	}

	lines := clientLines(t, a1.Do("CLIENT", "LIST"))
	if got, want := ids(lines), byNumber(a1ID, a2ID); !slices.Equal(got, want) {
		t.Fatalf("alice's CLIENT LIST lists %v, want her own %v (bob %s, acme default %s)", got, want, bobID, defaultID)
	}
	want := map[string]string{
		"addr": a2.Conn.LocalAddr().String(), "laddr": env.addr, "fd": "-1", "name": "worker-2", "db": "0",
		"flags": "P", "sub": "2", "psub": "1", "ssub": "1", "multi": "-1", "cmd": "ssubscribe", "user": "alice",
		"redir": "-1", "resp": "2", "lib-name": "go-redis(x)", "lib-ver": "9.23.0",
	}
	for k, v := range want {
		if got := lines[a2ID][k]; got != v {
			t.Errorf("alice's second connection: %s=%s, want %s (line %v)", k, got, v, lines[a2ID])
		}
	}
	own := lines[a1ID]
	if own["cmd"] != "client|list" || own["idle"] != "0" || own["flags"] != "N" || own["sub"] != "0" || own["name"] != "" {
		t.Errorf("the caller's own line: %v", own)
	}

	if got := ids(clientLines(t, bob.Do("CLIENT", "LIST"))); !slices.Equal(got, []string{bobID}) {
		t.Errorf("bob's CLIENT LIST lists %v, want only %s", got, bobID)
	}
	if got := ids(clientLines(t, acmeDefault.Do("CLIENT", "LIST"))); !slices.Equal(got, []string{defaultID}) {
		t.Errorf("acme's default user's CLIENT LIST lists %v, want only %s", got, defaultID)
	}
	// Asking by ID for another user's connections shows nothing, as if
	// they did not exist.
	if r := a1.Do("CLIENT", "LIST", "ID", bobID, defaultID, a2ID); !strings.HasPrefix(r, `"id=`+a2ID+" ") || strings.Count(r, "id=") != 1 {
		t.Errorf("CLIENT LIST ID %s %s %s: %s", bobID, defaultID, a2ID, r)
	}
	if r := a1.Do("CLIENT", "INFO"); len(clientLines(t, r)) != 1 || clientLines(t, r)[a1ID]["cmd"] != "client|info" {
		t.Errorf("CLIENT INFO: %s", r)
	}

	// A connection that logs in as bob leaves alice's list for bob's.
	if r := a2.Do("UNSUBSCRIBE"); !strings.HasPrefix(r, `["unsubscribe"`) {
		t.Fatalf("UNSUBSCRIBE: %s", r)
	}
	a2.Read()
	_, _ = a2.Do("PUNSUBSCRIBE"), a2.Do("SUNSUBSCRIBE")
	if r := a2.Do("AUTH", "bob", "bob-secret"); r != "OK" {
		t.Fatalf("AUTH bob: %s", r)
	}
	if got := ids(clientLines(t, a1.Do("CLIENT", "LIST"))); !slices.Equal(got, []string{a1ID}) {
		t.Errorf("alice's CLIENT LIST after her second connection became bob's: %v", got)
	}
	if r := a1.Do("CLIENT", "KILL", "ID", a2ID); r != ":0" {
		t.Errorf("alice killing the connection now bob's: %s", r)
	}
	want2 := byNumber(bobID, a2ID)
	if got := ids(clientLines(t, bob.Do("CLIENT", "LIST"))); !slices.Equal(got, want2) {
		t.Errorf("bob's CLIENT LIST: %v, want %v", got, want2)
	}
}

// TestClientListTypeAndIdle: TYPE pubsub lists the connections holding a
// subscription, until they drop them; idle counts from the last command.
func TestClientListTypeAndIdle(t *testing.T) {
	env := startProxy(t, nil, nil)
	a1, a2 := env.login(t, "alice"), env.login(t, "alice")
	a1ID, a2ID := clientID(t, a1), clientID(t, a2)
	bob := env.login(t, "bob")
	_ = bob.Do("SUBSCRIBE", "x")

	if r := a2.Do("PSUBSCRIBE", "p*"); r != `["psubscribe" "p*" :1]` {
		t.Fatalf("PSUBSCRIBE: %s", r)
	}
	if got := ids(clientLines(t, a1.Do("CLIENT", "LIST", "TYPE", "pubsub"))); !slices.Equal(got, []string{a2ID}) {
		t.Errorf("TYPE pubsub lists %v, want %s", got, a2ID)
	}
	if got := ids(clientLines(t, a1.Do("CLIENT", "LIST", "TYPE", "NORMAL"))); !slices.Equal(got, []string{a1ID}) {
		t.Errorf("TYPE normal lists %v, want %s", got, a1ID)
	}
	for _, typ := range []string{"master", "replica", "slave"} {
		if r := a1.Do("CLIENT", "LIST", "TYPE", typ); r != `""` {
			t.Errorf("TYPE %s: %s", typ, r)
		}
	}
	if r := a2.Do("PUNSUBSCRIBE"); r != `["punsubscribe" "p*" :0]` {
		t.Fatalf("PUNSUBSCRIBE: %s", r)
	}
	if r := a1.Do("CLIENT", "LIST", "TYPE", "pubsub"); r != `""` {
		t.Errorf("TYPE pubsub after PUNSUBSCRIBE: %s", r)
	}
	if l := clientLines(t, a1.Do("CLIENT", "LIST", "ID", a2ID))[a2ID]; l["flags"] != "N" || l["psub"] != "0" || l["cmd"] != "punsubscribe" {
		t.Errorf("after PUNSUBSCRIBE: %v", l)
	}

	testutil.Eventually(t, "a2 idle for a second", func() bool {
		idle, _ := strconv.Atoi(clientLines(t, a1.Do("CLIENT", "LIST", "ID", a2ID))[a2ID]["idle"])
		return idle >= 1
	})
	_ = a2.Do("PING")
	if l := clientLines(t, a1.Do("CLIENT", "LIST", "ID", a2ID))[a2ID]; l["idle"] != "0" || l["cmd"] != "ping" {
		t.Errorf("after PING: idle=%s cmd=%s", l["idle"], l["cmd"])
	}
	age, _ := strconv.Atoi(clientLines(t, a1.Do("CLIENT", "LIST", "ID", a2ID))[a2ID]["age"])
	if age < 1 {
		t.Errorf("age %d after idling a second", age)
	}
}

// TestClientListAndKillErrors: Redis's replies to malformed CLIENT LIST and
// CLIENT KILL.
func TestClientListAndKillErrors(t *testing.T) {
	env := startProxy(t, nil, nil)
	c := env.login(t, "alice")
	for cmd, want := range map[string]string{
		"CLIENT LIST TYPE":          "-ERR syntax error",
		"CLIENT LIST ID":            "-ERR syntax error",
		"CLIENT LIST foo":           "-ERR syntax error",
		"CLIENT LIST TYPE normal x": "-ERR syntax error",
		"CLIENT LIST TYPE bogus":    "-ERR Unknown client type 'bogus'",
		"CLIENT LIST ID 1 x":        "-ERR Invalid client ID",
		"CLIENT INFO x":             "-ERR wrong number of arguments for 'client|info' command",
		"CLIENT KILL":               "-ERR wrong number of arguments for 'client|kill' command",
		"CLIENT KILL 1.2.3.4:5":     "-ERR No such client",
		"CLIENT KILL ID 0":          "-ERR client-id should be greater than 0",
		"CLIENT KILL ID x":          "-ERR client-id should be greater than 0",
		"CLIENT KILL TYPE bogus":    "-ERR Unknown client type 'bogus'",
		"CLIENT KILL SKIPME maybe":  "-ERR syntax error",
		"CLIENT KILL FOO bar":       "-ERR syntax error",
		"CLIENT KILL ID 1 SKIPME":   "-ERR syntax error",
		"CLIENT KILL TYPE master":   ":0",
		"CLIENT KILL USER alice":    ":0", // SKIPME yes by default
	} {
		if got := c.Do(strings.Fields(cmd)...); got != want {
			t.Errorf("%s: %s, want %s", cmd, got, want)
		}
	}
	// An empty address names no connection.
	other := env.login(t, "alice")
	if got := c.Do("CLIENT", "KILL", ""); got != "-ERR No such client" {
		t.Errorf(`CLIENT KILL "": %s`, got)
	}
	if got := c.Do("CLIENT", "KILL", "ADDR", "", "SKIPME", "no"); got != ":0" {
		t.Errorf(`CLIENT KILL ADDR "" SKIPME no: %s`, got)
	}
	if got := other.Do("PING"); got != "PONG" {
		t.Errorf("alice's other connection: %s", got)
	}
}

// TestClientKill: alice kills her own connections, by every filter; bob's
// connections are out of her reach, whatever she names, and stay up. The
// killed connection is told why and its disconnect is audited as forced,
// naming the killer.
func TestClientKill(t *testing.T) {
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) { o.Audit = rec })
	a1, a2 := env.login(t, "alice"), env.login(t, "alice")
	bob := env.login(t, "bob")
	a1ID, a2ID, bobID := clientID(t, a1), clientID(t, a2), clientID(t, bob)
	bobAddr := bob.Conn.LocalAddr().String()

	for _, cmd := range [][]string{
		{"CLIENT", "KILL", "ID", bobID}, {"CLIENT", "KILL", "ADDR", bobAddr}, {"CLIENT", "KILL", "USER", "bob"},
		{"CLIENT", "KILL", "USER", "bob", "SKIPME", "no"}, {"CLIENT", "KILL", "TYPE", "normal", "ID", bobID},
	} {
		if r := a1.Do(cmd...); r != ":0" {
			t.Errorf("%v: %s, want :0", cmd, r)
		}
	}
	if r := a1.Do("CLIENT", "KILL", bobAddr); r != "-ERR No such client" {
		t.Errorf("CLIENT KILL %s (old form): %s", bobAddr, r)
	}
	if r := bob.Do("PING"); r != "PONG" {
		t.Fatalf("bob after alice's attempts: %s", r)
	}

	if r := a1.Do("CLIENT", "KILL", "ID", a2ID, "USER", "alice", "ADDR", a2.Conn.LocalAddr().String(), "LADDR", env.addr); r != ":1" {
		t.Fatalf("CLIENT KILL ID %s: %s", a2ID, r)
	}
	if r, err := a2.TryRead(10 * time.Second); err != nil || r != "-ERR pubgate: connection killed by client "+a1ID+" (CLIENT KILL); closing the connection" {
		t.Errorf("the killed connection read %q, %v", r, err)
	}
	if !a2.Closed() {
		t.Error("the killed connection is still open")
	}
	reason := "killed by client " + a1ID + " (CLIENT KILL)"
	testutil.Eventually(t, "the kill audited", func() bool {
		for _, r := range rec.find(audit.EventDisconnect, "") {
			if fmt.Sprint(r.ClientID) == a2ID {
				return r.Forced && r.Reason == reason && r.User == "alice"
			}
		}
		return false
	})
	if r := bob.Do("PING"); r != "PONG" {
		t.Errorf("bob: %s", r)
	}

	// The old form can kill the caller itself: the reply comes first.
	a3 := env.login(t, "alice")
	if r := a3.Do("CLIENT", "KILL", a3.Conn.LocalAddr().String()); r != "OK" {
		t.Fatalf("CLIENT KILL own address: %s", r)
	}
	if !a3.Closed() {
		t.Error("a connection that killed itself is still open")
	}
	// SKIPME no, likewise.
	a4 := env.login(t, "alice")
	if r := a4.Do("CLIENT", "KILL", "USER", "alice", "SKIPME", "no"); r != ":2" {
		t.Fatalf("CLIENT KILL USER alice SKIPME no: %s", r)
	}
	if !a4.Closed() || !a1.Closed() {
		t.Error("SKIPME no left a connection of alice open")
	}
	if r := bob.Do("PING"); r != "PONG" {
		t.Errorf("bob: %s", r)
	}
}

// TestClientInfoGoRedisParser: go-redis parses pubgate's CLIENT INFO (its
// ClientInfo) and a CLIENT LIST line, and kills through its own API.
func TestClientInfoGoRedisParser(t *testing.T) {
	env := startProxy(t, nil, nil)
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: env.addr, Username: "alice", Password: "alice-secret",
				Protocol: proto, ClientName: "svc", PoolSize: 1})
			t.Cleanup(func() { _ = rdb.Close() })
			info, err := rdb.ClientInfo(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if info.ID == 0 || info.Name != "svc" || info.User != "alice" || info.Resp != proto || info.LastCmd != "client|info" ||
				info.LAddr != env.addr || info.Multi != -1 || info.Redir != -1 || !strings.HasPrefix(info.LibName, "go-redis") || info.LibVer == "" {
				t.Errorf("ClientInfo: %+v", info)
			}

			sub := env.login(t, "alice")
			subID := clientID(t, sub)
			_ = sub.Do("SUBSCRIBE", "a", "b")
			sub.Read()
			line := redis.NewClientInfoCmd(ctx, "client", "list", "id", subID)
			if err := rdb.Process(ctx, line); err != nil {
				t.Fatal(err)
			}
			got := line.Val()
			if fmt.Sprint(got.ID) != subID || got.Sub != 2 || got.Flags&redis.ClientPubSub == 0 || got.LastCmd != "subscribe" || got.Addr != sub.Conn.LocalAddr().String() {
				t.Errorf("CLIENT LIST ID %s through go-redis's parser: %+v", subID, got)
			}
			if n, err := rdb.ClientKillByFilter(ctx, "ID", subID).Result(); err != nil || n != 1 {
				t.Errorf("ClientKillByFilter ID %s: %d, %v", subID, n, err)
			}
			other := env.login(t, "alice")
			if err := rdb.ClientKill(ctx, other.Conn.LocalAddr().String()).Err(); err != nil {
				t.Errorf("ClientKill: %v", err)
			}
			if !sub.Closed() || !other.Closed() {
				t.Error("a killed connection is still open")
			}
		})
	}
}

// TestClientListShowsSilentConnections: a connection bound to the default
// user is listed before it sends anything.
func TestClientListShowsSilentConnections(t *testing.T) {
	env := startProxy(t, nil, func(o *Options) { o.DefaultUser = &authIdentityAlice })
	silent := testutil.DialRESP(t, env.addr)
	caller := env.login(t, "alice")
	testutil.Eventually(t, "the silent connection listed", func() bool {
		lines := clientLines(t, caller.Do("CLIENT", "LIST"))
		for _, l := range lines {
			if l["addr"] == silent.Conn.LocalAddr().String() {
				return l["cmd"] == "NULL" && l["user"] == "alice"
			}
		}
		return false
	})
}

// TestClientListCountsRevokedSubscriptions: subscriptions a policy reload
// revokes leave the counts CLIENT LIST shows by the time the client reads
// their unsubscribe notices. It needs dropSubscription to call
// showSubscriptions: a revocation is not a command of the client's.
func TestClientListCountsRevokedSubscriptions(t *testing.T) {
	dir := t.TempDir()
	write := func(rego string) {
		if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package pubgate.authz\n"+rego), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("allow := true\n")
	env, authz := startPolicyProxy(t, rewriteShared, nil, dir)
	authz.OnReload(func(r policy.ReloadResult) {
		if r.Changed() {
			env.srv.Recheck()
		}
	})
	sub := env.loginWith(t, "alice", "alice-secret")
	subID := clientID(t, sub)
	sub.Do("SUBSCRIBE", "keep", "drop.a")
	sub.Read()
	caller := env.loginWith(t, "alice", "alice-secret")

	write("allow if not startswith(input.channel, \"drop\")\n")
	if _, err := authz.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, sub, `["unsubscribe" "drop.a" :1]`)
	if l := clientLines(t, caller.Do("CLIENT", "LIST", "ID", subID))[subID]; l["sub"] != "1" || l["flags"] != "P" {
		t.Errorf("after the revocation: sub=%s flags=%s, want sub=1 flags=P", l["sub"], l["flags"])
	}
}
