package auth

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBusy refuses a login when too many password checks already wait for
// the CPU. It is not ErrInvalidCredentials: the password was not checked.
var ErrBusy = errors.New("auth: too many logins waiting for a password check")

// bcryptPool runs bcrypt comparisons at most size at a time; the others
// wait their turn, first come first served, at most maxQueued of them.
// bcrypt is CPU work: running more comparisons at once than there are
// CPUs only makes each one take longer.
type bcryptPool struct {
	slots     chan struct{}
	maxQueued int64
	queued    atomic.Int64

	comparisons, waits, waitedNanos, refused atomic.Int64
}

func newBcryptPool(size, maxQueued int) *bcryptPool {
	return &bcryptPool{slots: make(chan struct{}, size), maxQueued: int64(maxQueued)}
}

// compare tells whether password matches hash. Its wait for a turn has no
// deadline on purpose: a login that waits here is served in its turn, and
// the queue is bounded instead.
func (p *bcryptPool) compare(hash, password []byte) (bool, error) {
	if err := p.acquire(); err != nil {
		return false, err
	}
	defer func() { <-p.slots }()
	p.comparisons.Add(1)
	return bcrypt.CompareHashAndPassword(hash, password) == nil, nil
}

func (p *bcryptPool) acquire() error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	if p.queued.Add(1) > p.maxQueued {
		p.queued.Add(-1)
		p.refused.Add(1)
		return ErrBusy
	}
	start := time.Now()
	p.slots <- struct{}{} // blocked senders are served in order
	p.queued.Add(-1)
	p.waits.Add(1)
	p.waitedNanos.Add(int64(time.Since(start)))
	return nil
}
