package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/print"
	"golang.org/x/sync/singleflight"
)

// decisionModule reads the policy's answer defensively: allow is true only
// when data.pubgate.authz.allow is exactly true, a reason only counts when
// it is a string, and caching is off only when the policy says cache :=
// false. An error in any of them (conflicting values) fails the query,
// which denies.
const decisionModule = `package system.pubgate

default allow := false

allow if data.pubgate.authz.allow == true

default reason := ""

reason := r if {
	r := data.pubgate.authz.reason
	is_string(r)
}

default cache := true

cache := false if data.pubgate.authz.cache == false

decision := {"allow": allow, "reason": reason, "cache": cache}
`

const decisionQuery = "decision = data.system.pubgate.decision"

// reservedPackage holds decisionModule; policies may not define it.
var reservedPackage = ast.MustParseRef("data.system.pubgate")

// compiled is one revision of the policy, ready to evaluate, with the cache
// of its decisions: the two are swapped together, so a cached decision never
// outlives the policy that made it.
type compiled struct {
	revision string
	bundle   string
	files    string

	// The query is evaluated with topdown directly, not through rego's
	// PreparedEvalQuery: that one converts the input from Go values and
	// the result back to Go values, and starts a goroutine to watch the
	// context, on every evaluation (together a third of a cold decision
	// of the built-in policy).
	compiler      *ast.Compiler
	queryCompiler ast.QueryCompiler
	query         ast.Body
	store         storage.Store
	printHook     print.Hook

	cache  *decisionCache
	plans  *planner
	flight singleflight.Group // decisions in progress, shared by identical requests
}

// compile builds a revision; it refuses modules that do not compile and a
// policy that does not define package pubgate.authz (which would deny
// everything).
func compile(ctx context.Context, l *loaded, cacheSize int, hook print.Hook) (*compiled, error) {
	if !l.declaresAuthz() {
		return nil, fmt.Errorf("policy: no module declares package pubgate.authz (loaded: %s); every request would be denied", l.files())
	}
	compiler, err := compileModules(l.modules)
	if err != nil {
		return nil, err
	}
	qc := compiler.QueryCompiler().WithEnablePrintStatements(true)
	query, err := qc.Compile(ast.MustParseBody(decisionQuery))
	if err != nil {
		return nil, fmt.Errorf("policy: prepare: %w", err)
	}
	// Data is kept as AST values, so that an evaluation reading
	// data.pubgate.tenants does not convert it from Go values again.
	store := inmem.NewFromObjectWithOpts(l.data, inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))
	c := &compiled{
		revision: l.revision, bundle: l.bundle, files: l.files(),
		compiler: compiler, queryCompiler: qc, query: query, store: store, printHook: hook,
		cache: newDecisionCache(cacheSize),
	}
	if c.plans, err = newPlanner(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// compileModules compiles the policy's modules with pubgate's decision
// module beside them.
func compileModules(loaded map[string]*ast.Module) (*ast.Compiler, error) {
	sys, err := ast.ParseModuleWithOpts("pubgate-decision.rego", decisionModule, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("policy: internal module: %w", err)
	}
	modules := make(map[string]*ast.Module, len(loaded)+1)
	for name, m := range loaded {
		if m.Package.Path.HasPrefix(reservedPackage) {
			return nil, fmt.Errorf("policy: %s: package %s is reserved for pubgate", name, m.Package.Path)
		}
		modules[name] = m
	}
	modules["pubgate-decision.rego"] = sys
	compiler := ast.NewCompiler().WithEnablePrintStatements(true)
	compiler.Compile(modules)
	if compiler.Failed() {
		err := fmt.Errorf("policy: compile: %w", compiler.Errors)
		if strings.Contains(err.Error(), "pubgate-decision.rego") {
			err = fmt.Errorf("%w (data.pubgate.authz.allow must be a boolean, reason a string, cache a boolean)", err)
		}
		return nil, err
	}
	return compiler, nil
}

// answer is what an evaluation says.
type answer struct {
	allow, cache bool
	reason       string
}

var errUndefined = errors.New("policy: decision undefined")

var (
	decisionVar = ast.Var("decision")
	allowKey    = ast.StringTerm("allow")
	reasonKey   = ast.StringTerm("reason")
	cacheKeyKey = ast.StringTerm("cache")
)

// eval evaluates the decision for input, within timeout.
func (c *compiled) eval(ctx context.Context, input ast.Value, timeout time.Duration, tracer topdown.QueryTracer) (answer, error) {
	// The deadline reaches builtins that wait (http.send) through ctx,
	// and stops the evaluation itself through cancel.
	ctx, done := context.WithTimeout(ctx, timeout)
	defer done()
	cancel := topdown.NewCancel()
	defer context.AfterFunc(ctx, cancel.Cancel)()
	txn, err := c.store.NewTransaction(ctx)
	if err != nil {
		return answer{}, err
	}
	defer c.store.Abort(ctx, txn)
	q := topdown.NewQuery(c.query).
		WithQueryCompiler(c.queryCompiler).
		WithCompiler(c.compiler).
		WithStore(c.store).
		WithTransaction(txn).
		WithInput(ast.NewTerm(input)).
		WithCancel(cancel).
		WithStrictBuiltinErrors(true).
		WithPrintHook(c.printHook)
	if tracer != nil {
		q = q.WithQueryTracer(tracer)
	}
	var ans answer
	results := 0
	err = q.Iter(ctx, func(qr topdown.QueryResult) error {
		results++
		ans, err = readDecision(qr[decisionVar])
		return err
	})
	switch {
	case err != nil:
		return answer{}, err
	case results != 1:
		return answer{}, errUndefined
	}
	return ans, nil
}

// readDecision reads the decision module's object.
func readDecision(t *ast.Term) (answer, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return answer{}, errUndefined
	}
	allow, _ := member(obj, allowKey).(ast.Boolean)
	cacheable, _ := member(obj, cacheKeyKey).(ast.Boolean)
	reason, _ := member(obj, reasonKey).(ast.String)
	return answer{allow: bool(allow), cache: bool(cacheable), reason: string(reason)}, nil
}

// member is obj[key]'s value, or nil.
func member(obj ast.Object, key *ast.Term) ast.Value {
	if t := obj.Get(key); t != nil {
		return t.Value
	}
	return nil
}
