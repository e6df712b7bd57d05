package policy

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/upstream"
)

// nameFragments build random names around every edge the policies test:
// tenant prefixes, nested and look-alike ones, shared and deny-listed
// names, glob characters and escapes.
var nameFragments = []string{"acme", ":", "acme:", "acme:eu:", "eu:", "globex:", "globex", "shared:", "announcements",
	"internal.", "internal", "admin.", "orders", ".", "*", "?", "[a]", "[", `\`, "e", "x", "bare", ""}

func randomName(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(4) {
		b.WriteString(nameFragments[rng.IntN(len(nameFragments))])
	}
	return b.String()
}

// TestPlansDecideAsFullEvaluation: wherever a plan exists, it allows
// exactly what a full evaluation allows, with its reason, for random names
// of every subject and action of the corpus, with the example library and
// the built-in policy.
func TestPlansDecideAsFullEvaluation(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	for _, src := range []Sources{
		{Paths: []string{"../examples/policies"}, Data: corpusData},
		{Builtin: Builtin, Data: corpusData},
	} {
		a := newAuthorizer(t, src)
		c := a.current.Load()
		plans := 0
		for _, s := range corpusSubjects() {
			for _, action := range corpusActions {
				in, err := (&Request{Subject: s, Action: action}).input()
				if err != nil {
					t.Fatal(err)
				}
				p := c.plans.make(context.Background(), in)
				if p == nil {
					continue
				}
				plans++
				for range 20 {
					name := randomName(rng)
					r := Request{Subject: s, Action: action, Channel: name, Upstream: name}
					if action == PSubscribe {
						r.PatternPrefix = upstream.LiteralPrefix(name)
					}
					in, _ := r.input()
					full, err := c.eval(context.Background(), in, a.opts.Timeout, nil)
					if err != nil {
						t.Fatal(err)
					}
					if got := p.allow.holds(&r); got != full.allow || got && (p.reason != full.reason || !full.cache) {
						t.Fatalf("%s %s %q: plan allows %t (reason %q), full evaluation %+v", s.key, action, name, got, p.reason, full)
					}
				}
			}
		}
		if plans < len(corpusSubjects())*len(corpusActions)/2 {
			t.Fatalf("only %d plans: the test would prove little", plans)
		}
	}
}

// TestNoPlanForWhatItCannotRun: a policy that depends on more than name
// tests (here the client's address) gets no plan, and its decisions stay
// full evaluations.
func TestNoPlanForWhatItCannotRun(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.rego": `package pubgate.authz
allow if {
	startswith(input.upstream_channel, "acme:")
	not startswith(input.client.addr, "10.")
}
cache := false
`})
	a := newAuthorizer(t, Sources{Paths: []string{dir}})
	a.current.Load().plans.after = 0
	for _, addr := range []string{"127.0.0.1:1", "10.0.0.1:1", "127.0.0.1:2"} {
		r := Request{Subject: acmeAlice, Action: Publish, Channel: "acme:x", Upstream: "acme:x", ClientAddr: addr}
		if d := a.Authorize(context.Background(), &r); d.Allow == strings.HasPrefix(addr, "10.") {
			t.Fatalf("%s: %+v", addr, d)
		}
	}
	if s := a.Stats(); s.Planned != 0 {
		t.Fatalf("planned: %+v", s)
	}
	// Without cache := false (a mistake), the address still keeps it from
	// being planned.
	dir = writePolicy(t, map[string]string{"p.rego": `package pubgate.authz
allow if {
	startswith(input.upstream_channel, "acme:")
	not startswith(input.client.addr, "10.")
}
`})
	a = newAuthorizer(t, Sources{Paths: []string{dir}})
	in, _ := (&Request{Subject: acmeAlice, Action: Publish}).input()
	if p := a.current.Load().plans.make(context.Background(), in); p != nil {
		t.Fatalf("planned: %+v", p)
	}
}
