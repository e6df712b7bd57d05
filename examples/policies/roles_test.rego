# Tests of pubgate.lib.roles: which role may do what, where.
package pubgate.lib.roles_test

import data.pubgate.lib.roles

reads := {"subscribe", "ssubscribe", "psubscribe"}

writes := {"publish", "spublish"}

may(rs, scope, action) if roles.permits(scope, action) with input as {"roles": rs}

test_subscriber_reads_tenant_channels if {
	every a in reads {
		may(["subscriber"], "tenant", a)
	}
}

test_subscriber_does_not_write if {
	every a in writes {
		not may(["subscriber"], "tenant", a)
		not may(["subscriber"], "shared", a)
	}
}

test_publisher_writes_tenant_channels if {
	every a in writes {
		may(["publisher"], "tenant", a)
	}
}

test_publisher_does_not_read if {
	every a in reads {
		not may(["publisher"], "tenant", a)
		not may(["publisher"], "shared", a)
	}
}

test_publisher_does_not_write_shared_channels if {
	every a in writes {
		not may(["publisher"], "shared", a)
	}
}

test_both_roles_read_and_write if {
	every a in reads | writes {
		may(["publisher", "subscriber"], "tenant", a)
	}
}

test_subscriber_reads_shared_channels_by_name_only if {
	may(["subscriber"], "shared", "subscribe")
	may(["subscriber"], "shared", "ssubscribe")
	not may(["subscriber"], "shared", "psubscribe")
}

test_announcer_writes_shared_channels_only if {
	every a in writes {
		may(["announcer"], "shared", a)
		not may(["announcer"], "tenant", a)
	}
	every a in reads {
		not may(["announcer"], "shared", a)
	}
}

test_no_role_no_action if {
	every a in (reads | writes) | {"connect"} {
		not may([], "tenant", a)
		not may([], "shared", a)
	}
}

test_unknown_roles_grant_nothing if {
	not may(["admin"], "tenant", "publish")
	not may(["Publisher"], "tenant", "publish")
}

test_granting if {
	roles.granting("shared", "publish") == {"announcer"}
	roles.granting("shared", "subscribe") == {"subscriber"}
	roles.granting("shared", "psubscribe") == set()
	roles.granting("tenant", "spublish") == {"publisher"}
}

test_describe if {
	roles.describe(set()) == "no role"
	roles.describe({"publisher"}) == "role publisher"
	roles.describe({"subscriber", "publisher"}) == "roles publisher, subscriber"
	roles.describe_alternatives({"announcer"}) == "role announcer"
	roles.describe_alternatives({"b", "a"}) == "role a or role b"
}
