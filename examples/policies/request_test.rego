# Tests of pubgate.lib.request: input normalisation.
package pubgate.lib.request_test

import data.pubgate.lib.request

test_string_fields if {
	request.action == "publish" with input as {"action": "publish"}
	request.tenant == "acme" with input as {"tenant": "acme"}
	request.upstream_channel == "acme:x" with input as {"upstream_channel": "acme:x"}
}

test_missing_fields_are_empty_strings if {
	request.action == "" with input as {}
	request.tenant == "" with input as {}
	request.upstream_channel == "" with input as {}
	request.literal_prefix == "" with input as {}
}

test_mistyped_fields_are_empty_strings if {
	request.action == "" with input as {"action": 42}
	request.tenant == "" with input as {"tenant": ["acme"]}
}

test_roles_is_a_set_of_strings if {
	request.roles == {"publisher", "subscriber"} with input as {"roles": ["subscriber", "publisher", 7, null, "subscriber"]}
}

test_roles_empty_when_missing_or_not_an_array if {
	request.roles == set() with input as {}
	request.roles == set() with input as {"roles": null}
	request.roles == set() with input as {"roles": "publisher"}
	request.roles == set() with input as {"roles": {"publisher": true}}
}

test_channel_target_is_upstream_channel if {
	inp := {"action": "subscribe", "channel": "orders", "upstream_channel": "acme:orders", "pattern": false, "pattern_literal_prefix": ""}
	not request.is_pattern with input as inp
	request.target == "acme:orders" with input as inp
	request.kind == "channel" with input as inp
}

test_pattern_target_is_literal_prefix if {
	inp := {"action": "psubscribe", "channel": "*", "upstream_channel": "acme:*", "pattern": true, "pattern_literal_prefix": "acme:"}
	request.is_pattern with input as inp
	request.target == "acme:" with input as inp
	request.kind == "pattern" with input as inp
}

test_psubscribe_is_a_pattern_even_without_flag if {
	request.is_pattern with input as {"action": "psubscribe", "pattern": false}
}

test_pattern_flag_alone_makes_a_pattern if {
	request.is_pattern with input as {"action": "subscribe", "pattern": true}
}

test_may_reach_channel if {
	inp := {"action": "publish", "upstream_channel": "acme:internal.jobs"}
	request.may_reach("acme:internal.") with input as inp
	not request.may_reach("acme:internal.jobs.x") with input as inp
}

test_may_reach_pattern_overlaps_both_ways if {
	inp := {"action": "psubscribe", "pattern": true, "upstream_channel": "acme:int*", "pattern_literal_prefix": "acme:int"}
	request.may_reach("acme:internal.") with input as inp
	request.may_reach("acme:") with input as inp
	not request.may_reach("acme:orders.") with input as inp
}
