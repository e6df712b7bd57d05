# End-to-end tests of data.pubgate.authz.allow / reason.
#
# Each test is one row of a table: who (namespace mode, tenant, roles) does
# what (action) on which channel as the client wrote it, and the expected
# outcome. f.req builds the input exactly as pubgate would (upstream name,
# pattern literal prefix), so the same row can be tried in both namespace
# modes. f.allowed also checks that no reason is given; f.denied checks the
# reason text.
package pubgate.authz_test

import data.pubgate.fixtures_test as f

pub := ["publisher"]

sub := ["subscriber"]

both := ["publisher", "subscriber"]

announcer := ["announcer"]

# ---------------------------------------------------------------------------
# connect
# ---------------------------------------------------------------------------

test_connect_allowed_for_known_tenant if f.allowed(f.rewrite, "acme", sub, "connect", "")

test_connect_allowed_for_second_tenant_in_enforce_mode if f.allowed(f.enforce, "globex", pub, "connect", "")

test_connect_allowed_without_roles if f.allowed(f.rewrite, "acme", [], "connect", "")

test_connect_denied_for_unknown_tenant if f.denied(f.rewrite, "initech", both, "connect", "", `unknown tenant "initech"`)

test_connect_denied_for_empty_tenant if f.denied(f.rewrite, "", both, "connect", "", `unknown tenant ""`)

test_unknown_action_denied if f.denied(f.rewrite, "acme", both, "monitor", "orders", `unknown action "monitor"`)

# ---------------------------------------------------------------------------
# publish / spublish
# ---------------------------------------------------------------------------

# ALLOWED
test_publish_own_channel_rewrite if f.allowed(f.rewrite, "acme", pub, "publish", "orders.created")

test_publish_own_channel_rewrite_second_tenant if f.allowed(f.rewrite, "globex", pub, "publish", "orders.created")

test_publish_own_channel_enforce if f.allowed(f.enforce, "acme", pub, "publish", "acme:orders.created")

test_publish_own_channel_enforce_second_tenant if f.allowed(f.enforce, "globex", pub, "publish", "globex:orders.created")

test_publish_with_both_roles if f.allowed(f.rewrite, "acme", both, "publish", "orders.created")

test_spublish_own_channel_rewrite if f.allowed(f.rewrite, "acme", pub, "spublish", "orders.created")

test_spublish_own_channel_enforce if f.allowed(f.enforce, "globex", pub, "spublish", "globex:orders.created")

# In rewrite mode a name that looks like another tenant's is simply a channel
# of the caller's own tenant: globex writes `acme:orders`, pubgate uses
# `globex:acme:orders` upstream.
test_publish_foreign_looking_name_stays_inside_in_rewrite_mode if {
	f.req(f.rewrite, "globex", pub, "publish", "acme:orders").upstream_channel == "globex:acme:orders"
	f.allowed(f.rewrite, "globex", pub, "publish", "acme:orders")
}

# DENIED: wrong role
test_publish_denied_for_subscriber if f.denied(f.rewrite, "acme", sub, "publish", "orders.created", "role subscriber may not publish")

test_spublish_denied_for_subscriber if f.denied(f.enforce, "acme", sub, "spublish", "acme:orders.created", "role subscriber may not spublish")

test_publish_denied_without_roles if f.denied(f.rewrite, "acme", [], "publish", "orders.created", "user has no roles, only connect is allowed")

test_publish_denied_for_announcer_on_tenant_channel if f.denied(f.rewrite, "acme", announcer, "publish", "orders.created", "role announcer may not publish")

test_publish_denied_for_unknown_roles if f.denied(f.rewrite, "acme", ["admin", "root"], "publish", "orders", "roles admin, root may not publish")

# DENIED: outside the tenant (enforce mode, the client writes full names)
test_publish_other_tenant_enforce if f.denied(f.enforce, "acme", pub, "publish", "globex:orders.created", "channel outside tenant acme")

test_publish_other_tenant_enforce_second_tenant if f.denied(f.enforce, "globex", pub, "publish", "acme:orders.created", "channel outside tenant globex")

test_spublish_other_tenant_enforce if f.denied(f.enforce, "globex", pub, "spublish", "acme:orders.created", "channel outside tenant globex")

test_publish_unprefixed_enforce if f.denied(f.enforce, "acme", pub, "publish", "orders.created", "channel outside tenant acme")

test_publish_prefix_lookalike_acmex if f.denied(f.enforce, "acme", pub, "publish", "acmex:orders", "channel outside tenant acme")

test_publish_prefix_without_separator if f.denied(f.enforce, "acme", pub, "publish", "acme", "channel outside tenant acme")

test_publish_prefix_without_separator_longer if f.denied(f.enforce, "acme", pub, "publish", "acmeorders", "channel outside tenant acme")

test_publish_unknown_tenant if f.denied(f.enforce, "initech", pub, "publish", "initech:orders", `unknown tenant "initech"`)

# The scope is checked before the roles: a subscriber writing to another
# tenant hears about the tenant, not the role.
test_scope_reason_before_role_reason if f.denied(f.enforce, "acme", sub, "publish", "globex:orders", "channel outside tenant acme")

# ---------------------------------------------------------------------------
# subscribe / ssubscribe
# ---------------------------------------------------------------------------

# ALLOWED
test_subscribe_own_channel_rewrite if f.allowed(f.rewrite, "acme", sub, "subscribe", "orders.created")

test_subscribe_own_channel_rewrite_second_tenant if f.allowed(f.rewrite, "globex", sub, "subscribe", "orders.created")

test_subscribe_own_channel_enforce if f.allowed(f.enforce, "acme", sub, "subscribe", "acme:orders.created")

test_subscribe_with_both_roles if f.allowed(f.enforce, "globex", both, "subscribe", "globex:orders.created")

test_ssubscribe_own_channel_rewrite if f.allowed(f.rewrite, "globex", sub, "ssubscribe", "orders.created")

test_ssubscribe_own_channel_enforce if f.allowed(f.enforce, "acme", sub, "ssubscribe", "acme:orders.created")

# DENIED
test_subscribe_denied_for_publisher if f.denied(f.rewrite, "acme", pub, "subscribe", "orders.created", "role publisher may not subscribe")

test_ssubscribe_denied_for_publisher if f.denied(f.enforce, "globex", pub, "ssubscribe", "globex:orders", "role publisher may not ssubscribe")

test_subscribe_denied_without_roles if f.denied(f.enforce, "acme", [], "subscribe", "acme:orders", "user has no roles, only connect is allowed")

test_subscribe_other_tenant_enforce if f.denied(f.enforce, "acme", sub, "subscribe", "globex:orders.created", "channel outside tenant acme")

test_ssubscribe_other_tenant_enforce if f.denied(f.enforce, "globex", sub, "ssubscribe", "acme:orders.created", "channel outside tenant globex")

test_subscribe_prefix_lookalike_acmex if f.denied(f.enforce, "acme", sub, "subscribe", "acmex:orders", "channel outside tenant acme")

# ---------------------------------------------------------------------------
# psubscribe
# ---------------------------------------------------------------------------

# ALLOWED
test_psubscribe_own_pattern_rewrite if f.allowed(f.rewrite, "acme", sub, "psubscribe", "orders.*")

test_psubscribe_own_pattern_rewrite_second_tenant if f.allowed(f.rewrite, "globex", sub, "psubscribe", "orders.*")

# The README's quickstart: bob (globex) subscribes to `orders*`, which stays
# inside globex: and cannot reach a denied prefix; `*` could, and is refused.
test_psubscribe_readme_pattern_rewrite if {
	f.req(f.rewrite, "globex", sub, "psubscribe", "orders*").pattern_literal_prefix == "globex:orders"
	f.allowed(f.rewrite, "globex", sub, "psubscribe", "orders*")
	f.denied(f.rewrite, "globex", sub, "psubscribe", "*", "pattern may match channels on the deny list (prefixes admin., internal.)")
}

test_psubscribe_own_pattern_enforce if f.allowed(f.enforce, "acme", sub, "psubscribe", "acme:orders.*")

test_psubscribe_own_class_pattern_enforce if f.allowed(f.enforce, "globex", sub, "psubscribe", "globex:orders.[cu]*")

# In rewrite mode even a hostile-looking pattern stays inside the tenant:
# `acme\:*` becomes `acme:acme\:*` upstream, literal prefix `acme:acme:`.
test_psubscribe_escaped_pattern_stays_inside_in_rewrite_mode if {
	inp := f.req(f.rewrite, "acme", sub, "psubscribe", `acme\:*`)
	inp.upstream_channel == `acme:acme\:*`
	inp.pattern_literal_prefix == "acme:acme:"
	f.allowed(f.rewrite, "acme", sub, "psubscribe", `acme\:*`)
}

test_psubscribe_other_tenant_name_stays_inside_in_rewrite_mode if f.allowed(f.rewrite, "acme", sub, "psubscribe", "globex:*")

# DENIED: wrong role
test_psubscribe_denied_for_publisher if f.denied(f.rewrite, "acme", pub, "psubscribe", "orders.*", "role publisher may not psubscribe")

test_psubscribe_denied_for_announcer if f.denied(f.rewrite, "acme", announcer, "psubscribe", "orders.*", "role announcer may not psubscribe")

# DENIED: hostile patterns in enforce mode. Only the literal prefix (up to the
# first unescaped '*', '?' or '[', escapes resolved) counts, and it must start
# with "acme:".
# pattern -> its literal prefix
hostile_patterns := {
	"*": "",
	"?": "",
	"[": "",
	"[a]cme:*": "",
	"a*": "a",
	"acm*": "acm",
	"acme*": "acme",
	"acme?x": "acme",
	"acm[e]:x": "acm",
	`acme\*:*`: "acme*:",
	`acm\[e]:*`: "acm[e]:",
	"acmex:*": "acmex:",
	"globex:*": "globex:",
}

test_psubscribe_hostile_patterns_enforce[pattern] if {
	some pattern, literal_prefix in hostile_patterns
	f.req(f.enforce, "acme", sub, "psubscribe", pattern).pattern_literal_prefix == literal_prefix
	f.denied(f.enforce, "acme", sub, "psubscribe", pattern, "pattern outside tenant acme")
}

# The same table as individual rows, to see them in plain test output.
test_psubscribe_star_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "*", "pattern outside tenant acme")

test_psubscribe_question_mark_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "?", "pattern outside tenant acme")

test_psubscribe_open_bracket_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "[", "pattern outside tenant acme")

# An escaped ':' can only match a ':', so `acme\:orders.*` is inside acme:.
test_psubscribe_escaped_separator_enforce if f.allowed(f.enforce, "acme", sub, "psubscribe", `acme\:orders.*`)

test_psubscribe_acm_star_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "acm*", "pattern outside tenant acme")

test_psubscribe_acme_star_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "acme*", "pattern outside tenant acme")

test_psubscribe_bracketed_prefix_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "acm[e]:x", "pattern outside tenant acme")

test_psubscribe_prefix_lookalike_acmex_enforce if f.denied(f.enforce, "acme", sub, "psubscribe", "acmex:*", "pattern outside tenant acme")

test_psubscribe_other_tenant_enforce if f.denied(f.enforce, "globex", sub, "psubscribe", "acme:orders.*", "pattern outside tenant globex")

# DENIED: catch-all patterns inside the tenant run into the deny-list.
test_psubscribe_star_rewrite if f.denied(f.rewrite, "acme", sub, "psubscribe", "*", "pattern may match channels on the deny list (prefixes admin., internal.)")

test_psubscribe_tenant_star_enforce if f.denied(f.enforce, "globex", sub, "psubscribe", "globex:*", "pattern may match channels on the deny list (prefixes admin., internal.)")

test_psubscribe_question_mark_rewrite if f.denied(f.rewrite, "acme", sub, "psubscribe", "?nternal.jobs", "pattern may match channels on the deny list (prefixes admin., internal.)")

test_psubscribe_open_bracket_rewrite if f.denied(f.rewrite, "acme", sub, "psubscribe", "[ai]*", "pattern may match channels on the deny list (prefixes admin., internal.)")

# Without a deny-list a catch-all inside the tenant is fine.
test_psubscribe_star_allowed_without_denylist if {
	cfg := f.config_with(f.rewrite, f.tenants, f.no_denylist)
	f.allowed_with(cfg, f.req(f.rewrite, "acme", sub, "psubscribe", "*"))
}

test_psubscribe_tenant_star_enforce_allowed_without_denylist if {
	cfg := f.config_with(f.enforce, f.tenants, f.no_denylist)
	f.allowed_with(cfg, f.req(f.enforce, "acme", sub, "psubscribe", "acme:*"))
}

# ...but the tenant check still applies.
test_psubscribe_star_enforce_denied_without_denylist if {
	cfg := f.config_with(f.enforce, f.tenants, f.no_denylist)
	f.denied_with(cfg, f.req(f.enforce, "acme", sub, "psubscribe", "*"), "pattern outside tenant acme")
}

# ---------------------------------------------------------------------------
# shared channel shared:announcements
# ---------------------------------------------------------------------------

# ALLOWED: every tenant reads it, in both modes
test_shared_subscribe_acme_rewrite if f.allowed(f.rewrite, "acme", sub, "subscribe", "shared:announcements")

test_shared_subscribe_globex_rewrite if f.allowed(f.rewrite, "globex", sub, "subscribe", "shared:announcements")

test_shared_subscribe_acme_enforce if f.allowed(f.enforce, "acme", sub, "subscribe", "shared:announcements")

test_shared_subscribe_globex_enforce if f.allowed(f.enforce, "globex", both, "subscribe", "shared:announcements")

test_shared_ssubscribe if f.allowed(f.rewrite, "globex", sub, "ssubscribe", "shared:announcements")

# ALLOWED: announcers post to it
test_shared_publish_announcer_rewrite if f.allowed(f.rewrite, "acme", announcer, "publish", "shared:announcements")

test_shared_publish_announcer_enforce if f.allowed(f.enforce, "globex", ["announcer", "publisher"], "publish", "shared:announcements")

test_shared_spublish_announcer if f.allowed(f.rewrite, "globex", announcer, "spublish", "shared:announcements")

# DENIED
test_shared_publish_denied_for_publisher if f.denied(f.rewrite, "acme", pub, "publish", "shared:announcements", "publish to shared channel shared:announcements requires role announcer")

test_shared_publish_denied_for_publisher_enforce if f.denied(f.enforce, "globex", both, "publish", "shared:announcements", "publish to shared channel shared:announcements requires role announcer")

test_shared_spublish_denied_for_publisher if f.denied(f.rewrite, "globex", pub, "spublish", "shared:announcements", "spublish to shared channel shared:announcements requires role announcer")

test_shared_subscribe_denied_for_publisher if f.denied(f.rewrite, "acme", pub, "subscribe", "shared:announcements", "subscribe to shared channel shared:announcements requires role subscriber")

test_shared_subscribe_denied_without_roles if f.denied(f.rewrite, "acme", [], "subscribe", "shared:announcements", "user has no roles, only connect is allowed")

test_shared_subscribe_denied_for_unknown_tenant if f.denied(f.enforce, "initech", sub, "subscribe", "shared:announcements", `unknown tenant "initech"`)

test_shared_pattern_denied_rewrite if f.denied(f.rewrite, "acme", sub, "psubscribe", "shared:*", "pattern subscriptions on shared channels are not allowed")

test_shared_pattern_denied_enforce if f.denied(f.enforce, "globex", sub, "psubscribe", "shared:announce*", "pattern subscriptions on shared channels are not allowed")

test_shared_pattern_without_glob_denied if f.denied(f.rewrite, "acme", sub, "psubscribe", "shared:announcements", "pattern subscriptions on shared channels are not allowed")

test_shared_pattern_short_prefix_denied if f.denied(f.enforce, "acme", sub, "psubscribe", "s*", "pattern subscriptions on shared channels are not allowed")

# Only the listed channels are shared, not everything under shared_prefix.
test_unlisted_shared_prefix_channel_denied if f.denied(f.rewrite, "acme", sub, "subscribe", "shared:secrets", "channel outside tenant acme")

test_unlisted_shared_prefix_channel_denied_enforce if f.denied(f.enforce, "globex", pub, "publish", "shared:other", "channel outside tenant globex")

# Without a shared_prefix, rewrite mode prefixes every name: the client reaches
# its own `acme:shared:announcements`, not the shared channel.
test_shared_name_without_shared_prefix_is_a_tenant_channel if {
	ns := {"mode": "rewrite", "shared_prefix": ""}
	f.req(ns, "acme", pub, "publish", "shared:announcements").upstream_channel == "acme:shared:announcements"
	f.allowed(ns, "acme", pub, "publish", "shared:announcements")
}

# ---------------------------------------------------------------------------
# deny-list (internal., admin.)
# ---------------------------------------------------------------------------

test_denylist_publish_rewrite if f.denied(f.rewrite, "acme", pub, "publish", "internal.jobs", "channel is on the deny list (prefix internal.)")

test_denylist_subscribe_rewrite if f.denied(f.rewrite, "globex", sub, "subscribe", "admin.audit", "channel is on the deny list (prefix admin.)")

test_denylist_ssubscribe_enforce if f.denied(f.enforce, "acme", sub, "ssubscribe", "acme:internal.jobs", "channel is on the deny list (prefix internal.)")

test_denylist_spublish_enforce if f.denied(f.enforce, "globex", pub, "spublish", "globex:admin.users", "channel is on the deny list (prefix admin.)")

test_denylist_exact_prefix_channel if f.denied(f.rewrite, "acme", pub, "publish", "internal.", "channel is on the deny list (prefix internal.)")

test_denylist_pattern if f.denied(f.rewrite, "acme", sub, "psubscribe", "internal.*", "pattern may match channels on the deny list (prefix internal.)")

test_denylist_pattern_short_prefix if f.denied(f.enforce, "acme", sub, "psubscribe", "acme:int*", "pattern may match channels on the deny list (prefix internal.)")

test_denylist_pattern_single_letter if f.denied(f.rewrite, "acme", sub, "psubscribe", "a*", "pattern may match channels on the deny list (prefix admin.)")

# Prefixes are matched literally: these are ordinary channels.
test_denylist_no_separator_allowed if f.allowed(f.rewrite, "acme", pub, "publish", "internal")

test_denylist_lookalike_allowed if f.allowed(f.rewrite, "acme", sub, "subscribe", "internals.jobs")

test_denylist_not_at_start_allowed if f.allowed(f.enforce, "acme", sub, "subscribe", "acme:orders.internal.x")

test_denylist_disjoint_pattern_allowed if f.allowed(f.rewrite, "acme", sub, "psubscribe", "orders.*")

# Earlier checks give the reason first.
test_denylist_reason_after_tenant_reason if f.denied(f.enforce, "acme", pub, "publish", "globex:internal.jobs", "channel outside tenant acme")

test_denylist_reason_after_role_reason if f.denied(f.rewrite, "acme", sub, "publish", "internal.jobs", "role subscriber may not publish")

test_denylist_empty_allows_reserved_names if {
	cfg := f.config_with(f.rewrite, f.tenants, f.no_denylist)
	f.allowed_with(cfg, f.req(f.rewrite, "acme", pub, "publish", "internal.jobs"))
}

# ---------------------------------------------------------------------------
# configuration edge cases
# ---------------------------------------------------------------------------

# Nested tenant prefixes: acme-eu's `acme:eu:` lies inside acme's `acme:`.
nested := object.union(f.tenants, {"acme-eu": {"prefix": "acme:eu:"}})

test_nested_prefix_channel_denied if {
	cfg := f.config_with(f.enforce, nested, f.settings)
	f.denied_with(cfg, f.req(f.enforce, "acme", pub, "publish", "acme:eu:orders"), "channel belongs to another tenant")
}

test_nested_prefix_pattern_denied if {
	cfg := f.config_with(f.enforce, nested, f.no_denylist)
	f.denied_with(cfg, f.req(f.enforce, "acme", sub, "psubscribe", "acme:e*"), "pattern may match channels of another tenant")
}

test_nested_prefix_sibling_channel_allowed if {
	cfg := f.config_with(f.enforce, nested, f.settings)
	f.allowed_with(cfg, f.req(f.enforce, "acme", pub, "publish", "acme:us:orders"))
}

test_nested_prefix_inner_tenant_allowed if {
	cfg := f.config_with(f.enforce, nested, f.settings)
	f.allowed_with(cfg, f.req(f.enforce, "acme-eu", pub, "publish", "acme:eu:orders"))
}

# A tenant without a prefix may connect but gets no channel.
test_tenant_without_prefix if {
	cfg := f.config_with(f.enforce, {"acme": {}}, f.settings)
	f.allowed_with(cfg, f.req(f.enforce, "acme", sub, "connect", ""))
	f.denied_with(cfg, f.req(f.enforce, "acme", sub, "subscribe", "orders"), "tenant acme has no channel prefix configured")
}

test_tenant_with_empty_prefix if {
	cfg := f.config_with(f.enforce, {"acme": {"prefix": ""}}, f.settings)
	f.denied_with(cfg, f.req(f.enforce, "acme", sub, "subscribe", "orders"), "tenant acme has no channel prefix configured")
}

# A psubscribe is treated as a pattern even if the input says otherwise.
test_psubscribe_without_pattern_flag_still_a_pattern if {
	inp := object.union(f.req(f.enforce, "acme", sub, "psubscribe", "*"), {"pattern": false, "pattern_literal_prefix": ""})
	f.denied_with(f.config(f.enforce), inp, "pattern outside tenant acme")
}

# Missing or mistyped fields fail closed.
test_empty_input_denied if f.denied_with(f.config(f.rewrite), {}, `unknown action ""`)

test_null_roles_denied if {
	inp := object.union(f.req(f.rewrite, "acme", sub, "subscribe", "orders"), {"roles": null})
	f.denied_with(f.config(f.rewrite), inp, "user has no roles, only connect is allowed")
}

test_missing_upstream_channel_denied if {
	inp := object.remove(f.req(f.rewrite, "acme", pub, "publish", "orders"), {"upstream_channel"})
	f.denied_with(f.config(f.rewrite), inp, "channel outside tenant acme")
}

test_missing_literal_prefix_denied if {
	inp := object.remove(f.req(f.rewrite, "acme", sub, "psubscribe", "orders.*"), {"pattern_literal_prefix"})
	f.denied_with(f.config(f.rewrite), inp, "pattern outside tenant acme")
}

# ---------------------------------------------------------------------------
# every denial has a specific reason, every allowed request none
# ---------------------------------------------------------------------------

test_no_generic_reason if {
	every ns in [f.rewrite, f.enforce] {
		every tenant in ["acme", "globex", "initech"] {
			every roles in [[], ["subscriber"], ["publisher"], ["announcer"], ["publisher", "subscriber"]] {
				every action in ["connect", "publish", "spublish", "subscribe", "ssubscribe", "psubscribe"] {
					every channel in ["orders", "acme:orders", "globex:x.*", "internal.x", "shared:announcements", "*", "acme*"] {
						d := f.decision(f.config(ns), f.req(ns, tenant, roles, action, channel))
						consistent(d)
					}
				}
			}
		}
	}
}

consistent(d) if {
	d.allow == true
	d.reason == null
}

consistent(d) if {
	d.allow == false
	is_string(d.reason)
	d.reason != "denied by policy"
}

# ---------------------------------------------------------------------------
# the shipped data.yaml
# ---------------------------------------------------------------------------

# Uses data.policy_settings as loaded from data.yaml (no override).
test_shipped_settings_shared_channel_readable if {
	inp := f.req(f.rewrite, "globex", sub, "subscribe", "shared:announcements")
	data.pubgate.authz.allow with input as inp with data.pubgate.tenants as f.tenants
}

test_shipped_settings_deny_list_applies if {
	inp := f.req(f.rewrite, "acme", pub, "publish", "internal.jobs")
	not data.pubgate.authz.allow with input as inp with data.pubgate.tenants as f.tenants
}
