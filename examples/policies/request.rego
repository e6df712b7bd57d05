# Package pubgate.lib.request normalises the input document pubgate sends for
# every decision, so the other packages never have to deal with missing or
# mistyped fields: every string field defaults to "" and roles to an empty set,
# which makes every later check fail closed.
#
# Input fields used by this library (see README.md for the full document):
#
#   action                  connect | publish | spublish | subscribe | ssubscribe | psubscribe
#   upstream_channel        the channel (or pattern) name as pubgate sends it to Redis
#   pattern                 true for psubscribe
#   pattern_literal_prefix  psubscribe only: the text every channel the
#                           upstream pattern can match starts with: the
#                           pattern up to its first unescaped '*', '?' or '[',
#                           backslash escapes resolved (`acme\:*` gives
#                           `acme:`).
#   tenant, user, roles     who is asking
#
# The library deliberately reasons on upstream_channel / pattern_literal_prefix,
# never on the raw `channel` the client wrote: those two fields mean the same in
# both namespace modes (`rewrite` and `enforce`), and a pattern's literal prefix
# is the only part of a pattern that can safely be compared with a prefix
# (`acme*`, `acm[e]:x` and `acme\*:x` all have a literal prefix that does not
# start with `acme:`).
package pubgate.lib.request

# Every action pubgate asks about.
known_actions := {"connect", "publish", "spublish", "subscribe", "ssubscribe", "psubscribe"}

# Actions that name a channel (or a pattern).
channel_actions := known_actions - {"connect"}

# Each field is read with a plain reference to input (no helper function),
# which OPA evaluates fastest: see "Writing fast policies" in README.md.
default action := ""

action := input.action if is_string(input.action)

default tenant := ""

tenant := input.tenant if is_string(input.tenant)

default user := ""

user := input.user if is_string(input.user)

default upstream_channel := ""

upstream_channel := input.upstream_channel if is_string(input.upstream_channel)

default literal_prefix := ""

literal_prefix := input.pattern_literal_prefix if is_string(input.pattern_literal_prefix)

# roles is the set of role names pubgate resolved for the caller (from its user
# table, the JWT claims or the client certificate). Anything that is not a
# string is ignored.
roles := {r |
	is_array(input.roles)
	some r in input.roles
	is_string(r)
}

# is_pattern is true when the request names a glob pattern rather than a
# channel. Either signal is enough: treating a request as a pattern is the
# stricter choice, because only its literal prefix is then trusted.
is_pattern if input.pattern == true

is_pattern if action == "psubscribe"

# target is the part of the upstream name that prefix rules may look at: the
# whole channel name, or only the literal prefix of a pattern.
# (Two rules rather than if/else: partial evaluation, which pubgate uses to
# plan decisions, resolves them for a known action.)
target := literal_prefix if is_pattern

target := upstream_channel if not is_pattern

# kind names the target in reason messages.
kind := "pattern" if is_pattern

else := "channel"

# may_reach(p) is true when the request could touch a channel whose upstream
# name starts with p:
#   - a channel: its name starts with p;
#   - a pattern: its literal prefix starts with p, or p starts with its literal
#     prefix (the pattern continues with a wildcard right after the literal
#     part, so it may match names that continue with p's remaining characters).
#     This is conservative: `internal` with no glob at all is still counted as
#     reaching `internal.`.
may_reach(p) if startswith(target, p)

may_reach(p) if {
	is_pattern
	startswith(p, target)
}
