package config

import (
	"strings"
	"testing"
)

// TestPatternQuotaDefaults: a tenant without max_patterns gets
// limits.max_patterns_per_tenant; 0 stays 0 (unlimited); covering is on by
// default.
func TestPatternQuotaDefaults(t *testing.T) {
	c, err := Parse([]byte(valid + `  max_patterns_per_tenant: 500
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Tenants["acme"].Quotas.MaxPatterns; p == nil || *p != 500 {
		t.Fatalf("acme's max_patterns = %v, want limits.max_patterns_per_tenant (500)", p)
	}
	if c.Limits.CoverPatternsOver != 32 {
		t.Fatalf("cover_patterns_over = %d, want 32", c.Limits.CoverPatternsOver)
	}
	zero := strings.Replace(valid, "  acme: {}", "  acme:\n    quotas:\n      max_patterns: 0", 1)
	if c, err = Parse([]byte(zero)); err != nil {
		t.Fatal(err)
	}
	if p := c.Tenants["acme"].Quotas.MaxPatterns; p == nil || *p != 0 {
		t.Fatalf("max_patterns: 0 became %v", p)
	}
	if d := Default().Limits.MaxPatternsPerTenant; d != 10000 {
		t.Fatalf("default max_patterns_per_tenant = %d", d)
	}
}

func TestPatternQuotaValidation(t *testing.T) {
	bad := strings.Replace(valid, "  acme: {}", "  acme:\n    quotas:\n      max_patterns: -1", 1) + "  cover_patterns_over: -1\n  max_patterns_per_tenant: -2\n"
	_, err := Parse([]byte(bad))
	for _, key := range []string{"tenants.acme.quotas.max_patterns", "limits.cover_patterns_over", "limits.max_patterns_per_tenant"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
