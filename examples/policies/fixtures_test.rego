# Package pubgate.fixtures_test holds the test fixtures shared by the *_test.rego
# files: pubgate's config data, the library settings, and helpers that build
# the input document exactly as pubgate would and ask for a decision.
#
# The file name ends in _test.rego so that it is only loaded with the tests.
package pubgate.fixtures_test

# --- data pubgate provides from its config (data.pubgate.*) -----------------

tenants := {
	"acme": {"prefix": "acme:"},
	"globex": {"prefix": "globex:"},
}

users := {
	"alice": {"tenant": "acme", "roles": ["publisher", "subscriber"]},
	"bob": {"tenant": "globex", "roles": ["subscriber"]},
}

rewrite := {"mode": "rewrite", "shared_prefix": "shared:"}

enforce := {"mode": "enforce", "shared_prefix": "shared:"}

# --- this library's settings (data.policy_settings) --------------------------

# Same as data.yaml, repeated so the tests do not change when data.yaml does.
settings := {
	"shared_channels": ["shared:announcements"],
	"denied_prefixes": ["internal.", "admin."],
}

no_denylist := object.union(settings, {"denied_prefixes": []})

# --- building the input -------------------------------------------------------

# channel_input and pattern_input are bare inputs for the library's helper
# rules, which read only the tenant, the upstream name and the pattern fields.
channel_input(t, up) := {"action": "publish", "tenant": t, "upstream_channel": up, "pattern": false, "pattern_literal_prefix": ""}

pattern_input(t, up, lp) := {"action": "psubscribe", "tenant": t, "upstream_channel": up, "pattern": true, "pattern_literal_prefix": lp}

# req(ns, tenant, roles, action, channel) is the input document pubgate sends
# when a client of `tenant` holding `roles` does `action` on `channel` (as the
# client wrote it) under namespace config `ns`.
req(ns, tenant, roles, action, channel) := {
	"action": action,
	"channel": channel,
	"pattern": action == "psubscribe",
	"pattern_literal_prefix": literal_prefix(action, up),
	"upstream_channel": up,
	"tenant": tenant,
	"user": "test-user",
	"roles": roles,
	"auth": {"method": "password", "claims": {}},
	"client": {
		"addr": "10.1.2.3:50122",
		"name": "",
		"tls": {"version": "1.3", "subject": "", "uri_sans": [], "dns_sans": []},
	},
} if {
	up := upstream(ns, tenant, action, channel)
}

# upstream mirrors pubgate's namespace handling:
#   enforce: the name is used as written;
#   rewrite: names under shared_prefix (for a pattern: whose literal prefix
#            is) are used as written, everything else gets the tenant prefix
#            in front (glob-escaped for patterns).
upstream(_, _, "connect", _) := ""

upstream(ns, tenant, action, channel) := channel if {
	action != "connect"
	ns.mode == "enforce"
} else := channel if {
	action != "connect"
	ns.shared_prefix != ""
	startswith(literal_prefix(action, channel), ns.shared_prefix)
} else := channel if {
	action != "connect"
	action != "psubscribe"
	ns.shared_prefix != ""
	startswith(channel, ns.shared_prefix)
} else := concat("", [glob_escape(tenants[tenant].prefix), channel]) if {
	action == "psubscribe"
} else := concat("", [tenants[tenant].prefix, channel]) if {
	action != "connect"
} else := channel if {
	# unknown tenant: nothing to prefix
	action != "connect"
}

# literal_prefix: for psubscribe, as pubgate computes it: the upstream
# pattern up to its first unescaped '*', '?' or '[', backslash escapes
# resolved; "" otherwise.
literal_prefix("psubscribe", up) := regex.replace(regex.find_n(`^(?:[^*?\[\\]|\\.)*`, up, 1)[0], `\\(.)`, "$1")

literal_prefix(action, _) := "" if action != "psubscribe"

glob_escape(s) := regex.replace(s, `([*?\[\]\\])`, `\$1`)

# --- asking for a decision ------------------------------------------------------

decision(cfg, inp) := {"allow": allow, "reason": reason} if {
	allow := data.pubgate.authz.allow with input as inp
		with data.pubgate.tenants as cfg.tenants
		with data.pubgate.users as users
		with data.pubgate.namespace as cfg.ns
		with data.policy_settings as cfg.settings
	reason := object.get(reasons(cfg, inp), "reason", null)
}

reasons(cfg, inp) := {"reason": r |
	r := data.pubgate.authz.reason with input as inp
		with data.pubgate.tenants as cfg.tenants
		with data.pubgate.users as users
		with data.pubgate.namespace as cfg.ns
		with data.policy_settings as cfg.settings
}

# config(ns) is the standard configuration; config_with replaces parts of it.
config(ns) := config_with(ns, tenants, settings)

config_with(ns, ts, ss) := {"tenants": ts, "ns": ns, "settings": ss}

# allowed(ns, tenant, roles, action, channel): allowed, and no reason given.
allowed(ns, tenant, roles, action, channel) if {
	allowed_with(config(ns), req(ns, tenant, roles, action, channel))
}

# denied(ns, tenant, roles, action, channel, why): denied with reason `why`.
denied(ns, tenant, roles, action, channel, why) if {
	denied_with(config(ns), req(ns, tenant, roles, action, channel), why)
}

allowed_with(cfg, inp) if {
	decision(cfg, inp) == {"allow": true, "reason": null}
}

denied_with(cfg, inp, why) if {
	decision(cfg, inp) == {"allow": false, "reason": why}
}

# --- the fixtures themselves ------------------------------------------------------

test_fixture_rewrite_mode if {
	inp := req(rewrite, "acme", [], "publish", "orders")
	inp.upstream_channel == "acme:orders"
	inp.pattern == false
	inp.pattern_literal_prefix == ""
}

test_fixture_rewrite_mode_pattern if {
	inp := req(rewrite, "acme", [], "psubscribe", "orders.*")
	inp.upstream_channel == "acme:orders.*"
	inp.pattern == true
	inp.pattern_literal_prefix == "acme:orders."
}

test_fixture_rewrite_mode_shared_prefix_not_rewritten if {
	req(rewrite, "acme", [], "subscribe", "shared:announcements").upstream_channel == "shared:announcements"
	req(rewrite, "acme", [], "psubscribe", "shared:*").pattern_literal_prefix == "shared:"
}

test_fixture_enforce_mode if {
	req(enforce, "acme", [], "publish", "globex:x").upstream_channel == "globex:x"
	req(enforce, "acme", [], "psubscribe", `acme\:*`).pattern_literal_prefix == "acme:"
	req(enforce, "acme", [], "psubscribe", "acm[e]:x").pattern_literal_prefix == "acm"
	req(enforce, "acme", [], "psubscribe", "*").pattern_literal_prefix == ""
}

test_fixture_glob_escape if {
	glob_escape(`a*b?c[d]e\f`) == `a\*b\?c\[d\]e\\f`
	req({"mode": "rewrite", "shared_prefix": ""}, "t", [], "psubscribe", "x*").upstream_channel == `t\*:x*` with tenants as {"t": {"prefix": "t*:"}}
}
