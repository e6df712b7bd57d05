package proxy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pubgate/pubgate/audit"
	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/internal/testutil"
	"golang.org/x/crypto/bcrypt"
)

// stormUsers is the test table with "storm", whose hash has bcrypt's
// default cost (10), as a production hash does: each check costs tens of
// milliseconds of CPU.
func stormUsers(t *testing.T) map[string]auth.PasswordUser {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("storm-secret"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]auth.PasswordUser{"storm": {Tenant: "acme", PasswordHash: string(hash), Roles: []string{"subscriber"}}}
	for name, u := range testUsers {
		users[name] = u
	}
	return users
}

// slowHash is a bcrypt hash of "storm-secret" whose check takes at least
// min here (the race detector makes bcrypt many times slower), at the
// lowest such cost up to the default.
func slowHash(t *testing.T, min time.Duration) string {
	t.Helper()
	for cost := bcrypt.MinCost; ; cost++ {
		hash, err := bcrypt.GenerateFromPassword([]byte("storm-secret"), cost)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = bcrypt.CompareHashAndPassword(hash, []byte("storm-secret"))
		if time.Since(start) >= min || cost == bcrypt.DefaultCost {
			return string(hash)
		}
	}
}

// readAll reads one reply from each connection, concurrently.
func readAll(conns []*testutil.RESPConn) []string {
	replies := make([]string, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			r, err := c.TryRead(120 * time.Second)
			if err != nil {
				r = "read: " + err.Error()
			}
			replies[i] = r
		})
	}
	wg.Wait()
	return replies
}

// TestLoginStormOfOneUser: 300 clients of one user log in at once, as after
// a node drains, with the production throttle and a login timeout shorter
// than 300 bcrypt checks take on a small machine. All get in, none is
// refused or closed: they share one bcrypt check and then the remembered
// verification, and the time an AUTH waits is not held against the login
// timeout.
func TestLoginStormOfOneUser(t *testing.T) {
	const clients = 300
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		pw, err := auth.NewPasswords(stormUsers(t))
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = pw
		o.Throttle = auth.NewThrottle(5, time.Minute, 2*time.Second)
		o.LoginTimeout = 3 * time.Second
		o.Audit = rec
	})
	conns := make([]*testutil.RESPConn, clients)
	for i := range conns {
		conns[i] = testutil.DialRESP(t, env.addr)
		conns[i].Send("AUTH", "storm", "storm-secret")
	}
	replies := readAll(conns)
	refused := 0
	for i, r := range replies {
		if r != "OK" {
			refused++
			if refused <= 3 {
				t.Errorf("client %d: %s", i, r)
			}
		}
	}
	if refused > 0 {
		t.Fatalf("%d of %d logins refused", refused, clients)
	}
	if n := len(rec.find(audit.EventAuth, audit.Failure)); n != 0 {
		t.Fatalf("%d failed logins recorded", n)
	}
	if st := env.passwords.Stats(); st.Comparisons > 5 {
		t.Fatalf("%d bcrypt comparisons for %d logins of one user", st.Comparisons, clients)
	}
	for i, c := range conns[:10] {
		if got := c.Do("SUBSCRIBE", "news"); !strings.HasPrefix(got, `["subscribe"`) {
			t.Fatalf("client %d after login: %s", i, got)
		}
	}
}

// TestLoginQueueDoesNotCountAgainstLoginTimeout: 20 users log in at once,
// each a bcrypt check of its own (40ms or more), run one at a time: far
// longer than the login timeout. A client that sent AUTH in time waits for its turn and
// gets in; the login timeout still closes a client that sends nothing.
func TestLoginQueueDoesNotCountAgainstLoginTimeout(t *testing.T) {
	const clients = 20
	users := acmeUsers(clients, slowHash(t, 40*time.Millisecond))
	env := startProxy(t, nil, func(o *Options) {
		pw, err := auth.NewPasswordsWith(users, auth.PasswordOptions{Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = pw
		o.Throttle = auth.NewThrottle(5, time.Minute, 100*time.Millisecond)
		o.LoginTimeout = 300 * time.Millisecond
	})
	idle := testutil.DialRESP(t, env.addr)
	conns := make([]*testutil.RESPConn, clients)
	for i := range conns {
		conns[i] = testutil.DialRESP(t, env.addr)
		conns[i].Send("AUTH", fmt.Sprint("user", i), "storm-secret")
	}
	for i, r := range readAll(conns) {
		if r != "OK" {
			t.Errorf("user%d: %s", i, r)
		}
	}
	if st := env.passwords.Stats(); st.Comparisons != clients || st.QueueWaits == 0 {
		t.Fatalf("%d bcrypt checks, %d waited; want %d, some waiting", st.Comparisons, st.QueueWaits, clients)
	}
	if got, err := idle.TryRead(5 * time.Second); err != nil || !strings.HasPrefix(got, "-ERR pubgate: no AUTH within") {
		t.Fatalf("a client that sent nothing: %q, %v", got, err)
	}
}

// TestWrongPasswordAfterCachedLogin: a verified password is let in without
// bcrypt or a throttle turn; a wrong one after it is checked, refused and
// counted by the failed-login throttle, which then holds back further
// guesses but not the known-correct password.
func TestWrongPasswordAfterCachedLogin(t *testing.T) {
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		o.Throttle = auth.NewThrottle(3, time.Minute, time.Second)
		o.Audit = rec
	})
	c := testutil.DialRESP(t, env.addr)
	for range 2 {
		if got := c.Do("AUTH", "alice", "alice-secret"); got != "OK" {
			t.Fatal(got)
		}
	}
	if n := env.passwords.Stats().Comparisons; n != 1 {
		t.Fatalf("%d bcrypt checks for two logins with the same password", n)
	}
	for range 4 { // pipelined: the 4th arrives within the delay after the 3rd failure
		c.Send("AUTH", "alice", "guess")
	}
	for i := range 4 {
		if got := c.Read(); got != wrongPass {
			t.Fatalf("guess %d after a cached login: %s", i+1, got)
		}
	}
	if got := c.Do("AUTH", "alice", "alice-secret"); got != "OK" {
		t.Fatalf("the right password after the guesses: %s", got)
	}
	failures := rec.find(audit.EventAuth, audit.Failure)
	if len(failures) != 4 {
		t.Fatalf("%d failures recorded, want 4", len(failures))
	}
	if _, throttled := throttledDelay(t, failures[3].Reason); !throttled {
		t.Fatalf("the 4th guess was not held back by the throttle: %q", failures[3].Reason)
	}
	successes := rec.find(audit.EventAuth, audit.Success)
	if last := successes[len(successes)-1]; last.Reason != "" {
		t.Fatalf("the known-correct password was held back: %q", last.Reason)
	}
	if n := env.passwords.Stats().Comparisons; n != 5 {
		t.Fatalf("%d bcrypt checks, want 5 (the first login and the 4 guesses)", n)
	}
}

// TestIdenticalWrongLoginsAllCount: clients sending the same wrong
// password at once share one check, and every one of them counts as a
// failure at the throttle.
func TestIdenticalWrongLoginsAllCount(t *testing.T) {
	const clients = 20
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		pw, err := auth.NewPasswords(stormUsers(t)) // cost 10: the logins overlap
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = pw
		o.Throttle = auth.NewThrottle(clients/2, time.Minute, time.Second)
		o.Audit = rec
	})
	conns := make([]*testutil.RESPConn, clients)
	for i := range conns {
		conns[i] = testutil.DialRESP(t, env.addr)
	}
	for _, c := range conns {
		c.Send("AUTH", "storm", "guess")
	}
	for i, c := range conns {
		if got := c.Read(); got != wrongPass {
			t.Fatalf("client %d: %s", i, got)
		}
	}
	if n := env.passwords.Stats().Comparisons; n >= clients {
		t.Fatalf("%d bcrypt checks for %d identical logins at once", n, clients)
	}
	// 20 failures at max_failures 10: the next login waits max_delay (1s)
	// after the last one; had only the checks run counted, it would not.
	if got := testutil.DialRESP(t, env.addr).Do("AUTH", "storm", "storm-secret"); got != "OK" {
		t.Fatal(got)
	}
	ok := rec.find(audit.EventAuth, audit.Success)
	if len(ok) != 1 {
		t.Fatalf("successes %+v", ok)
	}
	if d, _ := throttledDelay(t, ok[0].Reason); d < 500*time.Millisecond {
		t.Fatalf("after %d failures the next login was not held back a max_delay: %q", clients, ok[0].Reason)
	}
}

// TestLoginQueueFull: beyond the bcrypt queue's bound a login is refused
// with an error that says why, and audited; never let in unchecked.
func TestLoginQueueFull(t *testing.T) {
	const clients = 5
	users := acmeUsers(clients, slowHash(t, 200*time.Millisecond))
	rec := &recorder{}
	env := startProxy(t, nil, func(o *Options) {
		pw, err := auth.NewPasswordsWith(users, auth.PasswordOptions{Concurrency: 1, MaxQueued: 1})
		if err != nil {
			t.Fatal(err)
		}
		o.Auth = pw
		o.Audit = rec
	})
	conns := make([]*testutil.RESPConn, clients)
	for i := range conns {
		conns[i] = testutil.DialRESP(t, env.addr)
		conns[i].Send("AUTH", fmt.Sprint("user", i), "storm-secret")
	}
	const full = "-ERR pubgate: too many logins are waiting for a password check; try again"
	refused := 0
	for i, r := range readAll(conns) {
		switch r {
		case "OK":
		case full:
			refused++
			if got := conns[i].Do("PUBLISH", "news", "x"); !strings.HasPrefix(got, "-NOAUTH") {
				t.Fatalf("a refused login may publish: %s", got)
			}
		default:
			t.Fatalf("user%d: %s", i, r)
		}
	}
	if refused == 0 {
		t.Fatal("5 logins at once, one bcrypt check at a time and one queued: none refused")
	}
	failures := rec.find(audit.EventAuth, audit.Failure)
	if len(failures) != refused || failures[0].Reason != "refused: too many logins waiting for a password check" {
		t.Fatalf("%d refusals, audit failures %+v", refused, failures)
	}
	if st := env.passwords.Stats(); st.QueueFull != int64(refused) {
		t.Fatalf("queue-full count %d, refused %d", st.QueueFull, refused)
	}
}

// acmeUsers are n users of tenant acme, user0 to user<n-1>, with one hash.
func acmeUsers(n int, hash string) map[string]auth.PasswordUser {
	users := map[string]auth.PasswordUser{}
	for i := range n {
		users[fmt.Sprint("user", i)] = auth.PasswordUser{Tenant: "acme", PasswordHash: hash}
	}
	return users
}
