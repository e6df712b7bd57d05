# Package pubgate.lib.tenant confines every tenant to its own channel prefix.
#
# pubgate's config gives each tenant a prefix (data.pubgate.tenants):
#
#   {"acme": {"prefix": "acme:"}, "globex": {"prefix": "globex:"}}
#
# A channel belongs to the caller's tenant when its upstream name starts with
# the tenant prefix; a pattern when its literal prefix does. Comparing with the
# full prefix, separator included, is what keeps look-alikes out: `acme:`
# does not match `acmex:orders`, `acme` or `acme*`. (Give every tenant a
# prefix that ends with a separator no tenant name contains, such as ':'.)
#
# The same rule works in both namespace modes: in `rewrite` mode pubgate has
# already put the prefix in front of what the client wrote, so anything the
# client writes stays inside (except names under namespace.shared_prefix, which
# are not rewritten, and are therefore outside unless lib.shared lets them in);
# in `enforce` mode the client writes full names and this check is what keeps
# `globex:orders`, `*` or `acm*` away from tenant acme.
package pubgate.lib.tenant

import data.pubgate.lib.request

# known is true when pubgate's config has a tenant of that name.
known if data.pubgate.tenants[request.tenant]

# prefix is the caller's tenant prefix. A tenant without a usable (non-empty
# string) prefix gets no channel at all: an empty prefix would otherwise make
# every channel of every tenant "its own".
prefix := p if {
	p := data.pubgate.tenants[request.tenant].prefix
	is_string(p)
	p != ""
}

# in_prefix: the channel, or the pattern's literal prefix, starts with the
# caller's tenant prefix.
in_prefix if startswith(request.target, prefix)

# foreign_owners guards against nested prefixes, e.g. tenant acme with prefix
# `acme:` and tenant acme-eu with prefix `acme:eu:`. `acme:eu:orders` starts
# with `acme:` but belongs to acme-eu; a pattern `acme:*` could match it. Such
# configurations are best avoided; this rule makes them safe anyway.
foreign_owners contains name if {
	some name, other in data.pubgate.tenants
	is_string(other.prefix)
	startswith(other.prefix, prefix) # so not "": prefix is not
	name != request.tenant
	request.may_reach(other.prefix)
}

# in_scope: the request stays inside the caller's tenant.
in_scope if {
	in_prefix
	count(foreign_owners) == 0
}
