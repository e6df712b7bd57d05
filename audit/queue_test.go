package audit

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestQueueKeepsEveryRecordInOrder records from many goroutines through a
// queue much smaller than what they send and not a multiple of a batch, so
// that spans wrap around the ring and callers wait for room: every record
// is written once, each goroutine's in the order it recorded them, and the
// chain verifies.
func TestQueueKeepsEveryRecordInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogger(t, path, func(o *Options) { o.QueueSize = 37; o.EnqueueTimeout = time.Minute })
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := l.Record(subscribeRecord(fmt.Sprintf("g%d.%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Written != goroutines*each || s.Dropped != 0 || s.Refused != 0 || s.QueueDepth != 0 {
		t.Fatalf("stats %+v", s)
	}
	rep := mustVerify(t, path)
	if rep.Records != goroutines*each+2 {
		t.Fatalf("report %+v", rep)
	}
	next := make([]int, goroutines)
	for _, line := range lines(t, path) {
		e, err := parseEntry(bytes.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		if e.Event != EventAuthz {
			continue
		}
		var g, i int
		if _, err := fmt.Sscanf(e.Channel, "g%d.%d", &g, &i); err != nil {
			t.Fatal(err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: record %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}
