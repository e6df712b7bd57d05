package policy

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/pubgate/pubgate/upstream"
)

// updateGolden rewrites testdata/*.decisions from the current code: run it
// only with a policy engine whose decisions are known to be right.
var updateGolden = flag.Bool("update", false, "rewrite the golden decision files")

// corpusData is pubgate's document for the corpus: ordinary tenants, a
// nested prefix (acme-eu inside acme), a tenant without a prefix, and
// users the policy may look at.
var corpusData = map[string]any{
	"tenants": map[string]any{
		"acme":    map[string]any{"prefix": "acme:"},
		"acme-eu": map[string]any{"prefix": "acme:eu:"},
		"globex":  map[string]any{"prefix": "globex:"},
		"bare":    map[string]any{"prefix": ""},
	},
	"users":     map[string]any{"alice": map[string]any{"tenant": "acme", "roles": []any{"publisher"}}},
	"namespace": map[string]any{"mode": "rewrite", "shared_prefix": "shared:"},
}

// corpusSubjects are identities of every kind: roles that grant, roles
// that do not, no roles, tenants that are nested, bare or unknown, each
// login method.
func corpusSubjects() []*Subject {
	roleSets := [][]string{nil, {"subscriber"}, {"publisher"}, {"publisher", "subscriber"}, {"announcer"},
		{"announcer", "subscriber"}, {"root"}}
	var out []*Subject
	add := func(tenant string, roles ...[]string) {
		for _, r := range roles {
			out = append(out, NewSubject(Subject{Tenant: tenant, User: "u", Roles: r, Method: "password"}))
		}
	}
	add("acme", roleSets...)
	add("acme-eu", roleSets...)
	add("globex", roleSets[:4]...)
	add("bare", roleSets[3])
	add("initech", roleSets[3])
	add("", roleSets[3])
	out = append(out,
		NewSubject(Subject{Tenant: "acme", User: "svc", Roles: []string{"publisher"}, Method: "jwt",
			Claims: map[string]any{"sub": "svc", "exp": 1.7e9, "groups": []any{"a", "b"}}}),
		NewSubject(Subject{Tenant: "globex", User: "dev", Roles: []string{"subscriber"}, Method: "mtls",
			TLS: &TLSInfo{Version: "TLS 1.3", Subject: "CN=dev", URISANs: []string{"spiffe://x/globex/dev"}}}))
	return out
}

// corpusNames are upstream channel names and patterns around every edge
// of the example library: own, foreign, nested and look-alike prefixes,
// shared channels, deny-listed names, and patterns whose literal prefix
// stops before, at and after each of those.
var corpusNames = []string{
	"", "acme", "acme:", "acme:orders", "acme:orders.1", "acme:internal.jobs", "acme:internal", "acme:internals",
	"acme:admin.audit", "acme:eu:orders", "acme:eu", "acme:e", "acmex:orders", "globex:orders", "globex:internal.x",
	"shared:announcements", "shared:other", "shared:", "orders", "internal.jobs",
	"*", "acme:*", "acme*", "acme:orders.*", "acme:int*", "acme:internal.*", "acme:in?", "acme:[a]x", "acme:e*",
	"acme:eu:*", "acm[e]:x", `acme\:*`, `acme:\*`, "globex:*", "shared:*", "shared:ann*", "s*", "?", "acme:adm*",
}

var corpusActions = []Action{Connect, Subscribe, PSubscribe, SSubscribe, Publish, SPublish}

// corpusRequests is every (subject, action, name) of the corpus.
func corpusRequests() []Request {
	var out []Request
	for _, s := range corpusSubjects() {
		for _, action := range corpusActions {
			names := corpusNames
			if action == Connect {
				names = []string{""}
			}
			for _, up := range names {
				r := Request{Subject: s, Action: action, Channel: up, Upstream: up,
					ClientAddr: "127.0.0.1:5000", ClientName: "corpus"}
				if action == PSubscribe {
					r.PatternPrefix = upstream.LiteralPrefix(up)
				}
				out = append(out, r)
			}
		}
	}
	return out
}

func (r *Request) corpusKey() string {
	return fmt.Sprintf("%s %s %q", r.Subject.key, r.Action, r.Upstream)
}

// corpusLine is a decision as the golden files hold it, under a header
// line per subject.
func corpusLine(r *Request, d Decision) string {
	return fmt.Sprintf("%s %q => %t %q", r.Action, r.Upstream, d.Allow, d.Reason)
}

// TestDecisionCorpus holds the Authorizer to the decisions recorded in
// testdata (made by OPA's standard evaluation of the same policies before
// pubgate evaluated them its own way), and to OPA's standard evaluation
// now: every optimisation of the decision path must leave every decision
// of the corpus as it was.
func TestDecisionCorpus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		golden string
		src    Sources
	}{
		{"example library", "testdata/example-library.decisions", Sources{Paths: []string{"../examples/policies"}, Data: corpusData}},
		{"built-in policy", "testdata/builtin.decisions", Sources{Builtin: Builtin, Data: corpusData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t, tc.src)
			a.current.Load().plans.after = 0 // plan at the first miss, so that plans decide what they can
			reference := referenceQuery(t, tc.src)
			requests := corpusRequests()
			var got []string
			for i := range requests {
				r := &requests[i]
				if i == 0 || r.Subject != requests[i-1].Subject {
					got = append(got, "# "+r.Subject.key)
				}
				d := a.Authorize(context.Background(), r)
				if want := reference(r); d.Allow != want.allow || d.Reason != want.reason {
					t.Errorf("%s: pubgate decided %t %q, OPA's standard evaluation %t %q", r.corpusKey(), d.Allow, d.Reason, want.allow, want.reason)
				}
				got = append(got, corpusLine(r, d))
			}
			compareGolden(t, tc.golden, got)
			t.Logf("%+v", a.Stats())
		})
	}
}

// referenceQuery evaluates requests the plain way OPA documents: the
// policy's modules and data, the input as a Go map, one query.
func referenceQuery(t *testing.T, src Sources) func(*Request) answer {
	l, err := load(src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(context.Background(), l, 1, printLogger{nil})
	if err != nil {
		t.Fatal(err)
	}
	q, err := rego.New(rego.Query(decisionQuery), rego.Compiler(c.compiler), rego.Store(c.store),
		rego.StrictBuiltinErrors(true)).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return func(r *Request) answer {
		rs, err := q.Eval(context.Background(), rego.EvalInput(r.mapInput()))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: reference evaluation: %v %v", r.corpusKey(), rs, err)
		}
		m := rs[0].Bindings["decision"].(map[string]any)
		return answer{allow: m["allow"] == true, reason: m["reason"].(string), cache: m["cache"] == true}
	}
}

func compareGolden(t *testing.T, path string, got []string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var want []string
	for sc.Scan() {
		want = append(want, sc.Text())
	}
	if len(want) != len(got) {
		t.Fatalf("%s holds %d decisions, the corpus has %d", path, len(want), len(got))
	}
	diffs := 0
	for i := range got {
		if got[i] != want[i] {
			if diffs++; diffs <= 20 {
				t.Errorf("decision changed:\n was %s\n now %s", want[i], got[i])
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d decisions changed", diffs, len(got))
	}
}

// mapInput is the input document as Go values, the way OPA's documentation
// passes input: the reference the AST input must equal.
func (r *Request) mapInput() map[string]any {
	s := r.Subject
	roles := s.Roles
	if roles == nil {
		roles = []string{}
	}
	claims := s.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	client := map[string]any{"addr": r.ClientAddr, "name": r.ClientName}
	if s.TLS != nil {
		client["tls"] = map[string]any{
			"version": s.TLS.Version, "subject": s.TLS.Subject,
			"uri_sans": nonNil(s.TLS.URISANs), "dns_sans": nonNil(s.TLS.DNSSANs),
		}
	}
	return map[string]any{
		"action": r.Action.String(), "channel": r.Channel, "pattern": r.Action == PSubscribe,
		"pattern_literal_prefix": r.PatternPrefix, "upstream_channel": r.Upstream,
		"tenant": s.Tenant, "user": s.User, "roles": roles,
		"auth":   map[string]any{"method": s.Method, "claims": claims},
		"client": client,
	}
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// TestInputMatchesDocumentedInput: the AST input is the document README
// describes, for every subject kind of the corpus.
func TestInputMatchesDocumentedInput(t *testing.T) {
	for _, r := range corpusRequests() {
		got, err := r.input()
		if err != nil {
			t.Fatal(err)
		}
		want, err := ast.InterfaceToValue(r.mapInput())
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("%s:\n got %v\nwant %v", r.corpusKey(), got, want)
		}
	}
}

// TestAuthorizeAllDecidesAsAuthorize: deciding a command's names together,
// concurrently, gives each the decision it gets alone, whether cached or
// not.
func TestAuthorizeAllDecidesAsAuthorize(t *testing.T) {
	src := Sources{Paths: []string{"../examples/policies"}, Data: corpusData}
	alone := newAuthorizer(t, src)
	together, err := New(context.Background(), Options{Sources: src, CacheSize: 1 << 14, Timeout: 10 * time.Second, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	var requests []Request // a fifth of the corpus: deciding it twice is slow under the race detector
	for i, r := range corpusRequests() {
		if i%5 == 0 {
			requests = append(requests, r)
		}
	}
	for _, warm := range []bool{false, true} {
		for start := 0; start < len(requests); start += 50 {
			batch := requests[start:min(start+50, len(requests))]
			got := make([]Decision, len(batch))
			together.AuthorizeAll(context.Background(), batch, got)
			for i := range batch {
				if want := alone.Authorize(context.Background(), &batch[i]); got[i] != want {
					t.Fatalf("warm %t: %s: together %+v, alone %+v", warm, batch[i].corpusKey(), got[i], want)
				}
			}
		}
	}
	if s := together.Stats(); s.CacheMisses == 0 || s.CacheHits == 0 || s.Allowed+s.Denied != int64(2*len(requests)) {
		t.Fatalf("stats: %+v", s)
	}
}
