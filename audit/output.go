package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// Output writes the records a Query emits in one of the forms of pubgate
// audit query: the log's own lines ("json"), a table for reading
// ("table"), or only their number (count).
type Output struct {
	w     *bufio.Writer
	table *Table
	count bool
	n     int
}

// NewOutput writes to w in format, json or table; with count, only the
// number of records.
func NewOutput(w io.Writer, format string, count bool) (*Output, error) {
	o := &Output{w: bufio.NewWriterSize(w, 64<<10), count: count}
	switch format {
	case "json":
	case "table":
		if !count {
			o.table = NewTable(o.w)
		}
	default:
		return nil, fmt.Errorf("%q: must be json or table", format)
	}
	return o, nil
}

// Emit takes one record, as Query's emit.
func (o *Output) Emit(line []byte, e *Entry) error {
	o.n++
	switch {
	case o.count:
		return nil
	case o.table != nil:
		o.table.Add(e)
		return nil
	}
	if _, err := o.w.Write(line); err != nil {
		return err
	}
	return o.w.WriteByte('\n')
}

// Close writes out what is pending. The records emitted before a query
// failed are still written, as a stream would have; a count is written
// only when complete, since a partial one would mislead.
func (o *Output) Close(complete bool) error {
	if o.count && complete {
		fmt.Fprintln(o.w, o.n)
	}
	if o.table != nil {
		if err := o.table.Flush(); err != nil {
			return err
		}
	}
	return o.w.Flush()
}

// ParseTimeBound reads a time bound of a query: an RFC 3339 time, a date
// (midnight UTC, the log's zone), or a duration meaning that long before
// now, which is how most compliance questions are asked ("in the last
// day"). "" is no bound (the zero time).
func ParseTimeBound(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("neither an RFC 3339 time (2025-03-01T12:00:00Z), a date (2025-03-01) nor a duration (24h)")
	}
	if d < 0 {
		return time.Time{}, errors.New("a duration counts back from now, and must not be negative")
	}
	return now.Add(-d), nil
}
