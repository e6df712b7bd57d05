package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileOptions configure the file sink.
type FileOptions struct {
	Path       string
	MaxSize    int64         // rotate once the file is this big; 0: never
	MaxAge     time.Duration // rotate a file this old; 0: never
	MaxBackups int           // rotated files kept, oldest deleted first; 0: all
}

// File is the file sink: it appends to Path, rotates it to
// "<name>-<UTC time>.<ext>" by size and age, and keeps MaxBackups rotated
// files. It is not lumberjack because the chain must seal a file before it
// is rotated and start the next one by naming it, and because records are
// fsynced in groups; lumberjack rotates inside Write and cannot fsync.
//
// A File is used by one goroutine, the Logger's writer.
type File struct {
	o      FileOptions
	f      *os.File // nil after a failure, until reopened
	size   int64
	opened time.Time
}

// OpenFile opens (creating it and its directory if need be) the file sink.
func OpenFile(o FileOptions) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("audit: file sink without a path")
	}
	f := &File{o: o}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) open() error {
	file, err := os.OpenFile(f.o.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	info, err := file.Stat()
	if err != nil {
		_ = file.Close() // the Stat error is the one to report
		return fmt.Errorf("audit: %w", err)
	}
	f.f, f.size, f.opened = file, info.Size(), time.Now()
	if info.Mode().IsRegular() {
		f.opened = modTimeOrNow(info, f.size)
	}
	return nil
}

// modTimeOrNow dates a file pubgate appends to again: an empty one from
// now, a used one from when it was last written, so that MaxAge is not
// restarted by every restart.
func modTimeOrNow(info os.FileInfo, size int64) time.Time {
	if size == 0 {
		return time.Now()
	}
	return info.ModTime()
}

// Write appends p in one write. On failure it takes back whatever part of
// p reached the file, closes the file, and reopens it on the next Write,
// so that a full disk or a replaced file heals without a restart.
func (f *File) Write(p []byte) (int, error) {
	if f.f == nil {
		if err := f.open(); err != nil {
			return 0, err
		}
	}
	n, err := f.f.Write(p)
	if err != nil {
		if n > 0 {
			_ = f.f.Truncate(f.size) // not a regular file: nothing to take back
		}
		f.closeQuietly()
		return 0, fmt.Errorf("audit: write %s: %w", f.o.Path, err)
	}
	f.size += int64(n)
	return n, nil
}

// Sync flushes what was written to stable storage. A file closed by a
// failure is reopened: fsync flushes the file's pages whatever descriptor
// wrote them.
func (f *File) Sync() error {
	if f.f == nil {
		if err := f.open(); err != nil {
			return err
		}
	}
	if err := f.f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		f.closeQuietly()
		return fmt.Errorf("audit: fsync %s: %w", f.o.Path, err)
	}
	return nil
}

// Close closes the file; safe to call twice.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

func (f *File) closeQuietly() { _ = f.Close() }

// empty reports whether the file holds nothing yet, reopening it first if
// a failure closed it (it may be a new file by now). An error counts as
// empty: the write that follows reports it.
func (f *File) empty() bool {
	if f.f == nil && f.open() != nil {
		return true
	}
	return f.size == 0
}

// rotationDue reports whether the next records should go to a new file.
func (f *File) rotationDue(now time.Time) bool {
	if f.size == 0 {
		return false
	}
	return f.o.MaxSize > 0 && f.size >= f.o.MaxSize ||
		f.o.MaxAge > 0 && now.Sub(f.opened) >= f.o.MaxAge
}

// rotate renames the file to its backup name, opens a new one and deletes
// backups beyond MaxBackups.
func (f *File) rotate() error {
	if err := os.Rename(f.o.Path, f.backupName(time.Now())); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	f.closeQuietly()
	if err := f.open(); err != nil {
		return err
	}
	return f.prune()
}

func (f *File) backupName(t time.Time) string {
	prefix, ext := f.nameParts()
	return prefix + t.UTC().Format("20060102T150405.000000000Z") + ext
}

// nameParts splits "dir/audit.log" into "dir/audit-" and ".log".
func (f *File) nameParts() (prefix, ext string) {
	ext = filepath.Ext(f.o.Path)
	return strings.TrimSuffix(f.o.Path, ext) + "-", ext
}

// Backups lists the rotated files, oldest first.
func (f *File) Backups() ([]string, error) {
	prefix, ext := f.nameParts()
	matches, err := filepath.Glob(globEscape(prefix) + "*" + globEscape(ext))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches) // the timestamps are fixed-width
	return matches, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (f *File) prune() error {
	if f.o.MaxBackups <= 0 {
		return nil
	}
	backups, err := f.Backups()
	if err != nil {
		return err
	}
	for len(backups) > f.o.MaxBackups {
		if err := os.Remove(backups[0]); err != nil {
			return fmt.Errorf("audit: remove old file: %w", err)
		}
		backups = backups[1:]
	}
	return nil
}

// moved reports whether Path no longer names the open file (it was
// renamed or deleted by someone else): the writer then reopens Path.
func (f *File) moved() bool {
	if f.f == nil {
		return false
	}
	open, err1 := f.f.Stat()
	named, err2 := os.Stat(f.o.Path)
	return err1 == nil && (err2 != nil || !os.SameFile(open, named))
}

// reopen closes the file and opens Path again.
func (f *File) reopen() error {
	f.closeQuietly()
	return f.open()
}

// lastRecord finds the last record of the chain this sink continues: the
// last line of Path, or of the newest backup if Path is empty. A partial
// line at the end of Path (a crash in the middle of a write) is cut off and
// its size returned, so that the chain continues from the last whole record.
func (f *File) lastRecord() (last []byte, cut int64, err error) {
	cut, err = cutPartialLine(f.o.Path)
	if err != nil {
		return nil, 0, err
	}
	f.size -= cut
	paths := []string{f.o.Path}
	if backups, err := f.Backups(); err == nil && len(backups) > 0 {
		paths = append(paths, backups[len(backups)-1])
	}
	for _, p := range paths {
		line, err := lastLine(p)
		if err != nil {
			return nil, cut, err
		}
		if line != nil {
			return line, cut, nil
		}
	}
	return nil, cut, nil
}

// cutPartialLine truncates a regular file after its last newline.
func cutPartialLine(path string) (int64, error) {
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer func() { _ = file.Close() }() // the truncation took effect already
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() == 0 {
		return 0, err
	}
	end, err := lastNewline(file, info.Size())
	if err != nil || end == info.Size() {
		return 0, err
	}
	if err := file.Truncate(end); err != nil {
		return 0, fmt.Errorf("audit: cut partial record: %w", err)
	}
	return info.Size() - end, nil
}

// lastNewline returns the offset just after the last newline before size
// (0 if none), reading backwards in chunks.
func lastNewline(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// lastLine returns the last newline-terminated line of a regular file,
// without its newline; nil if there is none.
func lastLine(path string) ([]byte, error) {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer func() { _ = file.Close() }() // nothing was written through it
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() == 0 {
		return nil, err
	}
	end, err := lastNewline(file, info.Size())
	if err != nil || end == 0 {
		return nil, err
	}
	start, err := lastNewline(file, end-1)
	if err != nil {
		return nil, err
	}
	line := make([]byte, end-1-start)
	_, err = file.ReadAt(line, start)
	return line, err
}
