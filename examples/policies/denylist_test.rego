# Tests of pubgate.lib.denylist: reserved channel prefixes inside every tenant.
package pubgate.lib.denylist_test

import data.pubgate.fixtures_test as f
import data.pubgate.lib.denylist


matches(inp) := m if {
	m := denylist.matches with input as inp
		with data.pubgate.tenants as f.tenants
		with data.policy_settings as f.settings
}

test_local_name_strips_tenant_prefix if {
	denylist.local_name == "internal.jobs" with input as f.channel_input("acme", "acme:internal.jobs") with data.pubgate.tenants as f.tenants
	denylist.local_name == "in" with input as f.pattern_input("acme", "acme:in*", "acme:in") with data.pubgate.tenants as f.tenants
	not denylist.local_name with input as f.channel_input("acme", "globex:internal.jobs") with data.pubgate.tenants as f.tenants
}

test_channel_with_denied_prefix if {
	matches(f.channel_input("acme", "acme:internal.jobs")) == {"internal."}
	matches(f.channel_input("acme", "acme:admin.")) == {"admin."}
}

test_channel_without_denied_prefix if {
	every up in ["acme:orders", "acme:internal", "acme:internals.x", "acme:orders.internal.x", "acme:"] {
		matches(f.channel_input("acme", up)) == set()
	}
}

test_prefix_is_relative_to_tenant_prefix if {
	# `internal.` at the very start of the upstream name is not inside the
	# tenant, so the deny-list does not apply (lib.tenant refuses it anyway).
	matches(f.channel_input("acme", "internal.jobs")) == set()
}

test_pattern_inside_denied_prefix if {
	matches(f.pattern_input("acme", "acme:internal.*", "acme:internal.")) == {"internal."}
	matches(f.pattern_input("acme", "acme:admin.x?", "acme:admin.x")) == {"admin."}
}

test_pattern_around_denied_prefix if {
	matches(f.pattern_input("acme", "acme:int*", "acme:int")) == {"internal."}
	matches(f.pattern_input("acme", "acme:[ai]*", "acme:")) == {"internal.", "admin."}
}

test_catch_all_pattern_hits_every_denied_prefix if {
	matches(f.pattern_input("acme", "acme:*", "acme:")) == {"internal.", "admin."}
	matches(f.pattern_input("acme", "acme:?", "acme:")) == {"internal.", "admin."}
}

test_catch_all_pattern_allowed_with_empty_denylist if {
	not denylist.denied with input as f.pattern_input("acme", "acme:*", "acme:")
		with data.pubgate.tenants as f.tenants
		with data.policy_settings as f.no_denylist
}

test_disjoint_pattern if {
	matches(f.pattern_input("acme", "acme:orders.*", "acme:orders.")) == set()
	matches(f.pattern_input("acme", "acme:b*", "acme:b")) == set()
}

test_empty_denied_prefix_denies_everything if {
	denylist.denied with input as f.channel_input("acme", "acme:orders")
		with data.pubgate.tenants as f.tenants
		with data.policy_settings as {"denied_prefixes": [""]}
}

test_no_settings_no_denials if {
	not denylist.denied with input as f.channel_input("acme", "acme:internal.jobs") with data.pubgate.tenants as f.tenants with data.policy_settings as {}
}
