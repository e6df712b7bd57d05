# Package pubgate.lib.denylist keeps clients away from reserved channels of
# their own tenant.
#
# data.policy_settings.denied_prefixes lists channel name prefixes relative to
# the tenant prefix, e.g. "internal." and "admin.". For tenant acme (prefix
# `acme:`) they block `acme:internal.jobs`, `acme:admin.audit`, ... whatever
# the namespace mode: the local name is the upstream name minus the tenant
# prefix (in rewrite mode, exactly what the client wrote).
#
# Channels: denied when the local name starts with a denied prefix
# (`internal.jobs` is denied, `internal` and `internals` are not).
#
# Patterns: a pattern is denied when it COULD match a denied channel. Only its
# literal prefix is known for sure (everything after it is a wildcard,
# character class or escape), so it is denied when its local literal prefix
# and a denied prefix overlap, i.e. one starts with the other:
#
#   pattern (rewrite mode)   local literal prefix   denied because
#   internal.*               "internal."            starts with "internal."
#   int*                     "int"                  "internal." starts with it
#   *  ?x  [a]x              ""                     every prefix starts with ""
#   orders.*                 "orders."              - (allowed)
#
# Consequently a catch-all pattern (`*` in rewrite mode, `acme:*` in enforce
# mode) is denied whenever the deny-list is non-empty: it would deliver
# messages from `acme:internal.*` too. Clients must use narrower patterns such
# as `orders.*`.
#
# The deny-list only concerns channels inside the caller's tenant prefix;
# anything else is already refused by lib.tenant (or is a shared channel).
package pubgate.lib.denylist

import data.pubgate.lib.request
import data.pubgate.lib.tenant

# prefixes is the set of denied local prefixes. An empty string denies every
# channel of every tenant (fail closed rather than silently ignored).
prefixes := {p |
	some p in data.policy_settings.denied_prefixes
	is_string(p)
}

# local_name is the channel name, or the pattern's literal prefix, without the
# caller's tenant prefix.
local_name := trim_prefix(request.target, tenant.prefix) if tenant.in_prefix

# matches is the set of denied prefixes the request runs into: local_name
# starts with p, or (a pattern) p starts with local_name. Both are written
# on the whole upstream name, with the tenant prefix put in front of p, which
# is the same test and lets pubgate plan the decision (a plain prefix test).
matches contains p if {
	some p in prefixes
	startswith(request.target, concat("", [tenant.prefix, p]))
}

matches contains p if {
	request.is_pattern
	tenant.in_prefix
	some p in prefixes
	startswith(concat("", [tenant.prefix, p]), request.target)
}

denied if count(matches) > 0
