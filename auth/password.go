package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
)

// PasswordUser is one entry of the password table.
type PasswordUser struct {
	Tenant       string
	PasswordHash string // bcrypt
	Roles        []string
}

// PasswordOptions tune how Passwords spends CPU on bcrypt.
type PasswordOptions struct {
	// VerifiedUsers is how many users' last verified password are
	// remembered as a keyed hash (see CredentialKeyer), so that their next
	// logins skip bcrypt; 0 turns the cache off.
	VerifiedUsers int
	// Concurrency bounds the bcrypt checks running at once; 0: GOMAXPROCS.
	Concurrency int
	// MaxQueued bounds the checks waiting for their turn; further logins
	// get ErrBusy. 0: DefaultMaxQueued.
	MaxQueued int
}

const (
	// DefaultVerifiedUsers is the verified-credential cache's default size
	// (NewPasswords), and auth.verified_cache.max_users' default
	// (config.Default uses it).
	DefaultVerifiedUsers = 10_000
	// DefaultMaxQueued is the default bound of the bcrypt queue, the
	// default limits.max_clients (a connection checks one AUTH at a time).
	DefaultMaxQueued = 10_000
)

// Passwords authenticates users against bcrypt hashes. Update replaces the
// table while it is in use.
//
// A bcrypt check costs tens of milliseconds of CPU on purpose, which a
// storm of reconnecting clients multiplies. So Passwords checks the same
// (user, password) once at a time however many logins present it at once
// (they share the outcome), runs at most Concurrency checks at a time, and
// remembers the last password verified for each user (PasswordOptions).
type Passwords struct {
	table   atomic.Pointer[passwordTable]
	keyer   *CredentialKeyer
	cache   *verifiedCache // nil: off
	flights singleflight.Group
	pool    *bcryptPool

	hits, misses atomic.Int64
}

type passwordTable struct {
	users map[string]PasswordUser
	// decoy is compared against when the user is unknown, so that a wrong
	// user name costs the same time as a wrong password.
	decoy []byte
}

var _ Authenticator = (*Passwords)(nil)

// NewPasswords builds the table with the default options; every hash must
// be a valid bcrypt hash.
func NewPasswords(users map[string]PasswordUser) (*Passwords, error) {
	return NewPasswordsWith(users, PasswordOptions{VerifiedUsers: DefaultVerifiedUsers})
}

// NewPasswordsWith is NewPasswords with options.
func NewPasswordsWith(users map[string]PasswordUser, o PasswordOptions) (*Passwords, error) {
	if o.VerifiedUsers < 0 || o.Concurrency < 0 || o.MaxQueued < 0 {
		return nil, fmt.Errorf("auth: negative password options %+v", o)
	}
	if o.Concurrency == 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	p := &Passwords{keyer: NewCredentialKeyer(), cache: newVerifiedCache(o.VerifiedUsers), pool: newBcryptPool(o.Concurrency, o.MaxQueued)}
	if err := p.Update(users); err != nil {
		return nil, err
	}
	return p, nil
}

// Update replaces the table for the logins that follow; on error (a hash
// that is not bcrypt) the table in effect stays. Remembered passwords of
// users it removes or gives another hash are forgotten, so an old
// password fails from the next login on.
func (p *Passwords) Update(users map[string]PasswordUser) error {
	apply, err := p.Stage(users)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// Stage checks a new table and returns what puts it into effect (Update's
// two halves), for a configuration reload that applies all its parts or
// none: nothing changes until apply runs.
func (p *Passwords) Stage(users map[string]PasswordUser) (apply func(), err error) {
	cost := bcrypt.DefaultCost
	for name, u := range users {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("auth: user %s: %w", name, err)
		}
		cost = max(cost, c)
	}
	decoy, err := bcrypt.GenerateFromPassword([]byte("pubgate decoy password"), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return func() {
		p.table.Store(&passwordTable{users: users, decoy: decoy})
		p.cache.forgetChanged(users)
	}, nil
}

// Authenticate compares the password with the user's bcrypt hash, unless
// the same password was verified against the same hash before. It waits
// for its turn at bcrypt whatever ctx allows (the queue is bounded
// instead), and fails with ErrBusy when the queue is full.
func (p *Passwords) Authenticate(_ context.Context, c Credentials) (Identity, error) {
	t := p.table.Load()
	u, known := t.users[c.Username]
	sum := p.keyer.Sum(c)
	if known && p.cache != nil {
		if p.recall(c.Username, sum, u.PasswordHash) {
			return p.identity(c.Username, u), nil
		}
		p.misses.Add(1)
	}
	hash := t.decoy
	if known {
		hash = []byte(u.PasswordHash)
	}
	match, err := p.compare(sum, hash, c.Password)
	if err != nil {
		return Identity{}, err
	}
	if !known || !match {
		return Identity{}, ErrInvalidCredentials
	}
	p.cache.remember(c.Username, sum, u.PasswordHash)
	return p.identity(c.Username, u), nil
}

// Verified returns the identity of credentials verified before against
// the user's current hash, without bcrypt; false if they were not (which
// says nothing about whether they are correct).
func (p *Passwords) Verified(c Credentials) (Identity, bool) {
	if p.cache == nil {
		return Identity{}, false
	}
	u, known := p.table.Load().users[c.Username]
	if !known || !p.recall(c.Username, p.keyer.Sum(c), u.PasswordHash) {
		return Identity{}, false // a miss if Authenticate follows, counted there
	}
	return p.identity(c.Username, u), true
}

// recall tells whether the credentials were verified against hash before,
// counting a hit.
func (p *Passwords) recall(user string, sum [sha256.Size]byte, hash string) bool {
	if !p.cache.has(user, sum, hash) {
		return false
	}
	p.hits.Add(1)
	return true
}

// compare runs one bcrypt check for all the logins presenting the same
// credentials against the same hash at once.
func (p *Passwords) compare(sum [sha256.Size]byte, hash []byte, password string) (bool, error) {
	key := string(sum[:]) + string(hash)
	match, err, _ := p.flights.Do(key, func() (any, error) {
		return p.pool.compare(hash, []byte(password))
	})
	return match.(bool), err
}

// Lookup returns the identity of a configured user without checking a
// password, for auth.default_user and for identities that a new
// configuration changes.
func (p *Passwords) Lookup(user string) (Identity, bool) {
	u, ok := p.table.Load().users[user]
	if !ok {
		return Identity{}, false
	}
	return p.identity(user, u), true
}

func (p *Passwords) identity(name string, u PasswordUser) Identity {
	return Identity{Tenant: u.Tenant, User: name, Roles: append([]string(nil), u.Roles...), Method: MethodPassword}
}

// PasswordStats counts what password logins cost, for metrics.
type PasswordStats struct {
	// CacheHits and CacheMisses count logins of configured users whose
	// password was, or was not, verified before (cache on only); logins
	// that share another's check (the proxy's) are not counted again.
	CacheHits, CacheMisses int64
	CachedUsers            int
	// Comparisons counts bcrypt checks run; QueueWaits those that waited
	// for their turn, QueueWait how long in all; QueueFull the logins
	// refused with ErrBusy.
	Comparisons, QueueWaits, QueueFull int64
	QueueWait                          time.Duration
}

// Stats is a snapshot of the counters.
func (p *Passwords) Stats() PasswordStats {
	return PasswordStats{
		CacheHits: p.hits.Load(), CacheMisses: p.misses.Load(), CachedUsers: p.cache.len(),
		Comparisons: p.pool.comparisons.Load(), QueueWaits: p.pool.waits.Load(), QueueFull: p.pool.refused.Load(),
		QueueWait: time.Duration(p.pool.waitedNanos.Load()),
	}
}
