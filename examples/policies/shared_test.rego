# Tests of pubgate.lib.shared: the cross-tenant shared channels.
package pubgate.lib.shared_test

import data.pubgate.fixtures_test as f
import data.pubgate.lib.shared


test_channels_from_settings if {
	shared.channels == {"shared:announcements"} with data.policy_settings as f.settings
	shared.channels == {"a", "b"} with data.policy_settings as {"shared_channels": ["a", "", 3, "b"]}
	shared.channels == set() with data.policy_settings as {}
}

test_listed_channel_is_shared if {
	shared.is_shared_channel with input as f.channel_input("acme", "shared:announcements") with data.policy_settings as f.settings
}

test_unlisted_channels_are_not_shared if {
	every up in ["shared:other", "shared:announcements.x", "shared:", "acme:shared:announcements", "shared:Announcements"] {
		not shared.is_shared_channel with input as f.channel_input("acme", up) with data.policy_settings as f.settings
	}
}

test_nothing_shared_without_settings if {
	not shared.is_shared_channel with input as f.channel_input("acme", "shared:announcements") with data.policy_settings as {}
}

test_pattern_is_never_a_shared_channel if {
	not shared.is_shared_channel with input as f.pattern_input("acme", "shared:announcements", "shared:announcements") with data.policy_settings as f.settings
}

test_patterns_aiming_at_shared_channels if {
	every p in [["shared:*", "shared:"], ["shared:announce*", "shared:announce"], ["s*", "s"], ["shared:announcements", "shared:announcements"]] {
		shared.pattern_on_shared with input as f.pattern_input("acme", p[0], p[1]) with data.policy_settings as f.settings
	}
}

test_patterns_not_aiming_at_shared_channels if {
	every p in [["*", ""], ["acme:*", "acme:"], ["shared:x*", "shared:x"]] {
		not shared.pattern_on_shared with input as f.pattern_input("acme", p[0], p[1]) with data.policy_settings as f.settings
	}
}
