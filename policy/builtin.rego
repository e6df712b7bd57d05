# pubgate's built-in policy, in effect when the configuration names none:
# an identity of a configured tenant may connect, and may use any channel
# inside its tenant's prefix. In rewrite mode that is every channel it can
# name; in enforce mode it confines each tenant to its prefix.
package pubgate.authz

default allow := false

prefix := data.pubgate.tenants[input.tenant].prefix

allow if {
	input.action == "connect"
	prefix
}

allow if {
	input.action != "connect"
	not input.pattern
	startswith(input.upstream_channel, prefix)
}

allow if {
	input.pattern
	startswith(input.pattern_literal_prefix, prefix)
}

reason := sprintf("channel outside tenant %s", [input.tenant]) if not allow
