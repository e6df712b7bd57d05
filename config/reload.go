package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// A running pubgate reloads its configuration on SIGHUP. Some settings
// take effect at once (the live ones, WithLive); the rest need a restart.

// WithLive returns c (the configuration in effect) with next's live
// settings: users, tenants (added, removed, and their quotas; a kept
// tenant's prefix needs a restart), the policy's sources, the audit levels
// and the log level. Diff(c, live) is what a reload applies, and
// Diff(live, next) what only a restart would. c and next are not modified.
func (c *Config) WithLive(next *Config) *Config {
	live := *c
	live.Users, live.UsersFile = next.Users, next.UsersFile
	live.Tenants = make(map[string]*Tenant, len(next.Tenants))
	for name, t := range next.Tenants {
		nt := *t
		if old := c.Tenants[name]; old != nil {
			nt.Prefix = old.Prefix
		}
		live.Tenants[name] = &nt
	}
	live.Policy.Paths, live.Policy.Bundle = next.Policy.Paths, next.Policy.Bundle
	live.Audit.Level, live.Audit.Levels, live.Audit.Tenants = next.Audit.Level, next.Audit.Levels, next.Audit.Tenants
	live.Log.Level = next.Log.Level
	return &live
}

// Diff lists the keys whose values differ between a and b, as a
// configuration file names them ("tenants.acme.quotas.max_connections");
// a map entry present on one side only is named whole ("users.carol").
// It never shows values, so secrets stay out of logs.
func Diff(a, b *Config) []string {
	var keys []string
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &keys)
	return keys
}

func diffValue(a, b reflect.Value, key string, keys *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			diffValue(a.Field(i), b.Field(i), joinKey(key, name), keys)
		}
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*keys = append(*keys, key)
			}
			return
		}
		diffValue(a.Elem(), b.Elem(), key, keys)
	case reflect.Map:
		names := make(map[string]bool)
		for _, k := range a.MapKeys() {
			names[k.String()] = true
		}
		for _, k := range b.MapKeys() {
			names[k.String()] = true
		}
		for _, name := range slices.Sorted(maps.Keys(names)) {
			k := reflect.ValueOf(name)
			av, bv := a.MapIndex(k), b.MapIndex(k)
			if !av.IsValid() || !bv.IsValid() {
				*keys = append(*keys, joinKey(key, name))
				continue
			}
			diffValue(av, bv, joinKey(key, name), keys)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
