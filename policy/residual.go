package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// residual reads what partial evaluation left of a policy into a plan's
// conditions. It knows a few forms and refuses anything else, and the
// caller then evaluates in full:
//
//	startswith(N, "s"), startswith("s", N), N == "s", N != "s"   name tests
//	ref, not ref                           a rule whose definitions are true if …
//	count(ref) == 0, count(ref) > 0        a set whose definitions are … if …
//	N in {"a", "b"}, count(set()) == 0
//
// where N is input.channel, input.upstream_channel or
// input.pattern_literal_prefix, or a rule that is one of them when it is a
// string and "" otherwise (pubgate's input fields are always strings).
type residual struct {
	rules map[string][]*ast.Rule // by the rule's full reference
}

// maxResidualDepth bounds how deep rules may refer to rules.
const maxResidualDepth = 8

func newResidual(support []*ast.Module) *residual {
	x := &residual{rules: map[string][]*ast.Rule{}}
	for _, m := range support {
		for _, rule := range m.Rules {
			ref := m.Package.Path.Extend(rule.Head.Ref()).String()
			x.rules[ref] = append(x.rules[ref], rule)
		}
	}
	return x
}

func (x *residual) body(body ast.Body, depth int) (allOf, bool) {
	if depth > maxResidualDepth {
		return nil, false
	}
	out := make(allOf, 0, len(body))
	for _, expr := range body {
		c, ok := x.expr(expr, depth)
		if !ok {
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}

func (x *residual) expr(expr *ast.Expr, depth int) (cond, bool) {
	if len(expr.With) > 0 {
		return nil, false
	}
	var c cond
	var ok bool
	switch terms := expr.Terms.(type) {
	case *ast.Term:
		c, ok = x.booleanRule(terms, depth)
	case []*ast.Term:
		c, ok = x.call(terms, depth)
	}
	if ok && expr.Negated {
		c = not{c}
	}
	return c, ok
}

// call reads a builtin call: a name test or a count.
func (x *residual) call(terms []*ast.Term, depth int) (cond, bool) {
	if len(terms) != 3 {
		return nil, false
	}
	op, ok := terms[0].Value.(ast.Ref)
	if !ok {
		return nil, false
	}
	switch op.String() {
	case "count": // count(set, 0): the set is empty
		if !isZero(terms[2]) {
			return nil, false
		}
		if set, ok := terms[1].Value.(ast.Set); ok && set.IsGround() {
			return constant(set.Len() == 0), true
		}
		c, ok := x.setRule(terms[1], depth)
		return not{c}, ok
	case "internal.member_2": // N in {"a", "b"}
		return x.memberOf(terms[1], terms[2])
	case "gt": // gt(count(set), 0): the set is not empty
		if call, isCall := terms[1].Value.(ast.Call); isCall && len(call) == 2 && call[0].String() == "count" && isZero(terms[2]) {
			return x.setRule(call[1], depth)
		}
	case "startswith", "equal", "eq", "neq":
		return x.nameTest(op.String(), terms[1], terms[2])
	}
	return nil, false
}

// memberOf reads `N in {"a", "b"}`: N equals one of the strings.
func (x *residual) memberOf(name, set *ast.Term) (cond, bool) {
	field, ok := x.field(name)
	values, isSet := set.Value.(ast.Set)
	if !ok || !isSet {
		return nil, false
	}
	var c anyOf
	for _, v := range values.Slice() {
		s, ok := v.Value.(ast.String)
		if !ok {
			return nil, false
		}
		c = append(c, allOf{nameTest{field: field, op: opEqual, value: string(s)}})
	}
	return c, true
}

func isZero(t *ast.Term) bool {
	n, ok := t.Value.(ast.Number)
	if !ok {
		return false
	}
	i, ok := n.Int()
	return ok && i == 0
}

// nameTest reads startswith, == and != between a name and a string.
func (x *residual) nameTest(op string, a, b *ast.Term) (cond, bool) {
	field, fieldFirst := x.field(a)
	value, isString := b.Value.(ast.String)
	if !fieldFirst || !isString {
		var isField bool
		if field, isField = x.field(b); !isField {
			return nil, false
		}
		if value, isString = a.Value.(ast.String); !isString {
			return nil, false
		}
	}
	t := nameTest{field: field, value: string(value), op: opEqual}
	switch {
	case op == "startswith" && fieldFirst:
		t.op = opStartsWith
	case op == "startswith":
		t.op = opPrefixOf
	case op == "neq":
		return not{t}, true
	}
	return t, true
}

// field recognises a name: input.<field>, or a rule that is input.<field>
// when it is a string and "" otherwise.
func (x *residual) field(t *ast.Term) (requestField, bool) {
	ref, ok := t.Value.(ast.Ref)
	if !ok {
		return 0, false
	}
	if f, ok := inputField(ref); ok {
		return f, true
	}
	rules := x.rules[ref.String()]
	if len(rules) != 2 {
		return 0, false
	}
	var field requestField
	var sawDefault, sawField bool
	for _, rule := range rules {
		if rule.Default {
			s, ok := rule.Head.Value.Value.(ast.String)
			sawDefault = ok && s == ""
			continue
		}
		field, sawField = stringFieldRule(rule)
	}
	return field, sawDefault && sawField
}

// stringFieldRule recognises `r = v if { is_string(input.f); v = input.f }`.
func stringFieldRule(rule *ast.Rule) (requestField, bool) {
	v, ok := rule.Head.Value.Value.(ast.Var)
	if !ok || len(rule.Body) != 2 || rule.Body[0].Negated || rule.Body[1].Negated || !rule.Body[1].IsEquality() {
		return 0, false
	}
	check, ok := rule.Body[0].Terms.([]*ast.Term)
	if !ok || len(check) != 2 || check[0].String() != "is_string" {
		return 0, false
	}
	checked, ok := check[1].Value.(ast.Ref)
	if !ok {
		return 0, false
	}
	field, ok := inputField(checked)
	if !ok {
		return 0, false
	}
	ops := rule.Body[1].Operands()
	for i, o := range ops {
		if o.Value.Compare(v) == 0 && ops[1-i].Value.Compare(checked) == 0 {
			return field, true
		}
	}
	return 0, false
}

// inputField recognises input.channel, input.upstream_channel and
// input.pattern_literal_prefix.
func inputField(ref ast.Ref) (requestField, bool) {
	if len(ref) != 2 || !ref[0].Equal(ast.InputRootDocument) {
		return 0, false
	}
	name, ok := ref[1].Value.(ast.String)
	if !ok {
		return 0, false
	}
	f, ok := planFields[string(name)]
	return f, ok
}

// booleanRule reads a reference to a rule defined `= true if …` (and by
// default false): it holds when one of its definitions does.
func (x *residual) booleanRule(t *ast.Term, depth int) (cond, bool) {
	return x.definitions(t, depth, booleanDefinition)
}

// setRule reads a reference to a set defined `contains … if …`: it is not
// empty when one of its definitions holds.
func (x *residual) setRule(t *ast.Term, depth int) (cond, bool) {
	return x.definitions(t, depth, setDefinition)
}

// ruleUse is what definitions makes of one rule.
type ruleUse uint8

const (
	refuseRule ruleUse = iota // a form plans do not read: no plan
	skipRule                  // no alternative (a boolean's default false)
	useRule                   // its body is one alternative
)

// definitions reads the rules t refers to as alternatives: the condition
// holds when one of their bodies does. judge says what to make of each.
func (x *residual) definitions(t *ast.Term, depth int, judge func(*ast.Rule) ruleUse) (cond, bool) {
	ref, ok := t.Value.(ast.Ref)
	if !ok {
		return nil, false
	}
	var c anyOf
	for _, rule := range x.rules[ref.String()] {
		switch judge(rule) {
		case refuseRule:
			return nil, false
		case skipRule:
			continue
		}
		body, ok := x.body(rule.Body, depth+1)
		if !ok {
			return nil, false
		}
		c = append(c, body)
	}
	return c, len(c) > 0
}

func booleanDefinition(rule *ast.Rule) ruleUse {
	value, ok := rule.Head.Value.Value.(ast.Boolean)
	switch {
	case !ok || rule.Head.Key != nil || len(rule.Head.Args) > 0:
		return refuseRule
	case rule.Default && !bool(value):
		return skipRule
	case rule.Default || !bool(value) || rule.Else != nil:
		return refuseRule
	}
	return useRule
}

func setDefinition(rule *ast.Rule) ruleUse {
	if rule.Head.RuleKind() != ast.MultiValue || rule.Default || rule.Else != nil || !rule.Head.Key.IsGround() {
		return refuseRule
	}
	return useRule
}
