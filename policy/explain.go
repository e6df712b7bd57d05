package policy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation is one decision taken apart, for `pubgate policy eval`.
type Explanation struct {
	Decision  Decision
	Cacheable bool
	// Rules are the rules of package pubgate.authz that produced a value,
	// with their location: "allow (authz.rego:12)".
	Rules []string
	// Trace is OPA's full evaluation trace, when asked for.
	Trace string
}

var authzPackage = ast.MustParseRef("data.pubgate.authz")

// explainTimeout bounds a traced evaluation, which takes much longer than
// a decision.
const explainTimeout = time.Minute

// Explain evaluates an input document (as the proxy would build it) with
// the policy in effect, bypassing the cache, and says which rules decided.
func (a *Authorizer) Explain(ctx context.Context, input any, fullTrace bool) (Explanation, error) {
	c := a.current.Load()
	tracer := topdown.NewBufferTracer()
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		return Explanation{}, fmt.Errorf("policy: input: %w", err)
	}
	ans, err := c.eval(ctx, value, explainTimeout, tracer)
	if err != nil {
		return Explanation{}, err
	}
	x := Explanation{
		Decision:  Decision{Allow: ans.allow, Reason: ans.reason, Revision: c.revision},
		Cacheable: ans.cache,
		Rules:     decidingRules(*tracer),
	}
	if fullTrace {
		var b strings.Builder
		topdown.PrettyTraceWithLocation(&b, *tracer)
		x.Trace = b.String()
	}
	return x, nil
}

// decidingRules lists, once each and in order, the rules of pubgate.authz
// whose body succeeded.
func decidingRules(events []*topdown.Event) []string {
	var rules []string
	seen := map[string]bool{}
	for _, ev := range events {
		r, ok := ev.Node.(*ast.Rule)
		if ev.Op != topdown.ExitOp || !ok || r.Module == nil || !r.Module.Package.Path.Equal(authzPackage) {
			continue
		}
		name := r.Head.Ref().String()
		if r.Default {
			name = "default " + name
		}
		desc := fmt.Sprintf("%s (%s)", name, location(r.Location))
		if !seen[desc] {
			seen[desc] = true
			rules = append(rules, desc)
		}
	}
	return rules
}

func location(l *ast.Location) string {
	if l == nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", l.File, l.Row)
}

// Print writes the explanation for a reader, as pubgate policy eval shows
// it: the decision, its reason and revision, whether it may be cached, the
// rules that decided, and the trace when there is one.
func (x Explanation) Print(w io.Writer) {
	verdict := "DENY"
	if x.Decision.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "decision:  %s\n", verdict)
	if x.Decision.Reason != "" {
		fmt.Fprintf(w, "reason:    %s\n", x.Decision.Reason)
	}
	fmt.Fprintf(w, "revision:  %s\n", x.Decision.Revision)
	fmt.Fprintf(w, "cacheable: %v\n", x.Cacheable)
	fmt.Fprintln(w, "decided by:")
	if len(x.Rules) == 0 {
		fmt.Fprintln(w, "  (no rule of package pubgate.authz succeeded: undefined, which denies)")
	}
	for _, r := range x.Rules {
		fmt.Fprintf(w, "  %s\n", r)
	}
	if x.Trace != "" {
		fmt.Fprintf(w, "trace:\n%s", x.Trace)
	}
}
