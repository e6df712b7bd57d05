package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The input document (README "Policy input") is built as an AST value, the
// form OPA evaluates, instead of as Go maps that OPA would convert on every
// evaluation. What belongs to the subject is built once, at its first
// evaluation.

var (
	keyAction        = ast.StringTerm("action")
	keyChannel       = ast.StringTerm("channel")
	keyPattern       = ast.StringTerm("pattern")
	keyLiteralPrefix = ast.StringTerm("pattern_literal_prefix")
	keyUpstream      = ast.StringTerm("upstream_channel")
	keyTenant        = ast.StringTerm("tenant")
	keyUser          = ast.StringTerm("user")
	keyRoles         = ast.StringTerm("roles")
	keyAuth          = ast.StringTerm("auth")
	keyMethod        = ast.StringTerm("method")
	keyClaims        = ast.StringTerm("claims")
	keyClient        = ast.StringTerm("client")
	keyAddr          = ast.StringTerm("addr")
	keyName          = ast.StringTerm("name")
	keyTLS           = ast.StringTerm("tls")
	keyVersion       = ast.StringTerm("version")
	keySubject       = ast.StringTerm("subject")
	keyURISANs       = ast.StringTerm("uri_sans")
	keyDNSSANs       = ast.StringTerm("dns_sans")

	actionTerms [numActions]*ast.Term
)

func init() {
	for a := range numActions {
		actionTerms[a] = ast.StringTerm(a.String())
	}
}

// subjectTerms are the parts of the input a subject fixes.
type subjectTerms struct {
	tenant, user, roles, auth *ast.Term
	tls                       *ast.Term // nil for plaintext connections
	err                       error     // claims that are not a JSON object: every decision fails
}

// inputTerms are the subject's part of the input, built once.
func (s *Subject) inputTerms() *subjectTerms {
	if s.terms == nil { // not made by NewSubject
		t := s.buildTerms()
		return &t
	}
	if t := s.terms.Load(); t != nil {
		return t
	}
	t := s.buildTerms()
	s.terms.Store(&t) // two evaluations may build them at once: either is right
	return &t
}

func (s *Subject) buildTerms() subjectTerms {
	var claims ast.Value = ast.NewObject()
	var err error
	if s.Claims != nil {
		claims, err = ast.InterfaceToValue(s.Claims)
	}
	t := subjectTerms{
		err:    err,
		tenant: ast.StringTerm(s.Tenant),
		user:   ast.StringTerm(s.User),
		roles:  stringArray(s.Roles),
		auth:   ast.ObjectTerm([2]*ast.Term{keyMethod, ast.StringTerm(s.Method)}, [2]*ast.Term{keyClaims, ast.NewTerm(claims)}),
	}
	if s.TLS != nil {
		t.tls = ast.ObjectTerm(
			[2]*ast.Term{keyVersion, ast.StringTerm(s.TLS.Version)},
			[2]*ast.Term{keySubject, ast.StringTerm(s.TLS.Subject)},
			[2]*ast.Term{keyURISANs, stringArray(s.TLS.URISANs)},
			[2]*ast.Term{keyDNSSANs, stringArray(s.TLS.DNSSANs)},
		)
	}
	return t
}

func stringArray(v []string) *ast.Term {
	terms := make([]*ast.Term, len(v))
	for i, s := range v {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// input builds the policy input document.
func (r *Request) input() (ast.Value, error) {
	s := r.Subject.inputTerms()
	if s.err != nil {
		return nil, fmt.Errorf("policy: the identity's claims: %w", s.err)
	}
	var action *ast.Term
	if r.Action < numActions {
		action = actionTerms[r.Action]
	} else {
		action = ast.StringTerm(r.Action.String())
	}
	client := []([2]*ast.Term){{keyAddr, ast.StringTerm(r.ClientAddr)}, {keyName, ast.StringTerm(r.ClientName)}}
	if s.tls != nil {
		client = append(client, [2]*ast.Term{keyTLS, s.tls})
	}
	return ast.NewObject(
		[2]*ast.Term{keyAction, action},
		[2]*ast.Term{keyChannel, ast.StringTerm(r.Channel)},
		[2]*ast.Term{keyPattern, ast.BooleanTerm(r.Action == PSubscribe)},
		[2]*ast.Term{keyLiteralPrefix, ast.StringTerm(r.PatternPrefix)},
		[2]*ast.Term{keyUpstream, ast.StringTerm(r.Upstream)},
		[2]*ast.Term{keyTenant, s.tenant},
		[2]*ast.Term{keyUser, s.user},
		[2]*ast.Term{keyRoles, s.roles},
		[2]*ast.Term{keyAuth, s.auth},
		[2]*ast.Term{keyClient, ast.ObjectTerm(client...)},
	), nil
}
