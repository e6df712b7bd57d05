package policy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pubgate/pubgate/upstream"
	"go.uber.org/zap"
)

var testData = map[string]any{
	"tenants":   map[string]any{"acme": map[string]any{"prefix": "acme:"}, "globex": map[string]any{"prefix": "globex:"}},
	"users":     map[string]any{},
	"namespace": map[string]any{"mode": "enforce", "shared_prefix": ""},
}

// writePolicy writes files (name → content) into a fresh directory.
func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newAuthorizer(t testing.TB, src Sources) *Authorizer {
	t.Helper()
	if src.Data == nil {
		src.Data = testData
	}
	// A busy test machine may stall one evaluation past the default
	// 100ms: decisions, not timeouts, are what these tests check.
	a, err := New(context.Background(), Options{Sources: src, CacheSize: 100, Logger: zap.NewNop(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var acmeAlice = NewSubject(Subject{Tenant: "acme", User: "alice", Roles: []string{"publisher"}, Method: "password"})

func ask(a *Authorizer, action Action, channel string) Decision {
	return a.Authorize(context.Background(), &Request{
		Subject: acmeAlice, Action: action, Channel: channel, Upstream: channel, PatternPrefix: literal(action, channel),
	})
}

// literal is what the proxy sends: the pattern prefix only for PSUBSCRIBE.
func literal(action Action, pattern string) string {
	if action != PSubscribe {
		return ""
	}
	return upstream.LiteralPrefix(pattern)
}

func TestBuiltinConfinesTenantToItsPrefix(t *testing.T) {
	a := newAuthorizer(t, Sources{Builtin: Builtin})
	for _, tc := range []struct {
		action  Action
		channel string
		allow   bool
	}{
		{Connect, "", true},
		{Subscribe, "acme:orders", true},
		{Publish, "acme:orders", true},
		{SPublish, "acme:x", true},
		{SSubscribe, "acme:x", true},
		{PSubscribe, "acme:orders.*", true},
		{Subscribe, "globex:orders", false},
		{Publish, "acmex:orders", false},
		{Publish, "acme", false},
		{PSubscribe, "*", false},
		{PSubscribe, "acme*", false},
		{PSubscribe, "acm?:*", false},
		{PSubscribe, "[a]cme:*", false},
	} {
		d := ask(a, tc.action, tc.channel)
		if d.Allow != tc.allow {
			t.Errorf("%s %q: allow = %v, want %v (reason %q)", tc.action, tc.channel, d.Allow, tc.allow, d.Reason)
		}
		if !tc.allow && d.Reason != "channel outside tenant acme" {
			t.Errorf("%s %q: reason %q", tc.action, tc.channel, d.Reason)
		}
		if d.Revision != a.Revision() {
			t.Errorf("revision %q, want %q", d.Revision, a.Revision())
		}
	}
}

func TestDeniesWhenThePolicyDoesNotSayAllow(t *testing.T) {
	for name, body := range map[string]string{
		"undefined":     "x := 1",
		"conflict":      "allow := true if input.user\nallow := false if input.tenant",
		"builtin error": `allow if to_number(input.user) > 0`,
		"allow false":   "allow := false",
	} {
		t.Run(name, func(t *testing.T) {
			a := newAuthorizer(t, Sources{Paths: []string{writePolicy(t, map[string]string{"p.rego": "package pubgate.authz\n" + body + "\n"})}})
			if d := ask(a, Publish, "acme:x"); d.Allow {
				t.Fatalf("allowed: %+v", d)
			}
		})
	}
}

func TestEvaluationTimeoutDenies(t *testing.T) {
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stall }))
	defer srv.Close()
	defer close(stall)
	dir := writePolicy(t, map[string]string{"p.rego": `package pubgate.authz
allow if http.send({"method": "get", "url": "` + srv.URL + `"}).status_code == 200
`})
	a, err := New(context.Background(), Options{Sources: Sources{Paths: []string{dir}, Data: testData}, Timeout: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	if d := ask(a, Publish, "acme:x"); d.Allow || d.Reason != "policy evaluation failed" {
		t.Fatalf("decision %+v", d)
	}
	if s := a.Stats(); s.Errors != 1 || s.Denied != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConcurrencyBoundsEvaluations: no more evaluations run at once than
// Options.Concurrency; the others wait their turn and are decided, not
// denied. The policy asks a server that counts its callers.
func TestConcurrencyBoundsEvaluations(t *testing.T) {
	var inFlight, most atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(10 * time.Millisecond)
	}))
	defer srv.Close()
	dir := writePolicy(t, map[string]string{"p.rego": `package pubgate.authz
allow if http.send({"method": "get", "url": "` + srv.URL + `", "cache": false}).status_code == 200
cache := false
`})
	a, err := New(context.Background(), Options{Sources: Sources{Paths: []string{dir}, Data: testData}, Timeout: 10 * time.Second, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	askAtOnce(t, a, 8)
	if m := most.Load(); m > 2 || m == 0 {
		t.Fatalf("%d evaluations ran at once, with concurrency 2", m)
	}
}

func TestRefusesPoliciesThatCannotWork(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"syntax error":      {map[string]string{"p.rego": "package pubgate.authz\nallow if {"}, "p.rego:"},
		"unsafe variable":   {map[string]string{"p.rego": "package pubgate.authz\nallow if x > 1"}, "unsafe"},
		"no authz package":  {map[string]string{"p.rego": "package other\nallow := true"}, "no module declares package pubgate.authz"},
		"empty":             {map[string]string{"README": "nothing"}, "no module declares package pubgate.authz"},
		"reserved data":     {map[string]string{"p.rego": "package pubgate.authz\nallow := true", "data.json": `{"pubgate": {"tenants": {}}}`}, "data.pubgate is pubgate's own"},
		"reserved package":  {map[string]string{"p.rego": "package pubgate.authz\nallow := true", "q.rego": "package system.pubgate\nx := 1"}, "reserved for pubgate"},
		"non-boolean allow": {map[string]string{"p.rego": "package pubgate.authz\nallow := \"yes\""}, "allow must be a boolean"},
		"rego v0 only":      {map[string]string{"p.rego": "package pubgate.authz\nallow { true }"}, "p.rego:"},
		"bad data document": {map[string]string{"p.rego": "package pubgate.authz\nallow := true", "data.json": `{"a": `}, "data.json"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), Options{Sources: Sources{Paths: []string{writePolicy(t, tc.files)}, Data: testData}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestWarmCacheDoesNotEvaluate(t *testing.T) {
	a := newAuthorizer(t, Sources{Builtin: Builtin})
	ask(a, Publish, "acme:x")
	for range 10 {
		ask(a, Publish, "acme:x")
	}
	if s := a.Stats(); s.CacheMisses != 1 || s.CacheHits != 10 || s.Allowed != 11 {
		t.Fatalf("stats %+v", s)
	}
	other := NewSubject(Subject{Tenant: "acme", User: "alice", Roles: []string{"publisher", "admin"}, Method: "password"})
	a.Authorize(context.Background(), &Request{Subject: other, Action: Publish, Channel: "acme:x", Upstream: "acme:x"})
	if s := a.Stats(); s.CacheMisses != 2 {
		t.Fatalf("another role set must be another cache entry: %+v", s)
	}
}

func TestPolicyCanOptOutOfTheCache(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.rego": `package pubgate.authz
allow if input.client.addr == "127.0.0.1:1"
cache := false
`})
	a := newAuthorizer(t, Sources{Paths: []string{dir}})
	req := func(addr string) Decision {
		return a.Authorize(context.Background(), &Request{Subject: acmeAlice, Action: Publish, Channel: "x", Upstream: "x", ClientAddr: addr})
	}
	if !req("127.0.0.1:1").Allow || req("127.0.0.1:2").Allow || !req("127.0.0.1:1").Allow {
		t.Fatal("a decision that opted out of the cache was cached")
	}
	if s := a.Stats(); s.CacheHits != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReloadSwapsPolicyAndCacheOrKeepsTheOld(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.rego": "package pubgate.authz\nallow := true\n"})
	a := newAuthorizer(t, Sources{Paths: []string{dir}})
	var changes []string
	a.OnReload(func(r ReloadResult) {
		if r.Changed() {
			changes = append(changes, r.Revision)
		}
	})
	first := a.Revision()
	if !ask(a, Publish, "x").Allow {
		t.Fatal("denied")
	}
	if _, err := a.Reload(context.Background()); err != ErrUnchanged {
		t.Fatalf("reload of unchanged files: %v", err)
	}

	write := func(content string) {
		if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("package pubgate.authz\nallow if {\n") // broken
	if _, err := a.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "p.rego") {
		t.Fatalf("broken policy: %v", err)
	}
	if a.Revision() != first || !ask(a, Publish, "x").Allow {
		t.Fatal("a broken policy took effect")
	}

	write("package pubgate.authz\nallow := false\nreason := \"closed\"\n")
	rev, err := a.Reload(context.Background())
	if err != nil || rev == first {
		t.Fatalf("reload: %v %v", rev, err)
	}
	if d := ask(a, Publish, "x"); d.Allow || d.Reason != "closed" || d.Revision != rev {
		t.Fatalf("the new policy did not take effect (stale cache?): %+v", d)
	}
	if len(changes) != 1 || changes[0] != rev {
		t.Fatalf("change callbacks %v", changes)
	}
	if s := a.Stats(); s.Reloads != 1 || s.ReloadFailures != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWatchReloadsOnEdit(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.rego": "package pubgate.authz\nallow := true\n"})
	a := newAuthorizer(t, Sources{Paths: []string{dir}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan string, 1)
	a.OnReload(func(r ReloadResult) {
		if r.Changed() {
			changed <- r.Revision
		}
	})
	if err := a.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	// Save by rename, as editors do.
	tmp := filepath.Join(dir, ".p.rego.swp")
	if err := os.WriteFile(tmp, []byte("package pubgate.authz\nallow := false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "p.rego")); err != nil {
		t.Fatal(err)
	}
	<-changed
	if ask(a, Publish, "x").Allow {
		t.Fatal("edit did not take effect")
	}
}

func TestDataFilesAndConfigDataAreVisible(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"p.rego": `package pubgate.authz
allow if {
	input.channel in data.settings.open
	data.pubgate.tenants[input.tenant]
}
`,
		"data.yaml": "settings:\n  open: [a, b]\n",
	})
	a := newAuthorizer(t, Sources{Paths: []string{dir}})
	if !ask(a, Publish, "a").Allow || ask(a, Publish, "c").Allow {
		t.Fatal("data not visible")
	}
}

func TestExplainNamesTheDecidingRules(t *testing.T) {
	a := newAuthorizer(t, Sources{Builtin: Builtin})
	x, err := a.Explain(context.Background(), (&Request{Subject: acmeAlice, Action: Publish, Channel: "globex:x", Upstream: "globex:x"}).mapInput(), true)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(x.Rules, "\n")
	if x.Decision.Allow || !strings.Contains(joined, "default allow (builtin.rego:") || !strings.Contains(joined, "reason (builtin.rego:") {
		t.Fatalf("explanation %+v", x)
	}
	if !strings.Contains(x.Trace, "Enter data.system.pubgate.decision") {
		t.Fatalf("trace:\n%s", x.Trace)
	}
}

func TestTestRunnerReportsLikeOPA(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"p.rego":      "package pubgate.authz\nallow if input.user == \"alice\"\n",
		"p_test.rego": "package pubgate.authz_test\nimport data.pubgate.authz\ntest_alice if authz.allow with input as {\"user\": \"alice\"}\ntest_bob if authz.allow with input as {\"user\": \"bob\"}\n",
	})
	var out strings.Builder
	passed, err := Test(context.Background(), TestOptions{Paths: []string{dir}, Output: &out})
	if err != nil || passed {
		t.Fatalf("passed=%v err=%v", passed, err)
	}
	if !strings.Contains(out.String(), "test_bob: FAIL") || !strings.Contains(out.String(), "PASS: 1/2") {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	passed, err = Test(context.Background(), TestOptions{Paths: []string{dir}, Run: "alice", Output: &out, Verbose: true})
	if err != nil || !passed || !strings.Contains(out.String(), "test_alice: PASS") {
		t.Fatalf("passed=%v err=%v\n%s", passed, err, out.String())
	}
}

func TestBundleDirectory(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		".manifest":  `{"revision": "v7", "roots": ["pubgate/authz", "settings"]}`,
		"authz.rego": "package pubgate.authz\nallow if input.channel in data.settings.open\n",
		"data.json":  `{"settings": {"open": ["a"]}}`,
	})
	a := newAuthorizer(t, Sources{Bundle: dir})
	if !ask(a, Publish, "a").Allow || ask(a, Publish, "b").Allow {
		t.Fatal("bundle policy or data not in effect")
	}
	if c := a.current.Load(); c.bundle != "v7" {
		t.Fatalf("bundle revision %q", c.bundle)
	}
}

func TestConfiguredButEmptyPolicyIsNotReplacedByTheBuiltin(t *testing.T) {
	dir := writePolicy(t, map[string]string{"README": "the policies were not deployed"})
	_, err := New(context.Background(), Options{Sources: Sources{Paths: []string{dir}, Builtin: Builtin, Data: testData}})
	if err == nil || !strings.Contains(err.Error(), "no module declares package pubgate.authz") {
		t.Fatalf("err = %v", err)
	}
}

// TestSetSourcesSwitchesPathsAndData: a configuration reload points the
// policy at other files and new data; the new paths are watched, and
// sources whose policy is refused leave the old ones in effect.
func TestSetSourcesSwitchesPathsAndData(t *testing.T) {
	byTenant := "package pubgate.authz\nallow if data.pubgate.tenants[input.tenant]\n"
	first := writePolicy(t, map[string]string{"p.rego": byTenant})
	a := newAuthorizer(t, Sources{Paths: []string{first}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if !ask(a, Publish, "x").Allow {
		t.Fatal("acme is a tenant of the first data")
	}
	second := writePolicy(t, map[string]string{"p.rego": byTenant})
	noAcme := map[string]any{"tenants": map[string]any{"globex": map[string]any{}}, "users": map[string]any{}, "namespace": testData["namespace"]}
	if _, err := a.SetSources(ctx, Sources{Paths: []string{second}, Data: noAcme}); err != nil {
		t.Fatal(err)
	}
	if ask(a, Publish, "x").Allow {
		t.Fatal("the new data, without acme, did not take effect")
	}
	broken := writePolicy(t, map[string]string{"p.rego": "package pubgate.authz\nallow if {\n"})
	rev := a.Revision()
	if _, err := a.SetSources(ctx, Sources{Paths: []string{broken}, Data: testData}); err == nil || a.Revision() != rev {
		t.Fatalf("a policy that does not compile was taken: %v", err)
	}
	changed := make(chan struct{}, 1)
	a.OnReload(func(r ReloadResult) {
		if r.Changed() {
			changed <- struct{}{}
		}
	})
	if err := os.WriteFile(filepath.Join(second, "p.rego"), []byte("package pubgate.authz\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	<-changed
	if !ask(a, Publish, "x").Allow {
		t.Fatal("an edit under the new path was not picked up")
	}
}

// TestIdenticalColdDecisionsShareOneEvaluation: clients reconnecting
// together ask the same question at once; a cacheable decision is
// evaluated once for all of them, an uncacheable one once for each.
func TestIdenticalColdDecisionsShareOneEvaluation(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond) // long enough for every request below to arrive
	}))
	defer srv.Close()
	for _, tc := range []struct {
		extra string
		want  int64
	}{{"", 1}, {"cache := false\n", 20}} {
		calls.Store(0)
		dir := writePolicy(t, map[string]string{"p.rego": "package pubgate.authz\nallow if http.send({\"method\": \"get\", \"url\": \"" + srv.URL + "\"}).status_code == 200\n" + tc.extra})
		a, err := New(context.Background(), Options{Sources: Sources{Paths: []string{dir}, Data: testData}, Timeout: 10 * time.Second, Concurrency: 20})
		if err != nil {
			t.Fatal(err)
		}
		askAtOnce(t, a, 20)
		if got := calls.Load(); got != tc.want {
			t.Errorf("policy %q: %d evaluations for 20 identical requests, want %d", tc.extra, got, tc.want)
		}
	}
}

// askAtOnce asks n identical questions at once; each must be allowed.
func askAtOnce(t *testing.T, a *Authorizer, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if d := ask(a, Publish, "acme:x"); !d.Allow {
				t.Errorf("decision %+v", d)
			}
		})
	}
	wg.Wait()
}
