package config

// PolicyData is what policies see as data.pubgate: the tenants (prefix,
// quotas), the users (tenant, roles; never password hashes) and the
// namespace settings, as plain JSON values.
func (c *Config) PolicyData() map[string]any {
	tenants := make(map[string]any, len(c.Tenants))
	for name, t := range c.Tenants {
		q := t.Quotas
		tenants[name] = map[string]any{"prefix": t.Prefix, "quotas": map[string]any{
			"max_connections": q.MaxConnections, "max_subscriptions": q.MaxSubscriptions,
			"max_payload_bytes": int64(q.MaxPayloadBytes),
			"publish_rate":      map[string]any{"messages": q.PublishRate.Messages, "bytes": int64(q.PublishRate.Bytes)},
		}}
	}
	users := make(map[string]any, len(c.Users))
	for name, u := range c.Users {
		roles := make([]any, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = r
		}
		users[name] = map[string]any{"tenant": u.Tenant, "roles": roles}
	}
	return map[string]any{
		"tenants": tenants, "users": users,
		"namespace": map[string]any{"mode": c.Namespace.Mode, "shared_prefix": c.Namespace.SharedPrefix},
	}
}
