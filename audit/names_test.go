package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestValidNamesEncodeAsBefore pins the bytes of records whose names are
// UTF-8 (ASCII, accented, a literal U+FFFD, JSON escapes): they were
// written so before *_b64 members existed, and must stay so, hash included.
func TestValidNamesEncodeAsBefore(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	records := []Record{
		{Time: at, Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice", AuthMethod: "password",
			ClientID: 42, ClientAddr: "127.0.0.1:50312", ClientName: "worker-1", Action: "subscribe", Channel: "orders.eu", Revision: "3089772db610"},
		{Time: at, Event: EventAuthz, Outcome: Deny, Tenant: "acme", User: "élodie", ClientID: 43, ClientAddr: "[::1]:6000",
			Action: "publish", Channel: "commandes.été.\ufffd\"\\\t", Reason: "channel not allowed"},
		{Time: at, Event: EventAuth, Outcome: Failure, User: "bob", Reason: "invalid credentials"},
	}
	want := []string{
		`{"ts":"2026-03-01T12:00:00.123456789Z","event":"authz","seq":1,"outcome":"allow","tenant":"acme","user":"alice","auth_method":"password","client":{"id":42,"addr":"127.0.0.1:50312","name":"worker-1"},"action":"subscribe","channel":"orders.eu","policy_revision":"3089772db610","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"df42fc4f39c6253de7ef7e5f51667b98bc1437e23a0df7b4c3ca5b992d6f457b"}`,
		`{"ts":"2026-03-01T12:00:00.123456789Z","event":"authz","seq":2,"outcome":"deny","tenant":"acme","user":"élodie","client":{"id":43,"addr":"[::1]:6000"},"action":"publish","channel":"commandes.été.�\"\\\t","reason":"channel not allowed","prev":"df42fc4f39c6253de7ef7e5f51667b98bc1437e23a0df7b4c3ca5b992d6f457b","hash":"1d2c06ba16fe00449456230d288fc1a204792c8e47f4b5d410b0a8e9f1d85a14"}`,
		`{"ts":"2026-03-01T12:00:00.123456789Z","event":"auth","seq":3,"outcome":"failure","user":"bob","reason":"invalid credentials","prev":"1d2c06ba16fe00449456230d288fc1a204792c8e47f4b5d410b0a8e9f1d85a14","hash":"5e1efacf05fede8947a25aaa21a8f16bd1eeb02751619a9dce13a2a5bf5602ea"}`,
	}
	c := newChain(testKey)
	for i := range records {
		line := c.next(nil, &records[i])
		if got := string(line); got != want[i]+"\n" {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want[i])
		}
		if strings.Contains(string(line), "_b64") {
			t.Errorf("record %d has a *_b64 member: %s", i, line)
		}
	}
}

// Two channels that are not UTF-8 and differ only in those bytes: both
// read "f1\ufffd\ufffd" as JSON strings, and must still be told apart.
const (
	chanA = "f1\xff\xfe"
	chanB = "f1\xe2\x82" // a truncated "€"
)

// writeNonUTF8Log writes, through a real Logger, one authz record per
// channel in chanA and chanB (bob, whose name is not UTF-8 either, on a
// connection named so, publishes to chanA), and returns the file and its
// lines.
func writeNonUTF8Log(t *testing.T) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, nil)
	for _, r := range []Record{
		{Time: time.Now(), Event: EventAuthz, Outcome: Deny, Tenant: "acme", User: "bob\xff", AuthMethod: "password",
			ClientID: 7, ClientAddr: "10.0.0.5:4000", ClientName: "w\xc0", Action: "publish", Channel: chanA, Reason: "channel not allowed"},
		{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice",
			ClientID: 8, ClientAddr: "10.0.0.6:4000", Action: "publish", Channel: chanB},
	} {
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ls []string
	for _, l := range lines(t, path) {
		ls = append(ls, strings.TrimSuffix(string(l), "\n"))
	}
	if len(ls) != 4 { // audit_start, the two records, the seal
		t.Fatalf("%d records:\n%s", len(ls), strings.Join(ls, "\n"))
	}
	return path, ls
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestNonUTF8NamesAreRecordedExactly(t *testing.T) {
	path, ls := writeNonUTF8Log(t)
	a, b := ls[1], ls[2]

	// The lossy string stays, for grep and people; the exact bytes follow it.
	if w := `"channel":"f1\ufffd\ufffd","channel_b64":"ZjH//g=="`; !strings.Contains(a, w) {
		t.Errorf("first record lacks %s:\n%s", w, a)
	}
	if w := `"channel":"f1\ufffd\ufffd","channel_b64":"ZjHigg=="`; !strings.Contains(b, w) {
		t.Errorf("second record lacks %s:\n%s", w, b)
	}
	if w := `"user":"bob\ufffd","user_b64":"` + b64("bob\xff") + `"`; !strings.Contains(a, w) {
		t.Errorf("first record lacks %s:\n%s", w, a)
	}
	if w := `"name":"w\ufffd","name_b64":"` + b64("w\xc0") + `"`; !strings.Contains(a, w) {
		t.Errorf("first record lacks %s:\n%s", w, a)
	}
	if strings.Contains(b, "user_b64") || strings.Contains(b, "name_b64") {
		t.Errorf("a UTF-8 name got a *_b64 member:\n%s", b)
	}

	// Keys stay in schema order, each *_b64 right after its name.
	wantKeys := []string{"ts", "event", "seq", "outcome", "tenant", "user", "user_b64", "auth_method", "client",
		"action", "channel", "channel_b64", "reason", "prev", "hash"}
	if got := keys(t, a, ""); !slices.Equal(got, wantKeys) {
		t.Errorf("keys %v\nwant %v", got, wantKeys)
	}
	if got := keys(t, a, "client"); !slices.Equal(got, []string{"id", "addr", "name", "name_b64"}) {
		t.Errorf("client keys %v", got)
	}

	// The bytes come back from the JSON alone, as jq -r .channel_b64 | base64 -d would.
	for i, want := range []string{chanA, chanB} {
		var m struct {
			Channel    string `json:"channel"`
			ChannelB64 string `json:"channel_b64"`
		}
		if err := json.Unmarshal([]byte(ls[i+1]), &m); err != nil {
			t.Fatal(err)
		}
		got, err := base64.StdEncoding.DecodeString(m.ChannelB64)
		if err != nil || string(got) != want {
			t.Errorf("record %d: channel_b64 decodes to %q (%v), want %q", i+1, got, err, want)
		}
		if m.Channel != "f1\ufffd\ufffd" {
			t.Errorf("record %d: lossy channel %q", i+1, m.Channel)
		}
	}

	// The members are in the chain: the log verifies, and swapping one
	// record's bytes for the other's is an alteration.
	mustVerify(t, path)
	forged := slices.Clone(ls)
	forged[1] = strings.Replace(forged[1], "ZjH//g==", "ZjHigg==", 1)
	var forgedLines [][]byte
	for _, l := range forged {
		forgedLines = append(forgedLines, []byte(l+"\n"))
	}
	writeLines(t, path, forgedLines)
	var p *Problem
	if _, err := Verify(testKey, []string{path}); !errors.As(err, &p) || p.Line != 2 || !strings.Contains(p.Why, "hash does not match") {
		t.Fatalf("a swapped channel_b64: %v", err)
	}
}

// keys lists the members of the line's object, or of its member named in, in order.
func keys(t *testing.T, line, in string) []string {
	t.Helper()
	var raw json.RawMessage = []byte(line)
	if in != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		raw = m[in]
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestQueryMatchesExactNames(t *testing.T) {
	path, _ := writeNonUTF8Log(t)
	query := func(f Filter) []*Entry {
		t.Helper()
		var out []*Entry
		if err := Query([]string{path}, f, func(_ []byte, e *Entry) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name string
		f    Filter
		want []string // the channels selected
	}{
		{"glob on the first's bytes", Filter{Channel: "f1\xff*"}, []string{chanA}},
		{"the first exactly", Filter{Channel: chanA}, []string{chanA}},
		{"the second exactly", Filter{Channel: chanB}, []string{chanB}},
		{"? is one byte", Filter{Channel: "f1??"}, []string{chanA, chanB}},
		{"a set of bytes", Filter{Channel: "f1[\xe0-\xef]*"}, []string{chanB}},
		{"both", Filter{Channel: "f1*"}, []string{chanA, chanB}},
		{"the lossy string is not the name", Filter{Channel: "f1\ufffd\ufffd"}, nil},
		{"the user's bytes", Filter{User: []string{"bob\xff"}}, []string{chanA}},
		{"the user's lossy string", Filter{User: []string{"bob\ufffd"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, e := range query(c.f) {
				got = append(got, e.Channel)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("selected %q, want %q", got, c.want)
			}
		})
	}
	// A read-back entry holds the exact names, and the members as written.
	e := query(Filter{Channel: chanA})[0]
	if e.User != "bob\xff" || e.Client == nil || e.Client.Name != "w\xc0" || e.ChannelB64 != "ZjH//g==" {
		t.Errorf("entry %+v, client %+v", e, e.Client)
	}
}

func TestQueryReportsABadB64Member(t *testing.T) {
	files := writeLog(t, t.TempDir(), 3, 0)
	ls := lines(t, files[0])
	ls[2] = bytes.Replace(ls[2], []byte(`"channel":`), []byte(`"channel_b64":"not base64!","channel":`), 1)
	writeLines(t, files[0], ls)
	var p *Problem
	err := Query(files, Filter{}, func([]byte, *Entry) error { return nil })
	if !errors.As(err, &p) || p.Line != 3 || !strings.Contains(p.Why, "channel_b64 is not standard base64") {
		t.Fatalf("got %v", err)
	}
}

func TestTableQuotesAmbiguousNames(t *testing.T) {
	var buf bytes.Buffer
	tab := NewTable(&buf)
	names := []struct{ user, channel, want string }{
		{"bob\xff", chanA, `"f1\xff\xfe"`},
		{"alice", chanB, `"f1\xe2\x82"`},
		{"alice", "f1\ufffd\ufffd", "f1\ufffd\ufffd"}, // valid UTF-8: as it is
		{"alice", "orders.été", "orders.été"},
		{"alice", "a\tb", `"a\tb"`},
		{"alice", "-", `"-"`},
		{"alice", `"f1\xff\xfe"`, `"\"f1\\xff\\xfe\""`},
	}
	for _, n := range names {
		tab.Add(&Entry{Seq: 1, Event: EventAuthz, User: n.user, Channel: n.channel})
	}
	if err := tab.Flush(); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")[1:]
	for i, n := range names {
		f := strings.Fields(rows[i])
		if got := f[len(f)-2]; got != n.want {
			t.Errorf("channel %q shown as %s, want %s", n.channel, got, n.want)
		}
	}
	if f := strings.Fields(rows[0]); f[5] != `"bob\xff"` {
		t.Errorf("user shown as %s", f[5])
	}
}
