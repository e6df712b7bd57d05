package policy

import _ "embed"

// Builtin is the policy in effect when none is configured: each tenant may
// use the channels inside its own prefix.
//
//go:embed builtin.rego
var Builtin string
