package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ErrUnavailable is returned, with fail_closed, for a record that would
// admit a client to something while the log cannot be written: the caller
// refuses the action.
var ErrUnavailable = errors.New("the audit log cannot be written; new authorizations are refused until it can")

// ErrClosed is returned for records offered after Close.
var ErrClosed = errors.New("the audit log is closed")

// Options configure a Logger. Exactly one of File and Stream is set.
type Options struct {
	Key    []byte    // the chain's HMAC key, at least MinKeyBytes
	File   *File     // a rotating file, whose chain a restart continues
	Stream io.Writer // a stream such as stdout: each run starts a chain
	// FailClosed refuses records that grant access (see ErrUnavailable)
	// while the sink fails or the queue stays full; otherwise such records
	// are dropped and counted.
	FailClosed     bool
	QueueSize      int           // records waiting for the writer; default DefaultQueueSize
	FsyncInterval  time.Duration // fsync at least this often; default DefaultFsyncInterval
	FsyncRecords   int           // and after this many records; default DefaultFsyncRecords
	SealInterval   time.Duration // seal this often if anything was written; default DefaultSealInterval
	RetryInterval  time.Duration // between attempts on a failing sink; default 1s
	EnqueueTimeout time.Duration // fail-closed wait for room in a full queue; default 1s
	Logger         *zap.Logger   // the operational log
}

// The defaults of the Options that the configuration file sets too; its
// defaults are these (config.Default uses them), so that a library user and
// a configuration file that leave a setting out get the same value.
const (
	// DefaultQueueSize is audit.queue_size: records waiting for the writer.
	DefaultQueueSize = 16384
	// DefaultFsyncInterval is audit.fsync_interval.
	DefaultFsyncInterval = time.Second
	// DefaultFsyncRecords is audit.fsync_records.
	DefaultFsyncRecords = 1000
	// DefaultSealInterval is audit.seal_interval.
	DefaultSealInterval = time.Minute
)

func (o *Options) fillDefaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.FsyncInterval, DefaultFsyncInterval)
	set(&o.SealInterval, DefaultSealInterval)
	set(&o.RetryInterval, time.Second)
	set(&o.EnqueueTimeout, time.Second)
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.FsyncRecords <= 0 {
		o.FsyncRecords = DefaultFsyncRecords
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// maxBatch bounds the records written together, and so how far a batch
// can carry a file past its rotation size.
const maxBatch = 512

// Logger is the audit log. Record hands a record to a bounded queue; one
// writer goroutine chains, writes and fsyncs records in groups, rotates
// files and seals them, so that no caller waits on the disk.
type Logger struct {
	o     Options
	sink  io.Writer
	queue *queue
	stop  chan struct{} // Close asks the writer to finish
	// abandon tells the writer, retrying a failing sink at Close, that the
	// close deadline passed.
	abandon     chan struct{}
	abandonOnce sync.Once
	done        chan struct{}
	closeOnce   sync.Once
	failing     atomic.Bool

	written, dropped, refused atomic.Int64

	// The writer goroutine's own state.
	chain     *chain
	batch     []Record // records taken from the queue, being written
	pending   []Record // the log's own records, written after batch
	buf       []byte
	unsynced  int
	sinceSeal int
	reported  int64 // dropped+refused already logged
}

// Stats are the Logger's counters.
type Stats struct {
	Written       int64 // records written (not counting those of the log itself)
	Dropped       int64 // records lost: queue full (fail open), or after Close
	Refused       int64 // records refused, and their actions with them (fail closed)
	QueueDepth    int
	QueueCapacity int
	Failing       bool // the sink is failing; the writer is retrying
}

// New opens the log: it continues the chain of the file it appends to (or
// starts one), writes an audit_start record, and starts the writer. A sink
// that cannot take that first record is an error.
func New(o Options) (*Logger, error) {
	o.fillDefaults()
	if len(o.Key) < MinKeyBytes {
		return nil, fmt.Errorf("audit: the key must be at least %d bytes", MinKeyBytes)
	}
	if (o.File == nil) == (o.Stream == nil) {
		return nil, errors.New("audit: one sink, a file or a stream, is required")
	}
	l := &Logger{
		o: o, queue: newQueue(o.QueueSize),
		stop: make(chan struct{}), abandon: make(chan struct{}), done: make(chan struct{}),
	}
	start := Record{Time: time.Now(), Event: EventAuditStart, Outcome: Success, Reason: "new chain"}
	l.sink, l.chain = o.Stream, newChain(o.Key)
	if o.File != nil {
		l.sink = o.File
		if err := l.continueChain(&start); err != nil {
			return nil, err
		}
	}
	l.pending = append(l.pending, start)
	if err := l.flush(); err != nil {
		return nil, err
	}
	if err := l.sync(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// continueChain picks up the chain where the file (or its newest backup)
// ends, and says in the start record how the previous run ended.
func (l *Logger) continueChain(start *Record) error {
	last, cut, err := l.o.File.lastRecord()
	if err != nil {
		return err
	}
	if last != nil {
		e, err := parseEntry(last)
		if err == nil {
			_, _, err = splitLine(last)
		}
		if err == nil {
			err = l.chain.setPrev(e.Seq, e.Hash)
		}
		if err != nil {
			return fmt.Errorf("audit: cannot continue the chain of %s: its last record is unreadable (%v); move the file away to start a new chain", l.o.File.o.Path, err)
		}
		start.Reason = "continues the chain; the previous run ended with a seal"
		if e.Event != EventSeal {
			start.Outcome = Failure
			start.Reason = "continues the chain; the previous run ended without a seal (a crash, or records cut while pubgate was stopped)"
		}
	}
	if cut > 0 {
		start.Outcome = Failure
		start.Reason += fmt.Sprintf("; removed a partial record of %d bytes at the end of the file", cut)
	}
	return nil
}

// Record queues a record; it never waits on the disk. It returns
// ErrUnavailable when the log is fail-closed and cannot take a record that
// grants access: the caller must refuse the action. Other records that
// cannot be queued are dropped and counted.
func (l *Logger) Record(r Record) error {
	mustRecord := l.o.FailClosed && r.Grants()
	q := l.queue
	q.mu.Lock()
	if !q.closed && mustRecord && l.failing.Load() {
		q.mu.Unlock()
		l.refused.Add(1)
		return ErrUnavailable
	}
	var timeout <-chan time.Time // a record that must be kept waits for room, this long
	for {
		switch {
		case q.closed:
			q.mu.Unlock()
			l.dropped.Add(1)
			return ErrClosed
		case q.n < len(q.ring):
			q.push(&r)
			q.mu.Unlock()
			return nil
		case !mustRecord:
			q.mu.Unlock()
			l.dropped.Add(1)
			return nil
		}
		if timeout == nil {
			t := time.NewTimer(l.o.EnqueueTimeout)
			defer t.Stop() //nolint:gocritic // deferInLoop: made once per call (timeout == nil), stopped when it returns
			timeout = t.C
		}
		q.waiting++
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-timeout:
			q.mu.Lock()
			q.waiting--
			q.mu.Unlock()
			l.refused.Add(1)
			return ErrUnavailable
		}
		q.mu.Lock()
		q.waiting--
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	return Stats{
		Written: l.written.Load(), Dropped: l.dropped.Load(), Refused: l.refused.Load(),
		QueueDepth: l.queue.waitingRecords(), QueueCapacity: len(l.queue.ring), Failing: l.failing.Load(),
	}
}

// Close writes what is queued and a seal, fsyncs and closes the sink. If
// the sink fails, it retries until ctx is done. Records offered after Close
// are dropped. Safe to call twice.
func (l *Logger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.queue.mu.Lock()
		l.queue.closed = true // what is queued now is all the writer will write
		l.queue.mu.Unlock()
		close(l.stop)
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		l.abandonOnce.Do(func() { close(l.abandon) })
		<-l.done
		return fmt.Errorf("audit: closed before everything was written: %w", ctx.Err())
	}
}

func (l *Logger) run() {
	defer close(l.done)
	fsync := time.NewTicker(l.o.FsyncInterval)
	defer fsync.Stop()
	seal := time.NewTicker(l.o.SealInterval)
	defer seal.Stop()
	gather := time.NewTimer(batchDelay)
	defer gather.Stop()
	for {
		select {
		case <-l.queue.wake:
			l.gather(gather)
			l.batch = l.queue.take(maxBatch)
			l.commit(false)
			if l.queue.waitingRecords() > 0 {
				l.queue.signal() // the next batch, after the other cases had a turn
			}
		case <-fsync.C:
			l.tick()
		case <-seal.C:
			if l.sinceSeal > 0 {
				l.pending = append(l.pending, l.internal(EventSeal, "periodic"))
				l.commit(true)
			}
		case <-l.stop:
			for l.queue.waitingRecords() > 0 {
				l.batch = l.queue.take(maxBatch)
				l.commit(false)
			}
			l.pending = append(l.pending, l.internal(EventSeal, "shutdown"))
			l.commit(true)
			l.report()
			// An anchor outside the files: what remains of a log cut back
			// to an earlier seal no longer ends with this one.
			l.o.Logger.Info("audit log sealed", zap.Uint64("seq", l.chain.seq), zap.String("hash", l.chain.prevHash()))
			if l.o.File != nil {
				_ = l.o.File.Close()
			}
			return
		}
	}
}

// batchDelay is how long the writer waits for more records to join a
// batch: under load, batches of many records cost one write each instead of
// a write per record. Sessions do not wait for the writer, so this delays
// no client; it only keeps records in memory a little longer.
const batchDelay = time.Millisecond

// gather waits until maxBatch records are queued (or the queue is full),
// or batchDelay has passed since the batch began.
func (l *Logger) gather(timer *time.Timer) {
	timer.Reset(batchDelay)
	for l.queue.waitingRecords() < l.queue.full() {
		select {
		case <-l.queue.wake: // maxBatch records wait, or a stale signal
		case <-timer.C:
			return
		case <-l.stop:
			return
		}
	}
}

// tick is the writer's periodic work: fsync, follow a file moved away,
// and report losses.
func (l *Logger) tick() {
	if l.o.File != nil && l.o.File.moved() {
		l.o.Logger.Warn("audit: the audit file was moved or deleted; sealing it and opening a new one", zap.String("path", l.o.File.o.Path))
		l.pending = append(l.pending, l.internal(EventSeal, "file moved"))
		l.commitThen(true, l.o.File.reopen)
	}
	if l.unsynced > 0 {
		l.commit(true)
	}
	l.report()
}

// commit writes pending (and fsyncs if asked), retrying a failing sink
// until it heals or Close gives up on it.
func (l *Logger) commit(fsync bool) { l.commitThen(fsync, nil) }

// commitThen is commit followed by an action on the sink (reopening it)
// and the start of the new file.
func (l *Logger) commitThen(fsync bool, then func() error) {
	attempt := func() error {
		if err := l.flush(); err != nil {
			return err
		}
		if fsync || l.unsynced >= l.o.FsyncRecords {
			if err := l.sync(); err != nil {
				return err
			}
		}
		if then != nil {
			if err := then(); err != nil {
				return err
			}
			then = nil
			return l.flush() // a new file starts by naming the last hash
		}
		return nil
	}
	for err := attempt(); err != nil; err = attempt() {
		if !l.failing.Swap(true) {
			l.o.Logger.Error("audit: cannot write the audit log; retrying", zap.Error(err),
				zap.Bool("fail_closed", l.o.FailClosed), zap.Int("records_held", len(l.batch)+len(l.pending)))
		}
		select {
		case <-time.After(l.o.RetryInterval):
		case <-l.abandon:
			lost := len(l.batch) + len(l.pending)
			l.dropped.Add(int64(lost))
			l.o.Logger.Error("audit: gave up writing at shutdown", zap.Int("records_lost", lost), zap.Error(err))
			l.letGo()
			return
		}
	}
	if l.failing.Swap(false) {
		l.o.Logger.Info("audit: the audit log is writable again")
	}
}

// flush writes the batch and the pending records, rotating the file first
// if it is due.
func (l *Logger) flush() error {
	if l.o.File != nil && l.o.File.rotationDue(time.Now()) {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if err := l.write(l.batch, l.pending); err != nil {
		return err
	}
	l.letGo()
	return nil
}

// letGo lets go of the batch and the pending records, written or lost.
func (l *Logger) letGo() {
	if l.batch != nil {
		l.queue.release(l.batch)
		l.batch = nil
	}
	clear(l.pending) // drop payload copies
	l.pending = l.pending[:0]
}

// write chains records, those of batch then those of pending, and writes
// them in one write; a new file starts with a file_start record. On
// failure the chain is rewound, so that the records are chained again,
// after whatever the next file must start with.
func (l *Logger) write(batch, pending []Record) (err error) {
	seq, prev := l.chain.seq, l.chain.prev
	defer func() {
		if err != nil {
			l.chain.seq, l.chain.prev = seq, prev
		}
	}()
	buf := l.buf[:0]
	if l.o.File != nil && l.o.File.empty() && seq > 0 {
		start := l.internal(EventFileStart, "")
		buf = l.chain.next(buf, &start)
	}
	for _, records := range [2][]Record{batch, pending} {
		for i := range records {
			buf = l.chain.next(buf, &records[i])
		}
	}
	if len(buf) == 0 {
		return nil
	}
	if _, err := l.sink.Write(buf); err != nil {
		l.buf = buf[:0]
		return err
	}
	l.buf = buf[:0]
	l.count(batch)
	l.count(pending)
	return nil
}

// count updates the counters after records were written.
func (l *Logger) count(records []Record) {
	for i := range records {
		if records[i].Event == EventSeal {
			l.sinceSeal = 0
			continue
		}
		l.sinceSeal++
		if !records[i].internal() {
			l.written.Add(1)
		}
	}
	l.unsynced += len(records)
}

// rotate seals the file, fsyncs it and moves it aside.
func (l *Logger) rotate() error {
	if err := l.write(nil, []Record{l.internal(EventSeal, "rotate")}); err != nil {
		return err
	}
	if err := l.sync(); err != nil {
		return err
	}
	return l.o.File.rotate()
}

func (l *Logger) sync() error {
	if l.unsynced == 0 {
		return nil
	}
	var err error
	switch s := l.sink.(type) {
	case *File:
		err = s.Sync()
	case *os.File:
		// Best effort: a pipe or a terminal cannot be fsynced.
		if e := s.Sync(); e != nil && !errors.Is(e, syscall.EINVAL) && !errors.Is(e, errors.ErrUnsupported) {
			err = e
		}
	}
	if err == nil {
		l.unsynced = 0
	}
	return err
}

// internal makes one of the log's own records.
func (l *Logger) internal(event Event, reason string) Record {
	return Record{Time: time.Now(), Event: event, Outcome: Success, Reason: reason}
}

func (r *Record) internal() bool {
	return r.Event == EventSeal || r.Event == EventFileStart || r.Event == EventAuditStart
}

// report logs records dropped or refused since the last report.
func (l *Logger) report() {
	dropped, refused := l.dropped.Load(), l.refused.Load()
	if lost := dropped + refused; lost > l.reported {
		l.o.Logger.Warn("audit: records not written", zap.Int64("dropped_total", dropped),
			zap.Int64("refused_total", refused), zap.Bool("fail_closed", l.o.FailClosed))
		l.reported = lost
	}
}
