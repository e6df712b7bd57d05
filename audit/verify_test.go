package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// writeLog writes n authz records through a Logger into dir/audit.log,
// rotating at maxSize (0: never), closes it, and returns every file.
func writeLog(t *testing.T, dir string, n int, maxSize int64) []string {
	t.Helper()
	file, err := OpenFile(FileOptions{Path: filepath.Join(dir, "audit.log"), MaxSize: maxSize})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Key: testKey, File: file, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice",
			ClientID: int64(i + 1), ClientAddr: "127.0.0.1:5000", Action: "subscribe", Channel: "orders"}
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
		if maxSize > 0 && i%10 == 9 {
			waitWritten(t, l, int64(i+1)) // let batches end, so that files rotate
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "audit*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func waitWritten(t *testing.T, l *Logger, n int64) {
	t.Helper()
	eventually(t, func() bool { return l.Stats().Written >= n })
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
	}
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyCleanLog(t *testing.T) {
	files := writeLog(t, t.TempDir(), 20, 0)
	rep, err := Verify(testKey, files)
	if err != nil {
		t.Fatal(err)
	}
	// audit_start, 20 records, the shutdown seal.
	if rep.Records != 22 || rep.FirstSeq != 1 || rep.LastSeq != 22 || len(rep.Warnings) != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyCleanRotatedSet(t *testing.T) {
	files := writeLog(t, t.TempDir(), 100, 2<<10)
	if len(files) < 4 {
		t.Fatalf("expected several rotated files, got %v", files)
	}
	rep, err := Verify(testKey, files) // glob order: backups, then audit.log
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstSeq != 1 || len(rep.Files) != len(files) {
		t.Fatalf("report %+v", rep)
	}
	// Each file after the first starts by naming the previous file's last hash.
	for i := 1; i < len(rep.Files); i++ {
		prev := lines(t, rep.Files[i-1])
		first, err := parseEntry(bytes.TrimSpace(lines(t, rep.Files[i])[0]))
		if err != nil {
			t.Fatal(err)
		}
		last, _ := parseEntry(bytes.TrimSpace(prev[len(prev)-1]))
		if first.Event != EventFileStart || first.Prev != last.Hash || last.Event != EventSeal {
			t.Fatalf("file %d starts with %s prev %s; previous ends with %s %s", i, first.Event, first.Prev, last.Event, last.Hash)
		}
	}
	// Older files deleted by retention: what remains still verifies, with a warning.
	rep, err = Verify(testKey, rep.Files[2:])
	if err != nil || len(rep.Warnings) != 1 {
		t.Fatalf("without the first files: %v %+v", err, rep)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(ls [][]byte) [][]byte
		line   int
		seq    uint64
		why    string
	}{
		{"edit a byte", func(ls [][]byte) [][]byte {
			ls[5] = bytes.Replace(ls[5], []byte(`"orders"`), []byte(`"orderz"`), 1)
			return ls
		}, 6, 6, "hash does not match"},
		{"delete a line", func(ls [][]byte) [][]byte {
			return append(ls[:7:7], ls[8:]...)
		}, 8, 9, "1 record(s) missing"},
		{"swap two lines", func(ls [][]byte) [][]byte {
			ls[3], ls[4] = ls[4], ls[3]
			return ls
		}, 4, 5, "seq 5 appears before seq 4 (%s:5): records reordered"},
		{"move a line back", func(ls [][]byte) [][]byte {
			moved := ls[10]
			return append(ls[:3:3], append([][]byte{moved}, append(ls[3:10:10], ls[11:]...)...)...)
		}, 4, 11, "seq 11 appears before seq 4 (%s:5): records reordered"},
		{"insert a forged line", func(ls [][]byte) [][]byte {
			forged := bytes.Replace(ls[9], []byte(`"alice"`), []byte(`"mallory"`), 1)
			return append(ls[:10:10], append([][]byte{forged}, ls[10:]...)...)
		}, 11, 10, "hash does not match"},
		{"replay a line", func(ls [][]byte) [][]byte {
			return append(ls[:10:10], append([][]byte{ls[4]}, ls[10:]...)...)
		}, 11, 5, "reordered or repeated"},
		{"cut the tail", func(ls [][]byte) [][]byte {
			return ls[:len(ls)-3]
		}, 19, 19, "ends without a seal"},
		{"cut in the middle of a line", func(ls [][]byte) [][]byte {
			last := ls[len(ls)-1]
			ls[len(ls)-1] = last[:len(last)/2]
			return ls
		}, 22, 0, "incomplete"},
		{"cut the head", func(ls [][]byte) [][]byte {
			return ls[3:]
		}, 1, 4, "beginning of the file was cut"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := writeLog(t, t.TempDir(), 20, 0)
			writeLines(t, files[0], c.tamper(lines(t, files[0])))
			_, err := Verify(testKey, files)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("tampering not detected: %v", err)
			}
			why := c.why
			if strings.Contains(why, "%s") {
				why = fmt.Sprintf(why, files[0])
			}
			if p.File != files[0] || p.Line != c.line || p.Seq != c.seq || !strings.Contains(p.Why, why) {
				t.Fatalf("got %v; want line %d seq %d %q", p, c.line, c.seq, c.why)
			}
		})
	}
}

func TestVerifyDetectsAMissingFileAndAWrongKey(t *testing.T) {
	files := writeLog(t, t.TempDir(), 60, 2<<10)
	ordered, err := OrderFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	missing := append(append([]string{}, ordered[:1]...), ordered[2:]...)
	var p *Problem
	if _, err := Verify(testKey, missing); !errors.As(err, &p) || p.File != ordered[2] || p.Line != 1 || !strings.Contains(p.Why, "missing") {
		t.Fatalf("a missing middle file: %v", err)
	}
	if _, err := Verify([]byte("another key, of at least 32 bytes, not the log's"), files); !errors.As(err, &p) || p.Line != 1 {
		t.Fatalf("wrong key: %v", err)
	}
}

// unsealedLog is a clean log with its shutdown seal removed (what a live
// writer's file looks like between seals), plus after, appended.
func unsealedLog(t *testing.T, n int, after []byte) []string {
	t.Helper()
	files := writeLog(t, t.TempDir(), n, 0)
	ls := lines(t, files[0])
	writeLines(t, files[0], append(ls[:len(ls)-1], after))
	return files
}

func TestVerifyLiveAcceptsAnUnsealedTail(t *testing.T) {
	files := unsealedLog(t, 20, nil)
	var p *Problem
	if _, err := Verify(testKey, files); !errors.As(err, &p) || !strings.Contains(p.Why, "ends without a seal") {
		t.Fatalf("strict: %v; want the missing seal", err)
	}
	rep, err := VerifyLive(testKey, files)
	if err != nil {
		t.Fatal(err)
	}
	// audit_start and 20 records, none sealed.
	if rep.Records != 21 || rep.LastSeq != 21 || rep.Unsealed != 21 || rep.Partial {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyLiveSealedLogHasNoTail(t *testing.T) {
	rep, err := VerifyLive(testKey, writeLog(t, t.TempDir(), 5, 0))
	if err != nil || rep.Unsealed != 0 || rep.Partial || rep.LastSeq != 7 {
		t.Fatalf("%v %+v", err, rep)
	}
}

func TestVerifyLiveCountsRecordsAfterTheLastSeal(t *testing.T) {
	// A rotated set: the older files end with seals; the newest file's
	// records after its file_start are the tail.
	files := writeLog(t, t.TempDir(), 100, 2<<10)
	ordered, err := OrderFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	newest := ordered[len(ordered)-1]
	ls := lines(t, newest)
	writeLines(t, newest, ls[:len(ls)-1])
	rep, err := VerifyLive(testKey, files)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unsealed != len(ls)-1 || rep.LastSeq != rep.FirstSeq+uint64(rep.Records)-1 {
		t.Fatalf("tail %d, want %d: %+v", rep.Unsealed, len(ls)-1, rep)
	}
}

func TestVerifyLiveSkipsOnlyAnIncompleteLastLine(t *testing.T) {
	files := unsealedLog(t, 20, nil)
	ls := lines(t, files[0])
	ls[len(ls)-1] = append(ls[len(ls)-1], '\n') // lines leaves the last newline out
	last := ls[len(ls)-1]
	writeLines(t, files[0], append(ls, last[:len(last)/2])) // a record being written
	rep, err := VerifyLive(testKey, files)
	if err != nil || !rep.Partial || rep.Records != 21 || rep.Unsealed != 21 {
		t.Fatalf("%v %+v", err, rep)
	}
	// Tampering in the tail still fails.
	ls[15] = bytes.Replace(ls[15], []byte(`"orders"`), []byte(`"orderz"`), 1)
	writeLines(t, files[0], ls)
	var p *Problem
	if _, err := VerifyLive(testKey, files); !errors.As(err, &p) || p.Line != 16 || !strings.Contains(p.Why, "hash does not match") {
		t.Fatalf("tampered tail: %v", err)
	}
	// An incomplete line in an older file is a cut, live or not.
	rotated := writeLog(t, t.TempDir(), 60, 2<<10)
	ordered, _ := OrderFiles(rotated)
	ls = lines(t, ordered[0])
	writeLines(t, ordered[0], append(ls[:len(ls)-1], ls[len(ls)-1][:10]))
	if _, err := VerifyLive(testKey, rotated); !errors.As(err, &p) || !strings.Contains(p.Why, "incomplete") {
		t.Fatalf("cut older file: %v", err)
	}
}
