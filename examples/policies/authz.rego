# Package pubgate.authz is the entry point pubgate queries for every client
# action (see README.md for the input document and the data pubgate provides).
#
#   data.pubgate.authz.allow   true lets the action through; anything else,
#                              including undefined, denies it.
#   data.pubgate.authz.reason  why it was denied: shown to the client after
#                              "-NOPERM " and written to the audit log.
#
# An action is allowed when ALL of these hold, checked in this order (the
# reason names the first one that fails):
#
#   1. the action is one pubgate knows;
#   2. the caller's tenant exists in pubgate's config (data.pubgate.tenants);
#      for `connect` that is all (keep connect simple: channel rules are
#      enforced per action anyway);
#   3. the channel, or the pattern's literal prefix, is inside the caller's
#      tenant prefix (lib.tenant), or the channel is a shared channel
#      (lib.shared);
#   4. one of the caller's roles permits the action there (lib.roles);
#   5. for tenant channels: no deny-list entry matches (lib.denylist).
#
# Decision cache: pubgate caches each decision per identity (tenant, user,
# roles, auth method and claims, TLS details), action and channel, for the
# current policy revision (new policy or data = new revision = empty cache).
# Every rule in this library depends only on those and on data, so the
# library never sets `cache`. A rule that depends on anything else, e.g.
# input.client.addr, input.client.name, time.now_ns() (a token's expiry) or
# http.send, must also define
#
#   cache := false if <that rule applies>
#
# so that pubgate asks again next time.
package pubgate.authz

import data.pubgate.lib.denylist
import data.pubgate.lib.request
import data.pubgate.lib.roles
import data.pubgate.lib.shared
import data.pubgate.lib.tenant

default allow := false

# 2. connect: any client of a known tenant may connect, even without roles.
allow if {
	request.action == "connect"
	tenant.known
}

# 3-5. channels of the caller's own tenant.
allow if {
	request.action in request.channel_actions
	tenant.known
	tenant.in_scope
	roles.permits("tenant", request.action)
	not denylist.denied
}

# 3-4. shared channels (never patterns; the deny-list does not apply).
allow if {
	request.action in request.channel_actions
	tenant.known
	shared.is_shared_channel
	roles.permits("shared", request.action)
}

# reason is only defined for denied requests. "denied by policy" would mean
# that the checks below and the allow rules above disagree; the tests make
# sure no case ends there.
reason := msg if {
	not allow
	msg := first_failure
}

reason := "denied by policy" if {
	not allow
	not first_failure
}

# first_failure is the message of the first failing check. Every message is
# listed here, so this is the place to change their wording.
first_failure := sprintf("unknown action %q", [request.action]) if {
	not request.action in request.known_actions
} else := sprintf("unknown tenant %q", [request.tenant]) if {
	not tenant.known
} else := msg if {
	request.action != "connect"
	msg := scope_failure
} else := msg if {
	request.action != "connect"
	not role_ok
	msg := role_failure
} else := msg if {
	request.action != "connect"
	msg := denylist_failure
}

# 3. where is the channel?
scope_failure := sprintf("tenant %s has no channel prefix configured", [request.tenant]) if {
	not tenant.prefix
} else := "pattern subscriptions on shared channels are not allowed" if {
	not tenant.in_prefix
	shared.pattern_on_shared
} else := sprintf("%s outside tenant %s", [request.kind, request.tenant]) if {
	not tenant.in_prefix
	not shared.is_shared_channel
} else := "channel belongs to another tenant" if {
	tenant.in_prefix
	not request.is_pattern
	count(tenant.foreign_owners) > 0
} else := "pattern may match channels of another tenant" if {
	tenant.in_prefix
	request.is_pattern
	count(tenant.foreign_owners) > 0
}

# 4. may the caller's roles do this there?
role_ok if {
	tenant.in_scope
	roles.permits("tenant", request.action)
}

role_ok if {
	shared.is_shared_channel
	roles.permits("shared", request.action)
}

role_failure := "user has no roles, only connect is allowed" if {
	count(request.roles) == 0
} else := msg if {
	shared.is_shared_channel
	not tenant.in_scope
	needed := roles.granting("shared", request.action)
	count(needed) > 0
	msg := sprintf("%s to shared channel %s requires %s", [
		request.action,
		request.upstream_channel,
		roles.describe_alternatives(needed),
	])
} else := sprintf("%s may not %s", [roles.describe(request.roles), request.action])

# 5. is the channel reserved?
denylist_failure := sprintf("channel is on the deny list (%s)", [describe_prefixes(denylist.matches)]) if {
	not request.is_pattern
	denylist.denied
}

denylist_failure := sprintf("pattern may match channels on the deny list (%s)", [describe_prefixes(denylist.matches)]) if {
	request.is_pattern
	denylist.denied
}

# describe_prefixes renders "prefix internal." or "prefixes admin., internal.".
describe_prefixes(ps) := sprintf("prefix %s", [concat(", ", sort(ps))]) if count(ps) == 1

describe_prefixes(ps) := sprintf("prefixes %s", [concat(", ", sort(ps))]) if count(ps) > 1
