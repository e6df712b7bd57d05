package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/internal/testutil"
)

// bobHash is a cost-4 bcrypt hash of "bob-secret".
const bobHash = "$2a$04$SnBykhZXFtBBv0sP4wu3vet/r4e2npKyQGCzaO2sc/O8V/Ye366de"

func newTestPasswords(t *testing.T, o PasswordOptions) *Passwords {
	t.Helper()
	p, err := NewPasswordsWith(map[string]PasswordUser{
		"alice": {Tenant: "acme", PasswordHash: aliceHash, Roles: []string{"publisher"}},
		"bob":   {Tenant: "acme", PasswordHash: bobHash},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loginCost logs in and returns how many bcrypt checks the login ran, and
// its error.
func loginCost(p *Passwords, user, pass string) (int64, error) {
	before := p.Stats().Comparisons
	_, err := p.Authenticate(context.Background(), Credentials{Username: user, Password: pass})
	return p.Stats().Comparisons - before, err
}

func wantLogin(t *testing.T, p *Passwords, user, pass string, ok bool, bcrypts int64) {
	t.Helper()
	n, err := loginCost(p, user, pass)
	if ok != (err == nil) || (!ok && !errors.Is(err, ErrInvalidCredentials)) {
		t.Fatalf("%s/%s: err %v, want ok=%v", user, pass, err, ok)
	}
	if n != bcrypts {
		t.Fatalf("%s/%s: %d bcrypt checks, want %d", user, pass, n, bcrypts)
	}
}

// TestVerifiedCache: a password verified once is known correct without
// bcrypt while the user's hash stays; any other password still goes to
// bcrypt and fails.
func TestVerifiedCache(t *testing.T) {
	p := newTestPasswords(t, PasswordOptions{VerifiedUsers: 10})
	wantLogin(t, p, "alice", "alice-secret", true, 1)
	wantLogin(t, p, "alice", "alice-secret", true, 0)
	wantLogin(t, p, "alice", "wrong", false, 1)
	wantLogin(t, p, "alice", "alice-secret", true, 0) // a failure does not evict
	wantLogin(t, p, "alice", "wrong", false, 1)       // nor is it remembered
	wantLogin(t, p, "bob", "alice-secret", false, 1)
	wantLogin(t, p, "mallory", "alice-secret", false, 1) // the decoy check
	if id, ok := p.Verified(Credentials{Username: "alice", Password: "alice-secret"}); !ok || id.Tenant != "acme" || id.Roles[0] != "publisher" {
		t.Fatalf("Verified(alice) = %+v, %v", id, ok)
	}
	for _, c := range []Credentials{{"alice", "wrong"}, {"bob", "bob-secret"}, {"mallory", "alice-secret"}} {
		if _, ok := p.Verified(c); ok {
			t.Fatalf("Verified(%s/%s) without a verified login", c.Username, c.Password)
		}
	}
	// Misses: alice's first login, her two wrong ones, bob's wrong one;
	// a Verified that finds nothing is counted by the Authenticate after it.
	if st := p.Stats(); st.CacheHits != 3 || st.CacheMisses != 4 || st.CachedUsers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestVerifiedCacheForgetsChangedPasswords: after Update the old password
// of a user whose hash changed fails at once, the new one is checked; a
// removed user is refused; an unchanged user stays remembered.
func TestVerifiedCacheForgetsChangedPasswords(t *testing.T) {
	p := newTestPasswords(t, PasswordOptions{VerifiedUsers: 10})
	wantLogin(t, p, "alice", "alice-secret", true, 1)
	wantLogin(t, p, "bob", "bob-secret", true, 1)
	wantLogin(t, p, "carol", "bob-secret", false, 1)
	err := p.Update(map[string]PasswordUser{
		"alice": {Tenant: "acme", PasswordHash: bobHash}, // alice's password is now bob-secret
		"carol": {Tenant: "acme", PasswordHash: bobHash},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().CachedUsers; n != 0 {
		t.Fatalf("%d users remembered after their hashes changed or they went", n)
	}
	wantLogin(t, p, "alice", "alice-secret", false, 1)
	wantLogin(t, p, "alice", "bob-secret", true, 1)
	wantLogin(t, p, "alice", "bob-secret", true, 0)
	wantLogin(t, p, "bob", "bob-secret", false, 1)
	wantLogin(t, p, "carol", "bob-secret", true, 1)
	// An Update that keeps a user's hash keeps its verified password.
	if err := p.Update(map[string]PasswordUser{"alice": {Tenant: "globex", PasswordHash: bobHash}}); err != nil {
		t.Fatal(err)
	}
	wantLogin(t, p, "alice", "bob-secret", true, 0)
	if id, _ := p.Verified(Credentials{Username: "alice", Password: "bob-secret"}); id.Tenant != "globex" {
		t.Fatalf("a remembered login kept the old tenant: %+v", id)
	}
}

// TestVerifiedCacheOff: without the cache every login runs bcrypt.
func TestVerifiedCacheOff(t *testing.T) {
	p := newTestPasswords(t, PasswordOptions{})
	for range 3 {
		wantLogin(t, p, "alice", "alice-secret", true, 1)
	}
	if _, ok := p.Verified(Credentials{Username: "alice", Password: "alice-secret"}); ok {
		t.Fatal("Verified with the cache off")
	}
	if st := p.Stats(); st.CacheHits != 0 || st.CacheMisses != 0 || st.CachedUsers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestVerifiedCacheIsBounded: beyond its size the least recently used
// user is forgotten, and its next login runs bcrypt again.
func TestVerifiedCacheIsBounded(t *testing.T) {
	p, err := NewPasswordsWith(map[string]PasswordUser{
		"a": {PasswordHash: aliceHash}, "b": {PasswordHash: aliceHash}, "c": {PasswordHash: aliceHash},
	}, PasswordOptions{VerifiedUsers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "c"} {
		wantLogin(t, p, u, "alice-secret", true, 1)
	}
	if n := p.Stats().CachedUsers; n != 2 {
		t.Fatalf("%d users remembered, bound 2", n)
	}
	wantLogin(t, p, "c", "alice-secret", true, 0)
	wantLogin(t, p, "a", "alice-secret", true, 1)
}

// TestConcurrentIdenticalLoginsShareOneCheck: logins of the same
// credentials at once run one bcrypt check and share its outcome, a
// failure included; other credentials are checked on their own.
func TestConcurrentIdenticalLoginsShareOneCheck(t *testing.T) {
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"alice-secret", true}, {"guess", false}} {
		p := newTestPasswords(t, PasswordOptions{Concurrency: 1})
		p.pool.slots <- struct{}{} // bcrypt is busy: the logins pile up
		const n = 50
		errs := make(chan error, n)
		var started sync.WaitGroup
		for range n {
			started.Add(1)
			go func() {
				started.Done()
				_, err := p.Authenticate(context.Background(), Credentials{Username: "alice", Password: tc.pass})
				errs <- err
			}()
		}
		started.Wait()
		testutil.Eventually(t, "a login queued for bcrypt", func() bool { return p.pool.queued.Load() == 1 })
		time.Sleep(50 * time.Millisecond) // the others reach the check in progress
		if q := p.pool.queued.Load(); q != 1 {
			t.Fatalf("%d checks queued for %d identical logins", q, n)
		}
		<-p.pool.slots
		for range n {
			if err := <-errs; (err == nil) != tc.ok {
				t.Fatalf("%s: %v", tc.pass, err)
			}
		}
		if c := p.Stats().Comparisons; c != 1 {
			t.Fatalf("%s: %d bcrypt checks for %d identical logins", tc.pass, c, n)
		}
	}
}

// TestBcryptQueueIsBounded: checks beyond the concurrency wait their turn
// with no deadline of their own; beyond the queue bound they are refused
// with ErrBusy, not as wrong credentials.
func TestBcryptQueueIsBounded(t *testing.T) {
	p := newTestPasswords(t, PasswordOptions{Concurrency: 1, MaxQueued: 1})
	p.pool.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	queued := make(chan error, 1)
	go func() {
		_, err := p.Authenticate(ctx, Credentials{Username: "alice", Password: "alice-secret"})
		queued <- err
	}()
	testutil.Eventually(t, "a login queued for bcrypt", func() bool { return p.pool.queued.Load() == 1 })
	_, err := p.Authenticate(context.Background(), Credentials{Username: "bob", Password: "bob-secret"})
	if !errors.Is(err, ErrBusy) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("login beyond the queue: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // past the queued login's ctx deadline
	<-p.pool.slots
	if err := <-queued; err != nil {
		t.Fatalf("queued login: %v", err)
	}
	if st := p.Stats(); st.QueueWaits != 1 || st.QueueFull != 1 || st.QueueWait <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCredentialKeyer: the keyed hash tells (user, password) pairs apart
// however the bytes split, and each keyer has its own key.
func TestCredentialKeyer(t *testing.T) {
	k := NewCredentialKeyer()
	a := k.Sum(Credentials{Username: "ab", Password: "c"})
	if a == k.Sum(Credentials{Username: "a", Password: "bc"}) {
		t.Fatal("two pairs with the same bytes hash alike")
	}
	if a != k.Sum(Credentials{Username: "ab", Password: "c"}) {
		t.Fatal("the same pair hashes differently")
	}
	if a == NewCredentialKeyer().Sum(Credentials{Username: "ab", Password: "c"}) {
		t.Fatal("two keyers share a key")
	}
}
