// Package policy decides, with Open Policy Agent, whether an identity may
// connect and use a channel. Policies are Rego modules (and data) compiled
// once into a prepared query; decisions are cached per policy revision, and
// a reload swaps policy and cache together.
package policy

import (
	"encoding/json"
	"github.com/pubgate/pubgate/action"
	"hash/maphash"
	"sync/atomic"
)

// Action is what a client asks to do (the one list is package action).
type Action = action.Action

// The actions, as policy callers name them.
const (
	Connect    = action.Connect
	Subscribe  = action.Subscribe
	PSubscribe = action.PSubscribe
	SSubscribe = action.SSubscribe
	Publish    = action.Publish
	SPublish   = action.SPublish
	numActions = action.Count
)

// Subject is who asks: everything about a client a decision may depend on
// besides the channel. It is built once per login, because its cache key is
// computed from all of it.
type Subject struct {
	Tenant string
	User   string
	Roles  []string
	Method string         // password | mtls | jwt | default
	Claims map[string]any // a token's claims (JWT logins)
	TLS    *TLSInfo       // nil for plaintext connections

	key  string
	hash uint64 // of key, for the decision cache's shards
	// terms are its part of the input, built at its first evaluation: a
	// subject whose decisions are all cached never needs them (a node
	// holds one subject per connection).
	terms *lazyTerms
}

type lazyTerms struct{ atomic.Pointer[subjectTerms] }

// TLSInfo describes the client's TLS connection.
type TLSInfo struct {
	Version string   `json:"version"`
	Subject string   `json:"subject"` // the client certificate's subject, if any
	URISANs []string `json:"uri_sans"`
	DNSSANs []string `json:"dns_sans"`
}

// NewSubject fixes a subject and computes its cache key.
func NewSubject(s Subject) *Subject {
	key, _ := json.Marshal([]any{s.Tenant, s.User, s.Roles, s.Method, s.Claims, s.TLS})
	s.key = string(key)
	s.hash = maphash.String(shardSeed, s.key)
	s.terms = &lazyTerms{}
	return &s
}

// Request is one question to the policy.
type Request struct {
	Subject *Subject
	Action  Action
	// Channel is the name (or pattern) as the client wrote it; Upstream the
	// name pubgate uses upstream. Both are "" for Connect.
	Channel  string
	Upstream string
	// PatternPrefix is, for PSubscribe, the literal text every channel the
	// upstream pattern matches starts with.
	PatternPrefix string
	// ClientAddr and ClientName are in the input for policies that want
	// them, but are not part of the cache key: a policy that decides on
	// them must answer cache := false.
	ClientAddr string
	ClientName string
}

// Decision is the policy's answer.
type Decision struct {
	Allow    bool
	Reason   string // the policy's reason, or pubgate's when it decided itself
	Revision string // the policy revision that decided
}
