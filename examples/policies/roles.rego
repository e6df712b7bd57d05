# Package pubgate.lib.roles says which actions each role allows.
#
# Roles come from input.roles (pubgate resolves them from its user table, the
# JWT claims or the client certificate). A caller may hold several roles; an
# action is permitted if any of them permits it. Unknown roles grant nothing,
# and a caller without roles may only connect.
#
#   role        tenant channels                      shared channels
#   subscriber  subscribe, ssubscribe, psubscribe    subscribe, ssubscribe
#   publisher   publish, spublish                    -
#   announcer   -                                    publish, spublish
#
# A read-only account holds only `subscriber`, a publish-only service account
# only `publisher`, an ordinary application both. `announcer` is meant for the
# few accounts that post to the cross-tenant announcement channels (see
# lib.shared); it does not let them publish to their own tenant's channels.
#
# To add a role, add a line to `grants`.
package pubgate.lib.roles

import data.pubgate.lib.request

# grants maps role -> scope -> allowed actions. Scopes:
#   "tenant": channels inside the caller's tenant prefix (lib.tenant)
#   "shared": the shared channels listed in data (lib.shared)
grants := {
	"subscriber": {
		"tenant": {"subscribe", "ssubscribe", "psubscribe"},
		"shared": {"subscribe", "ssubscribe"},
	},
	"publisher": {"tenant": {"publish", "spublish"}},
	"announcer": {"shared": {"publish", "spublish"}},
}

# permits(scope, action): one of the caller's roles allows action in scope.
permits(scope, action) if {
	some role in request.roles
	action in grants[role][scope]
}

# granting(scope, action): the roles that would allow action in scope.
granting(scope, action) := {role |
	some role, scopes in grants
	action in scopes[scope]
}

# describe(roles) renders a set of role names for reason messages:
# "role publisher", "roles publisher, subscriber", "no role".
describe(roles) := "no role" if count(roles) == 0

describe(roles) := sprintf("role %s", [r]) if {
	count(roles) == 1
	some r in roles
}

describe(roles) := sprintf("roles %s", [concat(", ", sort(roles))]) if count(roles) > 1

# describe_alternatives(roles) renders the roles that would be needed:
# "role announcer", "role announcer or role publisher".
describe_alternatives(roles) := concat(" or ", [sprintf("role %s", [r]) | some r in sort(roles)])
