# Package pubgate.lib.shared handles cross-tenant shared channels.
#
# data.policy_settings.shared_channels lists upstream channel names that every
# tenant may read, e.g. "shared:announcements". Which roles may do what on
# them is in lib.roles (scope "shared"): reading needs `subscriber`,
# publishing needs `announcer`.
#
# How a client reaches them:
#   - enforce mode: the client writes the full name, `shared:announcements`;
#   - rewrite mode: names starting with namespace.shared_prefix (`shared:`)
#     are not rewritten, so `shared:announcements` arrives unchanged. (Without
#     a shared_prefix every name is rewritten into the tenant prefix and the
#     shared channels cannot be named at all.)
#
# Patterns: only exact channel names are shared; a pattern is never a shared
# channel, so PSUBSCRIBE over shared channels is always refused (`shared:*`,
# even `shared:announcements` sent as a pattern). Allowing a pattern would
# require proving it cannot match anything but shared channels, and a client
# that wants the announcements can simply SUBSCRIBE to them by name.
# `pattern_on_shared` only exists so the refusal can say why.
package pubgate.lib.shared

import data.pubgate.lib.request

# channels is the set of shared upstream channel names.
channels := {c |
	some c in data.policy_settings.shared_channels
	is_string(c)
	c != ""
}

# is_shared_channel: the request names (not patterns) a shared channel.
is_shared_channel if {
	not request.is_pattern
	request.upstream_channel in channels
}

# pattern_on_shared: a pattern whose literal prefix is the beginning of a
# shared channel name, i.e. the client apparently tries to pattern-subscribe to
# shared channels. (An empty literal prefix, as in `*`, is reported as being
# outside the tenant instead.)
pattern_on_shared if {
	request.is_pattern
	request.literal_prefix != ""
	some c in channels
	startswith(c, request.literal_prefix)
}
