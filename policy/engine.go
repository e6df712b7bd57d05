package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/print"
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

const decisionQuery = "data.system.pubgate.decision"

// reservedPackage holds decisionModule; policies may not define it.
var reservedPackage = ast.MustParseRef("data.system.pubgate")

// compiled is one revision of the policy, ready to evaluate, with the cache
// of its decisions: the two are swapped together, so a cached decision never
// outlives the policy that made it.
type compiled struct {
	revision string
	bundle   string
	files    string
	query    rego.PreparedEvalQuery
	cache    *lru.Cache[cacheKey, Decision]
}

// cacheKey is everything a cacheable decision may depend on. Upstream
// names follow from tenant and channel; addresses, client names and the
// clock are not in it.
type cacheKey struct {
	subject string
	action  Action
	channel string
}

// compile builds a revision; it refuses modules that do not compile and a
// policy that does not define package pubgate.authz (which would deny
// everything).
func compile(ctx context.Context, l *loaded, cacheSize int, hook print.Hook) (*compiled, error) {
	if !l.declaresAuthz() {
		return nil, fmt.Errorf("policy: no module declares package pubgate.authz (loaded: %s); every request would be denied", l.files())
	}
	sys, err := ast.ParseModuleWithOpts("pubgate-decision.rego", decisionModule, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("policy: internal module: %w", err)
	}
	modules := make(map[string]*ast.Module, len(l.modules)+1)
	for name, m := range l.modules {
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
	query, err := rego.New(
		rego.Query(decisionQuery),
		rego.Compiler(compiler),
		rego.Store(inmem.NewFromObject(l.data)),
		rego.EnablePrintStatements(true),
		rego.PrintHook(hook),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare: %w", err)
	}
	cache, err := lru.New[cacheKey, Decision](max(cacheSize, 1))
	if err != nil {
		return nil, err
	}
	return &compiled{revision: l.revision, bundle: l.bundle, files: l.files(), query: query, cache: cache}, nil
}

// answer is what an evaluation says.
type answer struct {
	allow, cache bool
	reason       string
}

var errUndefined = errors.New("policy: decision undefined")

func (c *compiled) eval(ctx context.Context, input any, opts ...rego.EvalOption) (answer, error) {
	rs, err := c.query.Eval(ctx, append(opts, rego.EvalInput(input))...)
	if err != nil {
		return answer{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return answer{}, errUndefined
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return answer{}, errUndefined
	}
	allow, _ := m["allow"].(bool)
	cacheable, _ := m["cache"].(bool)
	reason, _ := m["reason"].(string)
	return answer{allow: allow, cache: cacheable, reason: reason}, nil
}
