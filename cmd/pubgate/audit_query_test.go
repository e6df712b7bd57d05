package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
)

// writeAuditLog writes a small log through the real Logger: an old
// session of alice's and two recent authorizations. With audit_start and
// the closing seal, it holds 8 records.
func writeAuditLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := audit.OpenFile(audit.FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(audit.Options{Key: []byte("a key of at least thirty-two bytes, for tests"), File: file})
	if err != nil {
		t.Fatal(err)
	}
	old, now := time.Now().Add(-2*time.Hour), time.Now()
	records := []audit.Record{
		{Time: old, Event: audit.EventConnect, Outcome: audit.Success, ClientID: 1, ClientAddr: "10.0.0.5:4000"},
		{Time: old, Event: audit.EventAuth, Outcome: audit.Success, Tenant: "acme", User: "alice", AuthMethod: "password",
			ClientID: 1, ClientAddr: "10.0.0.5:4000"},
		{Time: old, Event: audit.EventAuthz, Outcome: audit.Allow, Tenant: "acme", User: "alice",
			ClientID: 1, ClientAddr: "10.0.0.5:4000", Action: "subscribe", Channel: "orders.eu"},
		{Time: now, Event: audit.EventAuthz, Outcome: audit.Deny, Tenant: "globex", User: "bob",
			ClientID: 2, ClientAddr: "10.0.0.6:5000", Action: "publish", Channel: "secret.x", Reason: "channel not allowed"},
		{Time: now, Event: audit.EventAuthz, Outcome: audit.Allow, Tenant: "acme", User: "alice",
			ClientID: 3, ClientAddr: "10.0.0.5:4001", Action: "publish", Channel: "orders.us"},
		{Time: now, Event: audit.EventDisconnect, Tenant: "acme", User: "alice", ClientID: 1, ClientAddr: "10.0.0.5:4000"},
	}
	for _, r := range records {
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditQueryJSONIsTheLogsLines(t *testing.T) {
	path := writeAuditLog(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		var e audit.Entry
		if json.Unmarshal(line, &e) == nil && e.Event == audit.EventAuthz {
			want = append(want, line...)
		}
	}
	code, out, errOut := runCLI(t, "", "audit", "query", "--event", "authz", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != string(want) || strings.Count(out, "\n") != 3 {
		t.Fatalf("output is not the log's authz lines:\n got %s\nwant %s", out, want)
	}
	// No filter: the whole log, byte for byte.
	if _, out, _ := runCLI(t, "", "audit", "query", path); out != string(data) {
		t.Fatalf("unfiltered output differs from the log:\n%s", out)
	}
}

func TestAuditQueryTable(t *testing.T) {
	path := writeAuditLog(t)
	code, out, errOut := runCLI(t, "", "audit", "query", "--format", "table", "--outcome", "deny", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 2 {
		t.Fatalf("want a header and one row:\n%s", out)
	}
	if got := strings.Fields(rows[0]); strings.Join(got, " ") != "TIME SEQ EVENT OUTCOME TENANT USER CLIENT ACTION CHANNEL REASON" {
		t.Errorf("header %q", rows[0])
	}
	got := strings.Fields(rows[1])
	want := []string{"5", "authz", "deny", "globex", "bob", "10.0.0.6:5000", "publish", "secret.x", "channel", "not", "allowed"}
	if len(got) != 1+len(want) || strings.Join(got[1:], " ") != strings.Join(want, " ") {
		t.Errorf("row %q", rows[1])
	}
	if _, err := time.Parse(time.RFC3339, got[0]); err != nil || !strings.HasSuffix(got[0], "Z") || len(got[0]) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("time column %q: %v", got[0], err)
	}
	// No match: the header alone, and success.
	code, out, _ = runCLI(t, "", "audit", "query", "--format", "table", "--user", "nobody", path)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "TIME") {
		t.Errorf("no match: exit %d, %q", code, out)
	}
}

func TestAuditQueryCount(t *testing.T) {
	path := writeAuditLog(t)
	cases := []struct {
		args []string
		want string
	}{
		{nil, "8"},
		{[]string{"--event", "authz", "--user", "alice"}, "2"},
		{[]string{"--event", "authz,auth", "--user", "alice"}, "3"},
		{[]string{"--tenant", "acme", "--tenant", "globex", "--event", "authz"}, "3"},
		{[]string{"--outcome", "allow"}, "2"},
		{[]string{"--action", "publish"}, "2"},
		{[]string{"--channel", "orders.*"}, "2"},
		{[]string{"--channel", "*.[a-f]?"}, "1"},
		{[]string{"--client", "10.0.0.5"}, "5"},
		{[]string{"--client", "10.0.0.5:4001"}, "1"},
		{[]string{"--event", "seal,audit_start"}, "2"},
		{[]string{"--user", "nobody"}, "0"},
		{[]string{"--format", "table", "--event", "connect"}, "1"},
	}
	for _, c := range cases {
		args := append(append([]string{"audit", "query", "--count"}, c.args...), path)
		code, out, errOut := runCLI(t, "", args...)
		if code != 0 || out != c.want+"\n" {
			t.Errorf("%v: exit %d, %q, want %s (%s)", c.args, code, out, c.want, errOut)
		}
	}
}

func TestAuditQuerySinceDuration(t *testing.T) {
	path := writeAuditLog(t)
	count := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", append(append([]string{"audit", "query", "--count", "--event", "authz"}, args...), path)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	if got := count("--since", "1h"); got != "2" {
		t.Errorf("--since 1h: %s records, want the 2 recent ones", got)
	}
	if got := count("--until", "1h"); got != "1" {
		t.Errorf("--until 1h: %s records, want the 1 old one", got)
	}
	if got := count("--since", "3h", "--until", "90m"); got != "1" {
		t.Errorf("--since 3h --until 90m: %s records", got)
	}
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if got := count("--since", since); got != "2" {
		t.Errorf("--since %s: %s records", since, got)
	}
	if got := count("--until", "2000-01-01"); got != "0" {
		t.Errorf("--until 2000-01-01: %s records", got)
	}
}

func TestAuditQueryRejectsBadFlags(t *testing.T) {
	path := writeAuditLog(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--event", "authz,authn"}, []string{`unknown event "authn"`, "connect, auth, authz, revoke, disconnect, policy_reload, config_reload, audit_start, file_start, seal"}},
		{[]string{"--outcome", "denied"}, []string{`unknown outcome "denied"`, "allow, deny, success, failure"}},
		{[]string{"--format", "csv"}, []string{"json or table"}},
		{[]string{"--action", "publish,publsh"}, []string{`--action "publsh": not an action`, "connect, subscribe, psubscribe, ssubscribe, publish, spublish"}},
		{[]string{"--since", "yesterday"}, []string{"--since", "RFC 3339"}},
		{[]string{"--since", "-1h"}, []string{"negative"}},
		{[]string{"--since", "1h", "--until", "2h"}, []string{"not before"}},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, "", append(append([]string{"audit", "query"}, c.args...), path)...)
		if code != 1 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", c.args, code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
	}
	if code, _, _ := runCLI(t, "", "audit", "query", "--event", "authz"); code != 1 {
		t.Error("no file accepted")
	}
}

func TestAuditQueryReportsACutLine(t *testing.T) {
	path := writeAuditLog(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "audit", "query", "--event", "authz", path)
	if code != 1 || !strings.Contains(errOut, path+":8: ") || !strings.Contains(errOut, "incomplete") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if strings.Count(out, "\n") != 3 {
		t.Errorf("the records before the cut line are not printed:\n%s", out)
	}
	if _, out, _ := runCLI(t, "", "audit", "query", "--count", path); out != "" {
		t.Errorf("a partial count was printed: %q", out)
	}
}

// TestAuditQueryExactNames: two channels that are not UTF-8 read the same
// as JSON strings ("f1\ufffd\ufffd"); --channel and --user, given bytes
// as a shell passes them, select each exactly, and the table tells them
// apart.
func TestAuditQueryExactNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := audit.OpenFile(audit.FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("a key of at least thirty-two bytes, for tests")
	l, err := audit.New(audit.Options{Key: key, File: file})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []audit.Record{
		{Time: time.Now(), Event: audit.EventAuthz, Outcome: audit.Deny, Tenant: "acme", User: "bob\xff",
			ClientID: 1, ClientAddr: "10.0.0.5:4000", Action: "publish", Channel: "f1\xff\xfe"},
		{Time: time.Now(), Event: audit.EventAuthz, Outcome: audit.Allow, Tenant: "acme", User: "alice",
			ClientID: 2, ClientAddr: "10.0.0.5:4001", Action: "publish", Channel: "f1\xe2\x82"},
	} {
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.SplitAfter(string(data), "\n")

	cases := []struct {
		args []string
		want string // the one line printed
	}{
		{[]string{"--channel", "f1\xff*"}, ls[1]},
		{[]string{"--channel", "f1\xff\xfe"}, ls[1]},
		{[]string{"--channel", "f1\xe2\x82"}, ls[2]},
		{[]string{"--user", "bob\xff"}, ls[1]},
		{[]string{"--channel", "f1\ufffd\ufffd"}, ""}, // the lossy string names neither
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, "", append(append([]string{"audit", "query"}, c.args...), path)...)
		if code != 0 || out != c.want {
			t.Errorf("%q: exit %d, %q, want %q (%s)", c.args, code, out, c.want, errOut)
		}
	}
	if !strings.Contains(ls[1], `"channel_b64":"ZjH//g=="`) || !strings.Contains(ls[2], `"channel_b64":"ZjHigg=="`) {
		t.Errorf("records lack channel_b64:\n%s", data)
	}

	code, out, errOut := runCLI(t, "", "audit", "query", "--format", "table", "--event", "authz", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range [][]string{{`"bob\xff"`, `"f1\xff\xfe"`}, {"alice", `"f1\xe2\x82"`}} {
		f := strings.Fields(rows[i+1])
		if f[5] != want[0] || f[8] != want[1] {
			t.Errorf("row %q: user %s, channel %s; want %s, %s", rows[i+1], f[5], f[8], want[0], want[1])
		}
	}
}
