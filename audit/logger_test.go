package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openLogger(t *testing.T, path string, adjust func(*Options)) *Logger {
	t.Helper()
	file, err := OpenFile(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Key: testKey, File: file, FailClosed: true, FsyncInterval: 10 * time.Millisecond, RetryInterval: 10 * time.Millisecond}
	if adjust != nil {
		adjust(&o)
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: a test that failed may leave the sink failing.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l
}

func subscribeRecord(channel string) Record {
	return Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Tenant: "acme", User: "alice", Action: "subscribe", Channel: channel}
}

func mustVerify(t *testing.T, files ...string) *Report {
	t.Helper()
	rep, err := Verify(testKey, files)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func events(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, l := range lines(t, path) {
		e, err := parseEntry(bytes.TrimSpace(l))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(e.Event)+"/"+e.Reason)
	}
	return out
}

func TestRestartContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for run := range 2 {
		l := openLogger(t, path, nil)
		_ = l.Record(subscribeRecord("run" + string(rune('0'+run))))
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, path)
	if rep.Records != 6 || len(rep.Warnings) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := events(t, path)[3]; got != "audit_start/continues the chain; the previous run ended with a seal" {
		t.Fatalf("second start: %s", got)
	}
}

// A crash leaves no seal, and perhaps half a record: the next run cuts the
// half record, continues the chain and says so; verify warns about it.
func TestRestartAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, nil)
	_ = l.Record(subscribeRecord("before"))
	_ = l.Close(context.Background())
	ls := lines(t, path)
	writeLines(t, path, append(ls[:len(ls)-1:len(ls)-1], []byte(`{"ts":"2026-`))) // no seal, half a record

	l = openLogger(t, path, nil)
	_ = l.Record(subscribeRecord("after"))
	_ = l.Close(context.Background())
	rep := mustVerify(t, path)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "without a seal") || !strings.Contains(rep.Warnings[0], "partial record of 12 bytes") {
		t.Fatalf("warnings %q", rep.Warnings)
	}
}

func TestRestartRefusesAnUnreadableTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("not a record\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := OpenFile(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Key: testKey, File: file}); err == nil || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("New over a foreign file: %v", err)
	}
}

// breakFile swaps path for /dev/full, a disk that is always full, keeping
// the file under path+".old"; the returned func restores a writable path.
func breakFile(t *testing.T, path string) (restore func()) {
	t.Helper()
	if err := os.Link(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailClosedRefusesGrantsOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, nil)
	restore := breakFile(t, path)
	eventually(t, func() bool { return l.Stats().Failing })
	if err := l.Record(subscribeRecord("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a grant while failing: %v", err)
	}
	deny := subscribeRecord("y")
	deny.Outcome = Deny
	if err := l.Record(deny); err != nil {
		t.Fatalf("a denial while failing: %v", err)
	}
	restore()
	eventually(t, func() bool { return !l.Stats().Failing })
	if err := l.Record(subscribeRecord("z")); err != nil {
		t.Fatal(err)
	}
	_ = l.Close(context.Background())
	mustVerify(t, path+".old", path)
	got := strings.Join(events(t, path), " ")
	if !strings.HasPrefix(got, "file_start/") || !strings.Contains(got, "authz/") || strings.Count(got, "authz/") != 2 {
		t.Fatalf("the new file holds %s", got)
	}
	if s := l.Stats(); s.Refused != 1 || s.Dropped != 0 || s.Written != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFailOpenDropsAndCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, func(o *Options) { o.FailClosed, o.QueueSize = false, 4 })
	restore := breakFile(t, path)
	eventually(t, func() bool { return l.Stats().Failing })
	for range 100 {
		if err := l.Record(subscribeRecord("x")); err != nil {
			t.Fatalf("fail open refused a record: %v", err)
		}
	}
	s := l.Stats()
	if s.Dropped < 90 || s.Refused != 0 {
		t.Fatalf("stats %+v", s)
	}
	restore()
	_ = l.Close(context.Background())
	if got := l.Stats().Written; got != 100-s.Dropped {
		t.Fatalf("written %d, dropped %d", got, s.Dropped)
	}
	mustVerify(t, path+".old", path)
}

// A live log is sealed periodically, so that it verifies between seals.
func TestPeriodicSeal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, func(o *Options) { o.SealInterval = 20 * time.Millisecond })
	_ = l.Record(subscribeRecord("x"))
	eventually(t, func() bool {
		ev := events(t, path)
		return len(ev) == 3 && ev[2] == "seal/periodic"
	})
	mustVerify(t, path)
	time.Sleep(60 * time.Millisecond)
	if n := len(events(t, path)); n != 3 {
		t.Fatalf("an idle log was sealed again: %d records", n)
	}
}

func TestRotationByAgeKeepsMaxBackups(t *testing.T) {
	dir := t.TempDir()
	file, err := OpenFile(FileOptions{Path: filepath.Join(dir, "audit.log"), MaxAge: time.Millisecond, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Key: testKey, File: file})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		time.Sleep(2 * time.Millisecond)
		_ = l.Record(subscribeRecord("x"))
		eventually(t, func() bool { return l.Stats().Written == int64(i+1) })
	}
	_ = l.Close(context.Background())
	files, _ := filepath.Glob(filepath.Join(dir, "audit*.log"))
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	rep := mustVerify(t, files...)
	if len(rep.Warnings) != 1 { // the oldest files were deleted
		t.Fatalf("report %+v", rep)
	}
}

// On stdout each run starts a chain of its own; runs appended to one
// stream verify as long as each ended with a seal.
func TestStreamSink(t *testing.T) {
	var out bytes.Buffer
	for range 2 {
		l, err := New(Options{Key: testKey, Stream: &out})
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Record(subscribeRecord("x"))
		_ = l.Close(context.Background())
	}
	path := filepath.Join(t.TempDir(), "stdout.log")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Records != 6 {
		t.Fatalf("report %+v", rep)
	}
	// Without the first run's seal, the second chain's start is suspect.
	ls := lines(t, path)
	writeLines(t, path, append(ls[:2:2], ls[3:]...))
	var p *Problem
	if _, err := Verify(testKey, []string{path}); !errors.As(err, &p) || p.Line != 3 || !strings.Contains(p.Why, "not a seal") {
		t.Fatalf("a cut run: %v", err)
	}
}

func TestLevels(t *testing.T) {
	l := Levels{
		Global:  Scope{Level: "metadata", Actions: map[string]string{"publish": "none"}},
		Tenants: map[string]Scope{"acme": {Actions: map[string]string{"publish": "payload"}}, "globex": {Level: "payload_digest"}},
	}
	cases := []struct {
		tenant, action string
		want           Level
	}{
		{"initech", "subscribe", Metadata}, {"initech", "publish", None},
		{"acme", "publish", Payload}, {"acme", "subscribe", Metadata},
		{"globex", "publish", PayloadDigest}, {"globex", "psubscribe", PayloadDigest},
	}
	for _, c := range cases {
		if got := l.For(c.tenant, c.action); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.tenant, c.action, got, c.want)
		}
	}
	if got := (Levels{}).For("x", "spublish"); got != None {
		t.Errorf("default spublish level %s", got)
	}
	if got := (Levels{}).For("x", "ssubscribe"); got != Metadata {
		t.Errorf("default ssubscribe level %s", got)
	}
	bad := Levels{Tenants: map[string]Scope{"acme": {Actions: map[string]string{"publish": "everything"}}}}
	if err := bad.Check("audit"); err == nil || !strings.HasPrefix(err.Error(), "audit.tenants.acme.levels.publish: ") {
		t.Errorf("bad level: %v", err)
	}
}

// Records never carry a payload unless asked to.
func TestPayloadLevels(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Key: testKey, Stream: &out})
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []Level{Metadata, PayloadDigest, Payload} {
		r := Record{Time: time.Now(), Event: EventAuthz, Outcome: Allow, Action: "publish", Channel: "c"}
		r.SetPayload(level, []byte("secret"))
		_ = l.Record(r)
	}
	_ = l.Close(context.Background())
	ls := strings.Split(out.String(), "\n")
	if strings.Contains(ls[1], "sha256") || strings.Contains(ls[1], "base64") || !strings.Contains(ls[1], `"payload_size":6`) {
		t.Errorf("metadata: %s", ls[1])
	}
	if !strings.Contains(ls[2], `"payload_sha256":"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"`) || strings.Contains(ls[2], "base64") {
		t.Errorf("payload_digest: %s", ls[2])
	}
	if !strings.Contains(ls[3], `"payload_base64":"c2VjcmV0"`) {
		t.Errorf("payload: %s", ls[3])
	}
}
