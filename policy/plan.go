package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// A plan is the decision of one (subject, action) with the channel left
// unknown, worked out by OPA's partial evaluation. When what remains of
// the policy is only string tests on the request's names, and rules made
// of such tests (the built-in policy leaves
// `startswith(input.upstream_channel, "acme:")`; the example library adds
// its deny-list and nested-tenant rules as sets of such tests), pubgate
// runs those tests itself, in about a microsecond instead of a full
// evaluation.
//
// A plan only ever says "allowed": a request it does not allow, and every
// request of a policy whose remainder is anything else (other builtins,
// http.send, the clock, `with`), is evaluated in full. And it only says so
// where partial evaluation proved that the policy allows, cacheably, with
// the plan's reason.
type plan struct {
	allow  anyOf
	reason string // the policy's reason when it allows
}

// cond is a condition on a request's names.
type cond interface{ holds(r *Request) bool }

// allOf holds when every condition does; anyOf when one of its bodies
// does (a rule with several definitions); not when its condition does not.
type (
	allOf []cond
	anyOf []allOf
	not   struct{ c cond }
)

func (c allOf) holds(r *Request) bool {
	for _, x := range c {
		if !x.holds(r) {
			return false
		}
	}
	return true
}

func (c anyOf) holds(r *Request) bool {
	for _, body := range c {
		if body.holds(r) {
			return true
		}
	}
	return false
}

func (c not) holds(r *Request) bool { return !c.c.holds(r) }

// constant is a condition the names do not change.
type constant bool

func (c constant) holds(*Request) bool { return bool(c) }

// nameTest is one test of a name: input.<field> compared with value.
type nameTest struct {
	field requestField
	op    testOp
	value string
}

type requestField uint8

const (
	fieldChannel requestField = iota
	fieldUpstream
	fieldLiteralPrefix
)

type testOp uint8

const (
	opStartsWith testOp = iota // the field starts with value
	opPrefixOf                 // value starts with the field
	opEqual
)

var (
	planFields = map[string]requestField{
		"channel": fieldChannel, "upstream_channel": fieldUpstream, "pattern_literal_prefix": fieldLiteralPrefix,
	}
	// planUnknowns are the input fields a plan leaves open: the names and
	// the client's address and name (which a cacheable decision does not
	// depend on, and which must not be fixed into a plan).
	planUnknowns = []*ast.Term{
		ast.MustParseTerm("input.channel"), ast.MustParseTerm("input.upstream_channel"),
		ast.MustParseTerm("input.pattern_literal_prefix"), ast.MustParseTerm("input.client"),
	}
	// Partial evaluation writes what remains of rules into the namespace
	// data.partial.
	authzAllow      = ast.MustParseRef("data.partial.pubgate.authz.allow")
	partialDecision = ast.MustParseRef("data.partial.system.pubgate")
	partialReason   = ast.MustParseRef("data.partial.system.pubgate.reason")
)

func (t nameTest) holds(r *Request) bool {
	var v string
	switch t.field {
	case fieldChannel:
		v = r.Channel
	case fieldUpstream:
		v = r.Upstream
	case fieldLiteralPrefix:
		v = r.PatternPrefix
	}
	switch t.op {
	case opStartsWith:
		return strings.HasPrefix(v, t.value)
	case opPrefixOf:
		return strings.HasPrefix(t.value, v)
	}
	return v == t.value
}

// planner makes the plans of one revision.
type planner struct {
	allow, reason, cache rego.PreparedPartialQuery

	after int // planAfter; tests plan at once

	mu    sync.Mutex
	plans *lru.Cache[planKey, *planEntry]
}

type planKey struct {
	subject string
	action  Action
}

// planEntry is what is known of a (subject, action): how many full
// evaluations it has had, and its plan once one was attempted (nil: the
// policy's remainder is not plain name tests).
type planEntry struct {
	misses int
	tried  bool
	plan   *plan
}

// planAfter is how many full evaluations a (subject, action) has before a
// plan is attempted. Partial evaluation costs about a dozen full
// evaluations (BenchmarkPlan: 3 ms with the example library), so an
// identity pays for its plan only once it has decided enough names to
// have spent more than that, and one that decides few names never does.
const planAfter = 16

// planTimeout bounds one partial evaluation; a policy that takes longer
// gets no plan.
const planTimeout = time.Second

// maxPlans bounds the plans a revision remembers.
const maxPlans = 4096

func newPlanner(ctx context.Context, c *compiled) (*planner, error) {
	p := &planner{}
	var err error
	prepare := func(query string) rego.PreparedPartialQuery {
		if err != nil {
			return rego.PreparedPartialQuery{}
		}
		var q rego.PreparedPartialQuery
		q, err = rego.New(rego.Query(query), rego.Compiler(c.compiler), rego.Store(c.store),
			rego.StrictBuiltinErrors(true)).PrepareForPartial(ctx)
		return q
	}
	p.allow = prepare("data.system.pubgate.allow == true")
	p.reason = prepare("reason = data.system.pubgate.reason")
	p.cache = prepare("data.system.pubgate.cache == true")
	if err != nil {
		return nil, fmt.Errorf("policy: prepare plans: %w", err)
	}
	p.plans, _ = lru.New[planKey, *planEntry](maxPlans)
	p.after = planAfter
	return p, nil
}

// planFor returns the plan of r's (subject, action), making it once
// enough full evaluations have shown it is worth it; nil if there is none
// (yet).
func (p *planner) planFor(ctx context.Context, r *Request) *plan {
	key := planKey{subject: r.Subject.key, action: r.Action}
	p.mu.Lock()
	e, ok := p.plans.Get(key)
	if !ok {
		e = &planEntry{}
		p.plans.Add(key, e)
	}
	e.misses++
	attempt := !e.tried && e.misses > p.after
	e.tried = e.tried || attempt
	pl := e.plan
	p.mu.Unlock()
	if !attempt {
		return pl
	}
	in, err := r.input()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, planTimeout)
	pl = p.make(ctx, in)
	cancel()
	p.mu.Lock()
	e.plan = pl
	p.mu.Unlock()
	return pl
}

// make partially evaluates the decision for in, the names unknown, and
// returns a plan if the remainder is one pubgate can run.
func (p *planner) make(ctx context.Context, in ast.Value) *plan {
	eval := func(q rego.PreparedPartialQuery) *rego.PartialQueries {
		pq, err := q.Partial(ctx, rego.EvalParsedInput(in), rego.EvalParsedUnknowns(planUnknowns))
		if err != nil {
			return nil
		}
		return pq
	}
	cache, allow, reason := eval(p.cache), eval(p.allow), eval(p.reason)
	if cache == nil || allow == nil || reason == nil || !alwaysTrue(cache) {
		return nil
	}
	x := newResidual(allow.Support)
	pl := &plan{}
	for _, body := range allow.Queries {
		c, ok := x.body(body, 0)
		if !ok {
			return nil
		}
		pl.allow = append(pl.allow, c)
	}
	var ok bool
	if pl.reason, ok = reasonWhenAllowed(reason); !ok {
		return nil
	}
	return pl
}

// alwaysTrue: the remainder holds whatever the names are.
func alwaysTrue(pq *rego.PartialQueries) bool {
	return len(pq.Queries) == 1 && len(pq.Queries[0]) == 0 && len(pq.Support) == 0
}

// reasonWhenAllowed is the policy's reason for any allowed request: a
// constant, or the reason rule's default when every other definition of
// it applies only where the policy does not allow.
func reasonWhenAllowed(pq *rego.PartialQueries) (string, bool) {
	if len(pq.Queries) != 1 || len(pq.Queries[0]) != 1 {
		return "", false
	}
	expr := pq.Queries[0][0]
	if !expr.IsEquality() || expr.Negated || len(expr.With) > 0 {
		return "", false
	}
	var refersToRule bool
	for _, t := range expr.Operands() {
		if s, ok := t.Value.(ast.String); ok && len(pq.Support) == 0 {
			return string(s), true
		}
		ref, ok := t.Value.(ast.Ref)
		refersToRule = refersToRule || ok && ref.Equal(partialReason)
	}
	if !refersToRule {
		return "", false
	}
	var def *string
	for _, m := range pq.Support {
		if !m.Package.Path.Equal(partialDecision) {
			continue
		}
		for _, rule := range m.Rules {
			if rule.Head.Ref().String() != "reason" {
				continue
			}
			if rule.Default {
				s, ok := rule.Head.Value.Value.(ast.String)
				if !ok {
					return "", false
				}
				def = (*string)(&s)
				continue
			}
			if !requiresDenial(rule.Body) {
				return "", false
			}
		}
	}
	if def == nil {
		return "", false
	}
	return *def, true
}

// requiresDenial: body holds only where pubgate.authz.allow does not.
func requiresDenial(body ast.Body) bool {
	for _, expr := range body {
		if t, ok := expr.Terms.(*ast.Term); ok && expr.Negated && len(expr.With) == 0 {
			if ref, ok := t.Value.(ast.Ref); ok && ref.Equal(authzAllow) {
				return true
			}
		}
	}
	return false
}
