package audit

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFilterMatch(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e := &Entry{Time: at, Event: EventAuthz, Seq: 7, Outcome: Deny, Tenant: "acme", User: "alice",
		Client: &Client{ID: 3, Addr: "10.0.0.5:41234"}, Action: "publish", Channel: "orders.eu"}
	noChannel := &Entry{Time: at, Event: EventAuth, Seq: 8, Outcome: Success, Tenant: "acme", User: "alice"}
	v6 := &Entry{Time: at, Event: EventConnect, Seq: 9, Client: &Client{Addr: "[::1]:6000"}}
	cases := []struct {
		name string
		f    Filter
		e    *Entry
		want bool
	}{
		{"zero filter", Filter{}, e, true},
		{"zero filter, no client or channel", Filter{}, noChannel, true},
		{"since equal is inclusive", Filter{Since: at}, e, true},
		{"since after", Filter{Since: at.Add(time.Millisecond)}, e, false},
		{"since in another zone", Filter{Since: at.In(time.FixedZone("X", 3600))}, e, true},
		{"until equal is exclusive", Filter{Until: at}, e, false},
		{"until after", Filter{Until: at.Add(time.Nanosecond)}, e, true},
		{"since and until around", Filter{Since: at.Add(-time.Hour), Until: at.Add(time.Hour)}, e, true},
		{"tenant", Filter{Tenant: []string{"acme"}}, e, true},
		{"tenant any of", Filter{Tenant: []string{"globex", "acme"}}, e, true},
		{"tenant other", Filter{Tenant: []string{"globex"}}, e, false},
		{"user", Filter{User: []string{"bob", "alice"}}, e, true},
		{"user other", Filter{User: []string{"bob"}}, e, false},
		{"event", Filter{Events: []Event{EventAuthz}}, e, true},
		{"event other", Filter{Events: []Event{EventAuth, EventSeal}}, e, false},
		{"outcome", Filter{Outcomes: []Outcome{Allow, Deny}}, e, true},
		{"outcome other", Filter{Outcomes: []Outcome{Allow}}, e, false},
		{"action", Filter{Actions: []string{"publish"}}, e, true},
		{"action other", Filter{Actions: []string{"subscribe"}}, e, false},
		{"channel exact", Filter{Channel: "orders.eu"}, e, true},
		{"channel star", Filter{Channel: "orders.*"}, e, true},
		{"channel question", Filter{Channel: "orders.e?"}, e, true},
		{"channel range", Filter{Channel: "orders.[a-f]u"}, e, true},
		{"channel negated set", Filter{Channel: "orders.[^e]u"}, e, false},
		{"channel escaped star is literal", Filter{Channel: `orders\*`}, e, false},
		{"channel prefix is not a match", Filter{Channel: "orders"}, e, false},
		{"channel filter, record without channel", Filter{Channel: "*"}, noChannel, false},
		{"client host:port", Filter{ClientAddr: "10.0.0.5:41234"}, e, true},
		{"client host", Filter{ClientAddr: "10.0.0.5"}, e, true},
		{"client other port", Filter{ClientAddr: "10.0.0.5:1"}, e, false},
		{"client other host", Filter{ClientAddr: "10.0.0.50"}, e, false},
		{"client filter, record without client", Filter{ClientAddr: "10.0.0.5"}, noChannel, false},
		{"client IPv6 host", Filter{ClientAddr: "::1"}, v6, true},
		{"client IPv6 bracketed host", Filter{ClientAddr: "[::1]"}, v6, true},
		{"every field", Filter{Since: at, Until: at.Add(time.Second), Tenant: []string{"acme"}, User: []string{"alice"},
			Events: []Event{EventAuthz}, Outcomes: []Outcome{Deny}, Actions: []string{"publish"},
			Channel: "orders.*", ClientAddr: "10.0.0.5"}, e, true},
		{"every field but one", Filter{Tenant: []string{"acme"}, User: []string{"alice"},
			Events: []Event{EventAuthz}, Outcomes: []Outcome{Deny}, Actions: []string{"subscribe"}}, e, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.f.Match(c.e); got != c.want {
				t.Fatalf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseEventAndOutcome(t *testing.T) {
	for _, ev := range Events {
		if got, err := ParseEvent(string(ev)); err != nil || got != ev {
			t.Errorf("ParseEvent(%q) = %q, %v", ev, got, err)
		}
	}
	if _, err := ParseEvent("authn"); err == nil || !strings.Contains(err.Error(), "policy_reload") {
		t.Errorf("unknown event: %v", err)
	}
	if _, err := ParseOutcome("denied"); err == nil || !strings.Contains(err.Error(), "allow, deny, success, failure") {
		t.Errorf("unknown outcome: %v", err)
	}
}

// TestQueryReadsARotatedSetInChainOrder gives the files in reverse order
// and expects every record once, by increasing seq, byte for byte.
func TestQueryReadsARotatedSetInChainOrder(t *testing.T) {
	files := writeLog(t, t.TempDir(), 100, 2<<10)
	if len(files) < 3 {
		t.Fatalf("expected several rotated files, got %v", files)
	}
	ordered, err := OrderFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for _, f := range ordered {
		for _, l := range lines(t, f) {
			want = append(want, bytes.TrimSuffix(l, []byte("\n")))
		}
	}
	reversed := slices.Clone(files)
	slices.Reverse(reversed)

	var got [][]byte
	var seqs []uint64
	err = Query(reversed, Filter{}, func(line []byte, e *Entry) error {
		got, seqs = append(got, line), append(seqs, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got[i], want[i])
		}
		if seqs[i] != uint64(i+1) {
			t.Fatalf("record %d has seq %d: not in chain order", i, seqs[i])
		}
	}

	// Internal records match like any other, so an event filter leaves
	// exactly the proxy's.
	n := 0
	err = Query(files, Filter{Events: []Event{EventAuthz}}, func(_ []byte, e *Entry) error {
		n++
		if e.Event != EventAuthz {
			t.Errorf("seq %d is a %s", e.Seq, e.Event)
		}
		return nil
	})
	if err != nil || n != 100 {
		t.Fatalf("%d authz records, %v", n, err)
	}
}

func TestQueryReportsAnIncompleteLine(t *testing.T) {
	files := writeLog(t, t.TempDir(), 20, 0)
	ls := lines(t, files[0])
	last := ls[len(ls)-1]
	ls[len(ls)-1] = last[:len(last)/2]
	writeLines(t, files[0], ls)

	n := 0
	err := Query(files, Filter{}, func([]byte, *Entry) error { n++; return nil })
	var p *Problem
	if !errors.As(err, &p) || p.File != files[0] || p.Line != len(ls) || !strings.Contains(p.Why, "incomplete") {
		t.Fatalf("got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "audit: "+files[0]+":22: ") {
		t.Errorf("error does not name file:line: %v", err)
	}
	if n != len(ls)-1 {
		t.Errorf("%d records emitted before the bad line, want %d", n, len(ls)-1)
	}
}

func TestQueryReportsAnUnparsableLine(t *testing.T) {
	files := writeLog(t, t.TempDir(), 5, 0)
	ls := lines(t, files[0])
	ls[2] = []byte("not json\n")
	writeLines(t, files[0], ls)
	var p *Problem
	if err := Query(files, Filter{}, func([]byte, *Entry) error { return nil }); !errors.As(err, &p) || p.Line != 3 {
		t.Fatalf("got %v", err)
	}
}

func TestQueryStopsOnAnEmitError(t *testing.T) {
	files := writeLog(t, t.TempDir(), 20, 0)
	stop := errors.New("stop")
	n := 0
	err := Query(files, Filter{}, func([]byte, *Entry) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("err %v after %d records", err, n)
	}
	if err := Query([]string{files[0] + ".missing"}, Filter{}, nil); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestTable(t *testing.T) {
	size := 12
	long := strings.Repeat("é", 100)
	entries := []*Entry{
		{Time: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)), Event: EventAuthz, Seq: 42,
			Outcome: Deny, Tenant: "acme", User: "alice", Client: &Client{Addr: "10.0.0.5:41234"},
			Action: "publish", Channel: "orders", Reason: "not\tallowed\nhere", PayloadSize: &size},
		{Time: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC), Event: EventSeal, Seq: 43, Reason: long},
	}
	var buf bytes.Buffer
	tab := NewTable(&buf)
	for _, e := range entries {
		tab.Add(e)
	}
	if err := tab.Flush(); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("%d rows:\n%s", len(rows), buf.String())
	}
	wantFields := [][]string{
		{"TIME", "SEQ", "EVENT", "OUTCOME", "TENANT", "USER", "CLIENT", "ACTION", "CHANNEL", "REASON"},
		{"2025-03-01T11:00:00.123Z", "42", "authz", "deny", "acme", "alice", "10.0.0.5:41234", "publish", "orders", "not", "allowed", "here"},
		{"2025-03-01T11:00:00.000Z", "43", "seal", "-", "-", "-", "-", "-", "-", strings.Repeat("é", 59) + "…"},
	}
	for i, want := range wantFields {
		if got := strings.Fields(rows[i]); !slices.Equal(got, want) {
			t.Errorf("row %d:\n got %q\nwant %q", i, got, want)
		}
	}
	// Columns are aligned: every row's SEQ starts where the header's does.
	col := strings.Index(rows[0], "SEQ")
	for _, r := range rows[1:] {
		if r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("misaligned row %q", r)
		}
	}
}

func TestTableReportsAWriteError(t *testing.T) {
	tab := NewTable(failingWriter{})
	tab.Add(&Entry{Seq: 1, Event: EventSeal})
	if err := tab.Flush(); err == nil {
		t.Fatal("no error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }
