package audit

import "sync"

// queue hands records from sessions to the writer: a ring of QueueSize
// records under a mutex, which the writer empties a span at a time.
//
// It replaced a channel of records, which cost each record two copies, a
// channel operation on each side and, whenever the writer had caught up,
// a wake-up of the writer's goroutine: the writer is now woken once per
// batch (when a record lands in an empty queue, and when a batch is full),
// and encodes records where they lie in the ring.
type queue struct {
	mu      sync.Mutex
	ring    []Record
	head    int // the oldest record the writer has not released
	n       int // records in the ring, taken by the writer or not
	taken   int // records from head that the writer is writing
	closed  bool
	waiting int           // callers waiting for room (fail closed)
	room    chan struct{} // closed, and replaced, when room is made for them
	// wake tells the writer that a batch began (a record landed in an
	// empty queue) or is full (maxBatch records wait, or the queue is
	// full).
	wake chan struct{}
}

func newQueue(size int) *queue {
	return &queue{ring: make([]Record, size), room: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// push adds r at the tail; the caller holds mu and has seen room for it.
func (q *queue) push(r *Record) {
	q.ring[(q.head+q.n)%len(q.ring)] = *r
	q.n++
	if waiting := q.n - q.taken; waiting == 1 || waiting == q.full() {
		q.signal()
	}
}

// full is how many waiting records make a batch that the writer should
// not wait to add to: maxBatch, or all the queue holds.
func (q *queue) full() int { return min(maxBatch, len(q.ring)) }

// waitingRecords is how many records wait for the writer, not counting
// those it is writing.
func (q *queue) waitingRecords() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n - q.taken
}

// take hands the writer the oldest records that wait, at most max and
// without wrapping around the ring: it may read them until it releases
// them, and nothing else touches them meanwhile.
func (q *queue) take(max int) []Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	start := (q.head + q.taken) % len(q.ring)
	k := min(q.n-q.taken, max, len(q.ring)-start)
	q.taken += k
	return q.ring[start : start+k]
}

// release gives back span, the records taken, once written (or lost), and
// makes room for callers waiting for it.
func (q *queue) release(span []Record) {
	clear(span) // drop payload copies and names; the span is still the writer's
	q.mu.Lock()
	defer q.mu.Unlock()
	k := len(span)
	q.head, q.n, q.taken = (q.head+k)%len(q.ring), q.n-k, q.taken-k
	if q.waiting > 0 && k > 0 {
		close(q.room)
		q.room = make(chan struct{})
	}
}

// signal wakes the writer (if it is not already to wake).
func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
