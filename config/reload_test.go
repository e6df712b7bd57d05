package config

import (
	"slices"
	"strings"
	"testing"
)

const reloadBase = `
listen: {plaintext: true}
upstream: {url: "redis://127.0.0.1:6379/"}
tenants:
  acme: {quotas: {max_connections: 10}}
  globex: {}
users:
  alice: {tenant: acme, password_hash: "` + hash + `", roles: [publisher]}
policy: {timeout: 100ms}
log: {level: info}
`

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiffNamesChangedKeys(t *testing.T) {
	a := mustParse(t, reloadBase)
	if d := Diff(a, mustParse(t, reloadBase)); len(d) != 0 {
		t.Fatalf("the same file differs in %q", d)
	}
	edited := strings.NewReplacer(
		"max_connections: 10", "max_connections: 20",
		"globex: {}", "initech: {}",
		"roles: [publisher]", "roles: [publisher, subscriber]",
		"6379", "6390",
		"level: info", "level: debug",
	).Replace(reloadBase)
	got := Diff(a, mustParse(t, edited))
	want := []string{
		"upstream.url", "tenants.acme.quotas.max_connections", "tenants.globex", "tenants.initech",
		"users.alice.roles", "log.level",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %q\nwant %q", got, want)
	}
}

// TestWithLiveSplitsAppliedFromRestart: a reload applies users, tenants and
// quotas, the policy sources, audit and log levels; a kept tenant's prefix,
// the upstream, the listener and the rest wait for a restart.
func TestWithLiveSplitsAppliedFromRestart(t *testing.T) {
	running := mustParse(t, reloadBase)
	next := mustParse(t, strings.NewReplacer(
		"max_connections: 10", "max_connections: 20",
		"globex: {}", "globex: {prefix: 'gx:'}\n  initech: {}",
		"roles: [publisher]", "roles: [subscriber]",
		"6379", "6390",
		"timeout: 100ms", "timeout: 1s, paths: [../examples/policies]",
		"level: info", "level: debug",
	).Replace(reloadBase))
	live := running.WithLive(next)
	applied, restart := Diff(running, live), Diff(live, next)
	wantApplied := []string{"tenants.acme.quotas.max_connections", "tenants.initech", "users.alice.roles", "policy.paths", "log.level"}
	wantRestart := []string{"upstream.url", "tenants.globex.prefix", "policy.timeout"}
	if !slices.Equal(applied, wantApplied) {
		t.Errorf("applied %q\nwant    %q", applied, wantApplied)
	}
	if !slices.Equal(restart, wantRestart) {
		t.Errorf("restart %q\nwant    %q", restart, wantRestart)
	}
	if running.Tenants["acme"].Quotas.MaxConnections != 10 || len(running.Tenants) != 2 {
		t.Error("WithLive changed the running configuration")
	}
}
