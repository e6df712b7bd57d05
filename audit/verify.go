package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// maxLineBytes bounds one record when reading a log back: a payload-level
// record of the largest message pubgate accepts fits.
const maxLineBytes = 64 << 20

// Problem locates the first record that breaks the chain.
type Problem struct {
	File string
	Line int    // 1-based; 0 when the problem is a file as a whole
	Seq  uint64 // 0 when the record has none that can be read
	Why  string
}

func (p *Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Seq > 0 {
		return fmt.Sprintf("%s: seq %d: %s", loc, p.Seq, p.Why)
	}
	return fmt.Sprintf("%s: %s", loc, p.Why)
}

// Report is what a clean verification found.
type Report struct {
	Files    []string // in chain order
	Records  int
	FirstSeq uint64
	LastSeq  uint64
	// Warnings are facts that do not break the chain but deserve a look:
	// the set starts after the chain's first file, or a run ended
	// without a seal.
	Warnings []string
	// Unsealed is, for VerifyLive, how many records follow the last seal
	// (0: the log ends with one); Partial, that the last line was
	// incomplete and not counted.
	Unsealed int
	Partial  bool
}

// Verify checks that files (in any order) hold one unbroken, sealed chain
// under key: every hash matches, every record names the one before, seq
// numbers follow each other, every file after the first starts with a
// file_start, and the last record is a seal. A *Problem names the first
// record that fails.
func Verify(key []byte, files []string) (*Report, error) {
	v, err := verify(key, files, false)
	if err != nil {
		return nil, err
	}
	if v.last.Event != EventSeal {
		return nil, &Problem{File: v.lastFile, Line: v.lastLine, Seq: v.last.Seq,
			Why: "the log ends without a seal: records were cut from the end, or pubgate is still writing it (a seal follows within audit.seal_interval, and at shutdown; verify --live accepts a log still being written)"}
	}
	return v.report, nil
}

// VerifyLive is Verify for a log that pubgate may still be writing: every
// complete record is checked as Verify checks it, but the records after the
// last seal (Report.Unsealed) and an incomplete last line (Report.Partial)
// are accepted, since a live writer seals within audit.seal_interval. It
// cannot tell a live writer from a log cut at its end: run Verify once the
// writer has stopped (it seals at shutdown).
func VerifyLive(key []byte, files []string) (*Report, error) {
	v, err := verify(key, files, true)
	if err != nil {
		return nil, err
	}
	if v.last.Event != EventSeal {
		v.report.Unsealed = v.sinceSeal
	}
	return v.report, nil
}

func verify(key []byte, files []string, live bool) (*verifier, error) {
	ordered, err := OrderFiles(files)
	if err != nil {
		return nil, err
	}
	v := &verifier{key: key, report: &Report{Files: ordered}, live: live}
	for i, f := range ordered {
		v.index = i
		if err := v.file(f, i == 0); err != nil {
			return nil, err
		}
	}
	if v.last == nil {
		return nil, errors.New("audit: no records")
	}
	return v, nil
}

type verifier struct {
	key       []byte
	report    *Report
	live      bool
	index     int // of the file being read, in Report.Files
	last      *Entry
	lastFile  string
	lastLine  int
	sinceSeal int // records after the last seal
}

func (v *verifier) file(path string, first bool) error {
	lastFile := v.index == len(v.report.Files)-1
	lines, err := readLines(path, v.live && lastFile, func(n int, line []byte) error {
		if line == nil { // an incomplete last line: only VerifyLive gets here
			v.report.Partial = true
			return nil
		}
		bad := func(seq uint64, format string, args ...any) error {
			return &Problem{File: path, Line: n, Seq: seq, Why: fmt.Sprintf(format, args...)}
		}
		e, err := v.check(line)
		if err != nil {
			var seq uint64
			if e != nil {
				seq = e.Seq
			}
			return bad(seq, "%v", err)
		}
		if err := v.link(e, n == 1, first); err != nil {
			var gap *gapError
			if errors.As(err, &gap) {
				if file, line := v.find(gap.want, path, n); line > 0 {
					return bad(e.Seq, "seq %d appears before seq %d (%s:%d): records reordered", e.Seq, gap.want, file, line)
				}
			}
			return bad(e.Seq, "%v", err)
		}
		v.last, v.lastFile, v.lastLine = e, path, n
		v.sinceSeal++
		if e.Event == EventSeal {
			v.sinceSeal = 0
		}
		v.report.Records++
		v.report.LastSeq = e.Seq
		if e.Event == EventAuditStart && e.Outcome == Failure {
			v.report.Warnings = append(v.report.Warnings, fmt.Sprintf("%s:%d: seq %d: %s", path, n, e.Seq, e.Reason))
		}
		return nil
	})
	if err == nil && lines == 0 {
		return &Problem{File: path, Why: "empty file"}
	}
	return err
}

// eachLine calls f with each line of a file (numbered from 1, without its
// newline) until f returns an error, and returns how many lines it read. A
// line that cannot be read is a *Problem naming it.
func eachLine(path string, f func(n int, line []byte) error) (int, error) {
	return readLines(path, false, f)
}

// readLines is eachLine; with partialTail, an incomplete last line is
// handed to f as a nil line instead of being a *Problem.
func readLines(path string, partialTail bool, f func(n int, line []byte) error) (int, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer func() { _ = file.Close() }() // only read
	r := bufio.NewReaderSize(file, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(r)
		if err == io.EOF {
			return n - 1, nil
		}
		if errors.Is(err, errIncomplete) && partialTail {
			return n - 1, f(n, nil)
		}
		if err != nil {
			return n - 1, &Problem{File: path, Line: n, Why: err.Error()}
		}
		if err := f(n, line); err != nil {
			return n, err
		}
	}
}

// check parses a line and verifies its hash.
func (v *verifier) check(line []byte) (*Entry, error) {
	canonical, hash, err := splitLine(line)
	if err != nil {
		return nil, err
	}
	e, err := decodeEntry(line)
	if err != nil {
		return nil, err
	}
	if want := hashOf(v.key, e.Prev, canonical); !hmac.Equal([]byte(want), []byte(hash)) {
		return e, errors.New("the hash does not match: the record was altered or forged (or the key is not the log's)")
	}
	// After the hash: an altered *_b64 member is reported as an alteration.
	err = e.exactNames()
	return e, err
}

// link checks that e follows the record before it.
func (v *verifier) link(e *Entry, firstInFile, firstFile bool) error {
	if v.last == nil {
		switch {
		case e.Seq == 1 && e.Prev == Genesis:
		case e.Event == EventFileStart:
			v.report.Warnings = append(v.report.Warnings,
				fmt.Sprintf("the chain is verified from seq %d: the files before it were not given (rotated away?)", e.Seq))
		default:
			return errors.New("the first record neither starts the chain (seq 1) nor a file (file_start): the beginning of the file was cut")
		}
		v.report.FirstSeq = e.Seq
		return nil
	}
	if firstInFile && !firstFile && e.Event != EventFileStart && !(e.Seq == 1 && v.last.Event == EventSeal) {
		return errors.New("a file after the first does not start with file_start: its beginning was cut")
	}
	if e.Seq == 1 && e.Prev == Genesis && e.Event == EventAuditStart {
		if v.last.Event != EventSeal {
			return fmt.Errorf("a new chain starts after seq %d, which is not a seal: records were cut before it", v.last.Seq)
		}
		return nil
	}
	switch want := v.last.Seq + 1; {
	case e.Seq < want:
		return fmt.Errorf("seq %d comes after seq %d: records were reordered or repeated", e.Seq, v.last.Seq)
	case e.Seq > want:
		return &gapError{got: e.Seq, last: v.last.Seq, want: want}
	}
	if e.Prev != v.last.Hash {
		return errors.New("prev does not name the previous record's hash")
	}
	return nil
}

var errIncomplete = errors.New("the last line is incomplete (no newline): the file was cut in the middle of a record")

// gapError is a seq that skips numbers: records missing, unless the
// verifier finds the next one further on (reordered).
type gapError struct{ got, last, want uint64 }

func (g *gapError) Error() string {
	return fmt.Sprintf("seq %d follows seq %d: %d record(s) missing before this one", g.got, g.last, g.got-g.want)
}

// find looks for the record with seq after line n of path, in it and the
// files after it, up to the start of another chain, and says where it is
// (line 0: nowhere). Only the seq is read: this names what went wrong once
// the chain has already failed.
func (v *verifier) find(seq uint64, path string, n int) (string, int) {
	for _, f := range v.report.Files[v.index:] {
		var at int
		_, err := eachLine(f, func(i int, line []byte) error {
			if f == path && i <= n {
				return nil
			}
			e, err := parseEntry(line)
			switch {
			case err != nil:
			case e.Seq == seq:
				at = i
				return errStop
			case e.Seq == 1 && e.Prev == Genesis:
				return errStop
			}
			return nil
		})
		if at > 0 {
			return f, at
		}
		if err != nil { // errStop included
			return "", 0
		}
	}
	return "", 0
}

// readLine reads one newline-terminated line, without the newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > maxLineBytes {
				return nil, fmt.Errorf("a line longer than %d bytes", maxLineBytes)
			}
		case err == io.EOF && len(line) > 0:
			return nil, errIncomplete
		default:
			return nil, err
		}
	}
}

// OrderFiles sorts log files into chain order, by the seq of their first
// record, so that a shell glob of rotated files can be given as is.
func OrderFiles(files []string) ([]string, error) {
	type first struct {
		path string
		seq  uint64
	}
	firsts := make([]first, 0, len(files))
	for _, path := range files {
		seq, err := firstSeq(path)
		if err != nil {
			return nil, err
		}
		firsts = append(firsts, first{path, seq})
	}
	sort.SliceStable(firsts, func(i, j int) bool { return firsts[i].seq < firsts[j].seq })
	out := make([]string, len(firsts))
	for i, f := range firsts {
		out[i] = f.path
	}
	return out, nil
}

// errStop ends eachLine early without an error.
var errStop = errors.New("stop")

func firstSeq(path string) (seq uint64, err error) {
	_, err = eachLine(path, func(_ int, line []byte) error {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			return errStop
		}
		e, err := parseEntry(line)
		if err != nil {
			return &Problem{File: path, Line: 1, Why: err.Error()}
		}
		seq = e.Seq
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return seq, err
}
