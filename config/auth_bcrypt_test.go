package config

import (
	"strings"
	"testing"
)

// TestPasswordCheckSettings: auth.verified_cache is on by default and can
// be turned off; bad values name their key; the summary says what memory
// keeps.
func TestPasswordCheckSettings(t *testing.T) {
	const base = "tenants: {acme: {}}\nlisten: {plaintext: true}\n"
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if vc := c.Auth.VerifiedCache; !vc.Enabled || vc.MaxUsers != 10000 || c.Auth.BcryptConcurrency != 0 {
		t.Fatalf("defaults: %+v, concurrency %d", vc, c.Auth.BcryptConcurrency)
	}
	want := "bcrypt checks: one per CPU at a time; the last verified password of up to 10000 users remembered as an HMAC in memory (auth.verified_cache)\n"
	if s := c.Summary(); !strings.Contains(s, want) {
		t.Errorf("summary lacks %q:\n%s", want, s)
	}
	c, err = Parse([]byte(base + "auth: {verified_cache: {enabled: false, max_users: 0}, bcrypt_concurrency: 4}\n"))
	if err != nil {
		t.Fatalf("cache off: %v", err)
	}
	want = "bcrypt checks: 4 at a time; verified passwords not remembered, every login runs bcrypt\n"
	if s := c.Summary(); !strings.Contains(s, want) {
		t.Errorf("summary lacks %q:\n%s", want, s)
	}
	for yaml, msg := range map[string]string{
		"auth: {verified_cache: {max_users: 0}}": "auth.verified_cache.max_users: must be positive when the cache is enabled",
		"auth: {bcrypt_concurrency: -1}":         "auth.bcrypt_concurrency: must not be negative",
		"auth: {verified_cache: {maxusers: 5}}":  "auth.verified_cache.maxusers: unknown key",
	} {
		_, err := Parse([]byte(base + yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", yaml, err, msg)
		}
	}
}
