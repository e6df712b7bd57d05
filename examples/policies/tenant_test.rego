# Tests of pubgate.lib.tenant: per-tenant prefix isolation.
package pubgate.lib.tenant_test

import data.pubgate.fixtures_test as f
import data.pubgate.lib.tenant


test_known_tenants if {
	tenant.known with input as {"tenant": "acme"} with data.pubgate.tenants as f.tenants
	tenant.known with input as {"tenant": "globex"} with data.pubgate.tenants as f.tenants
	not tenant.known with input as {"tenant": "initech"} with data.pubgate.tenants as f.tenants
	not tenant.known with input as {} with data.pubgate.tenants as f.tenants
}

test_no_tenants_configured if {
	not tenant.known with input as {"tenant": "acme"}
}

test_prefix if {
	tenant.prefix == "acme:" with input as {"tenant": "acme"} with data.pubgate.tenants as f.tenants
	not tenant.prefix with input as {"tenant": "acme"} with data.pubgate.tenants as {"acme": {"prefix": ""}}
	not tenant.prefix with input as {"tenant": "acme"} with data.pubgate.tenants as {"acme": {"prefix": 1}}
}

test_channel_inside_prefix if {
	tenant.in_scope with input as f.channel_input("acme", "acme:orders") with data.pubgate.tenants as f.tenants
	tenant.in_scope with input as f.channel_input("globex", "globex:orders") with data.pubgate.tenants as f.tenants
}

test_channel_of_other_tenant_outside if {
	not tenant.in_prefix with input as f.channel_input("acme", "globex:orders") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.channel_input("globex", "acme:orders") with data.pubgate.tenants as f.tenants
}

test_channel_prefix_lookalikes_outside if {
	not tenant.in_prefix with input as f.channel_input("acme", "acmex:orders") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.channel_input("acme", "acme") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.channel_input("acme", "acmeorders") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.channel_input("acme", "ACME:orders") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.channel_input("acme", "") with data.pubgate.tenants as f.tenants
}

test_pattern_checks_literal_prefix_only if {
	tenant.in_scope with input as f.pattern_input("acme", "acme:orders.*", "acme:orders.") with data.pubgate.tenants as f.tenants
	tenant.in_scope with input as f.pattern_input("acme", "acme:*", "acme:") with data.pubgate.tenants as f.tenants
}

test_hostile_patterns_outside if {
	every p in [
		["*", ""], ["?", ""], ["[", ""], ["acm*", "acm"], ["acme*", "acme"],
		["acm[e]:x", "acm"], [`acme\*:*`, "acme*:"], ["acmex:*", "acmex:"],
	] {
		not tenant.in_prefix with input as f.pattern_input("acme", p[0], p[1]) with data.pubgate.tenants as f.tenants
	}
}

# The raw pattern starting with the prefix is not enough when the literal
# prefix (as computed by pubgate) is shorter.
test_pattern_raw_string_is_ignored if {
	not tenant.in_prefix with input as f.pattern_input("acme", "acme:*", "acme") with data.pubgate.tenants as f.tenants
}

# pubgate resolves backslash escapes in the literal prefix: `acme\:*` (which
# only matches acme: channels) has literal prefix "acme:" and is rightly
# inside; a look-alike such as `acmex\:*` stays outside.
test_pattern_with_resolved_escape_inside if {
	tenant.in_scope with input as f.pattern_input("acme", `acme\:*`, "acme:") with data.pubgate.tenants as f.tenants
	not tenant.in_prefix with input as f.pattern_input("acme", `acmex\:*`, "acmex:") with data.pubgate.tenants as f.tenants
}

nested := {"acme": {"prefix": "acme:"}, "acme-eu": {"prefix": "acme:eu:"}}

test_nested_prefix_belongs_to_other_tenant if {
	tenant.foreign_owners == {"acme-eu"} with input as f.channel_input("acme", "acme:eu:orders") with data.pubgate.tenants as nested
	not tenant.in_scope with input as f.channel_input("acme", "acme:eu:orders") with data.pubgate.tenants as nested
	tenant.in_scope with input as f.channel_input("acme", "acme:us:orders") with data.pubgate.tenants as nested
	tenant.in_scope with input as f.channel_input("acme-eu", "acme:eu:orders") with data.pubgate.tenants as nested
}

test_nested_prefix_pattern_may_reach_other_tenant if {
	not tenant.in_scope with input as f.pattern_input("acme", "acme:*", "acme:") with data.pubgate.tenants as nested
	not tenant.in_scope with input as f.pattern_input("acme", "acme:e*", "acme:e") with data.pubgate.tenants as nested
	tenant.in_scope with input as f.pattern_input("acme", "acme:us.*", "acme:us.") with data.pubgate.tenants as nested
}

test_identical_prefixes_lock_both_tenants_out if {
	same := {"a": {"prefix": "x:"}, "b": {"prefix": "x:"}}
	not tenant.in_scope with input as f.channel_input("a", "x:orders") with data.pubgate.tenants as same
	not tenant.in_scope with input as f.channel_input("b", "x:orders") with data.pubgate.tenants as same
}
