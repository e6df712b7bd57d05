package audit

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pubgate/pubgate/upstream"
)

// Events lists every event type, so that a query can refuse a misspelt
// one instead of silently matching nothing.
var Events = []Event{
	EventConnect, EventAuth, EventAuthz, EventRevoke, EventDisconnect,
	EventPolicyReload, EventConfigReload, EventAuditStart, EventFileStart, EventSeal,
}

// Outcomes lists every outcome, for the same reason as Events.
var Outcomes = []Outcome{Allow, Deny, Success, Failure}

// ParseEvent returns the event named s, or an error listing the valid ones.
func ParseEvent(s string) (Event, error) {
	if slices.Contains(Events, Event(s)) {
		return Event(s), nil
	}
	return "", fmt.Errorf("audit: unknown event %q: must be one of %s", s, Names(Events))
}

// ParseOutcome returns the outcome named s, or an error listing the valid
// ones.
func ParseOutcome(s string) (Outcome, error) {
	if slices.Contains(Outcomes, Outcome(s)) {
		return Outcome(s), nil
	}
	return "", fmt.Errorf("audit: unknown outcome %q: must be one of %s", s, Names(Outcomes))
}

// Names lists names for a help text or an error.
func Names[S ~string](names []S) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	return strings.Join(parts, ", ")
}

// Filter selects records. Each set field must match (and); a slice matches
// when any of its values does (or). The zero Filter matches every record.
//
// Names (User, Channel) are compared with the exact bytes the client sent,
// which a record holds in *_b64 when they are not UTF-8 (see Entry): a
// name's lossy JSON string, with U+FFFD for the bytes that are not UTF-8,
// does not select it.
type Filter struct {
	Since, Until time.Time // Since inclusive, Until exclusive; zero: unbounded
	Tenant, User []string
	Events       []Event
	Outcomes     []Outcome
	Actions      []string
	// Channel is a Redis glob, with Redis's own semantics (bytes, not
	// runes: ? is one byte) so that the pattern a policy or a PSUBSCRIBE
	// uses selects the same channels here. Records without a channel never
	// match it.
	Channel string
	// ClientAddr is an address (host:port, matching one connection) or a
	// host (matching every connection from it).
	ClientAddr string
}

// Match reports whether the filter selects e.
func (f *Filter) Match(e *Entry) bool {
	return f.matchTime(e.Time) &&
		anyOf(f.Tenant, e.Tenant) &&
		anyOf(f.User, e.User) &&
		anyOf(f.Events, e.Event) &&
		anyOf(f.Outcomes, e.Outcome) &&
		anyOf(f.Actions, e.Action) &&
		f.matchChannel(e.Channel) &&
		f.matchClient(e.Client)
}

func (f *Filter) matchTime(t time.Time) bool {
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// anyOf is true when no value is asked for, or v is one of them.
func anyOf[T comparable](want []T, v T) bool {
	return len(want) == 0 || slices.Contains(want, v)
}

func (f *Filter) matchChannel(channel string) bool {
	if f.Channel == "" {
		return true
	}
	return channel != "" && upstream.Match(f.Channel, channel)
}

func (f *Filter) matchClient(c *Client) bool {
	if f.ClientAddr == "" {
		return true
	}
	if c == nil || c.Addr == "" {
		return false
	}
	if c.Addr == f.ClientAddr {
		return true
	}
	host, _, err := net.SplitHostPort(c.Addr)
	// An IPv6 host may be given bracketed, as it appears in the address.
	return err == nil && host == strings.TrimSuffix(strings.TrimPrefix(f.ClientAddr, "["), "]")
}

// Query reads files (in any order: they are read in chain order, see
// OrderFiles) and calls emit with each record f matches: line is the
// record's exact bytes without the newline, so that output made of them is
// byte-identical to the log, and e is the record parsed. An error from emit
// stops the query and is returned as is.
//
// Query does not verify the chain: a line that was altered is read like any
// other. A line that cannot be read or parsed is an error naming its file
// and line, wrapping a *Problem.
func Query(files []string, f Filter, emit func(line []byte, e *Entry) error) error {
	ordered, err := OrderFiles(files)
	if err != nil {
		return err
	}
	for _, path := range ordered {
		if err := queryFile(path, &f, emit); err != nil {
			return err
		}
	}
	return nil
}

func queryFile(path string, f *Filter, emit func([]byte, *Entry) error) error {
	_, err := eachLine(path, func(n int, line []byte) error {
		e, err := parseEntry(line)
		if err != nil {
			return &Problem{File: path, Line: n, Why: err.Error()}
		}
		if !f.Match(e) {
			return nil
		}
		return emit(line, e)
	})
	if p, ok := err.(*Problem); ok { // a line that could not be read or parsed, not emit's error
		return fmt.Errorf("audit: %w", p)
	}
	return err
}

// maxReasonRunes keeps a long reason (a policy's message, an error) from
// stretching every row of a table.
const maxReasonRunes = 60

// tableTime is RFC 3339 to the millisecond: finer than a person reads,
// coarse enough to keep the column narrow.
const tableTime = "2006-01-02T15:04:05.000Z07:00"

// Table writes records as aligned columns for people to read. It buffers
// the rows until Flush to align them, so a result of millions of records
// is better written as JSON or counted.
type Table struct {
	tw  *tabwriter.Writer
	err error
}

// NewTable starts a table on w with its header row.
func NewTable(w io.Writer) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	t.row("TIME", "SEQ", "EVENT", "OUTCOME", "TENANT", "USER", "CLIENT", "ACTION", "CHANNEL", "REASON")
	return t
}

// Add writes e's row. An error writing it is returned by Flush.
func (t *Table) Add(e *Entry) {
	var ts, addr string
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format(tableTime)
	}
	if e.Client != nil {
		addr = e.Client.Addr
	}
	t.row(ts, strconv.FormatUint(e.Seq, 10), string(e.Event), string(e.Outcome), e.Tenant, quoteName(e.User),
		addr, e.Action, quoteName(e.Channel), truncate(e.Reason, maxReasonRunes))
}

// quoteName shows a name so that distinct names look distinct: as it is
// when that is unambiguous, otherwise Go-quoted (strconv.Quote: "f1\xff",
// "a b", "\"x\"", "-"). Quoted are names that are not UTF-8, hold a space
// or a character that does not print, start with a double quote, or are
// "-", which stands for no name.
func quoteName(s string) string {
	if s == "-" || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) ||
		strings.IndexFunc(s, func(r rune) bool { return r == ' ' || !strconv.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// Flush writes the rows out, and returns the first error writing the
// table.
func (t *Table) Flush() error {
	if err := t.tw.Flush(); t.err == nil {
		t.err = err
	}
	return t.err
}

func (t *Table) row(cells ...string) {
	if t.err != nil {
		return
	}
	for i, c := range cells {
		cells[i] = cell(c)
	}
	_, t.err = io.WriteString(t.tw, strings.Join(cells, "\t")+"\n")
}

// cell prints an empty field as "-", so that columns stay countable, and
// control characters (a tab or newline in a reason; names are quoted
// before) as spaces, so that they cannot break the table.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to n runes, the last being an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n { // bytes ≥ runes: short enough either way
		return s
	}
	runes := []rune(s)
	if len(runes) <= n {
		return s
	}
	return string(runes[:n-1]) + "…"
}
