package config

import (
	"strings"
	"testing"
)

func TestDecodeErrorsNameTheKey(t *testing.T) {
	base := "tenants: {acme: {}}\nlisten: {plaintext: true}\n"
	cases := []struct{ name, yaml, want string }{
		{"duration in words", base + "auth: {login_timeout: 10 seconds}\n",
			`auth.login_timeout: "10 seconds" is not a duration (line 3): use Go syntax such as 10s or 1m30s`},
		{"duration without unit", base + "upstream:\n  timeout: 5\n", `upstream.timeout: "5" is not a duration (line 4)`},
		{"integer in words", base + "limits: {max_clients: lots}\n", `limits.max_clients: "lots" is not an integer (line 3): use digits`},
		{"integer in a map entry", "listen: {plaintext: true}\ntenants:\n  acme: {quotas: {max_connections: many}}\n",
			`tenants.acme.quotas.max_connections: "many" is not an integer (line 3)`},
		{"size in words", base + "limits: {max_payload_bytes: big}\n", `limits.max_payload_bytes: "big" is not a size (line 3): use bytes or units such as 64KiB`},
		{"boolean", base + "policy: {watch: maybe}\n", `policy.watch: "maybe" is not a boolean (line 3): use true or false`},
		{"string given a mapping", base + "log:\n  level: {x: y}\n", "log.level: must be a single value, not a mapping (line 4)"},
		{"list given a scalar", base + "policy: {paths: policies}\n", `policy.paths: must be a list, not "policies" (line 3)`},
		{"list element", base + "users:\n  u: {tenant: acme, roles: [a, [b]]}\n", "users.u.roles[1]: must be a single value, not a list (line 4)"},
		{"mapping given a scalar", base + "limits: 5\n", `limits: must be a mapping of keys, not "5" (line 3)`},
		{"map entry given a scalar", "listen: {plaintext: true}\ntenants:\n  acme: lots\n", `tenants.acme: must be a mapping of keys, not "lots" (line 3)`},
		{"document not a mapping", "hello\n", `configuration: must be a mapping of keys, not "hello" (line 1)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "cannot unmarshal") {
				t.Errorf("yaml's own wording leaks through: %v", err)
			}
		})
	}
}

// One run reports every decode error of the file, and the validation errors
// of the sections that decoded, but none that the defaults left in place of
// a bad value could cause.
func TestDecodeErrorsAreReportedTogether(t *testing.T) {
	cfg := `listen: {plaintext: true, drain_period: -1s}
tenants:
  acme: {}
users:
  eve: {tenant: acme, password_hash: [x]}
auth:
  login_timeout: 10 seconds
  throttle: {max_delay: 20s}
limits:
  max_clients: lots
  max_clinets: 3
log: {level: loud}
`
	_, err := Parse([]byte(cfg))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"users.eve.password_hash: must be a single value, not a list (line 5)",
		`auth.login_timeout: "10 seconds" is not a duration (line 7)`,
		`limits.max_clients: "lots" is not an integer (line 10)`,
		"limits.max_clinets: unknown key (line 11)",
		"listen.drain_period: must not be negative",
		`log.level: must be debug, info, warn or error, not "loud"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	// The sections with a bad value are not validated on their defaults.
	for _, unwanted := range []string{"users.eve.password_hash: is required", "auth.throttle.max_delay"} {
		if strings.Contains(msg, unwanted) {
			t.Errorf("errors hold %q, which only the dropped value caused:\n%s", unwanted, msg)
		}
	}
}

func TestPrefixWarnings(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"default prefix", "tenants: {acme: {}}\n", ""},
		{"separators", "tenants: {a: {prefix: 'a.'}, b: {prefix: b/}, c: {prefix: c-}, d: {prefix: d_}, e: {prefix: 'e|'}}\n", ""},
		{"no separator", "tenants: {acme: {}, globex: {prefix: globex}}\n",
			`tenants.globex.prefix: "globex" does not end in a separator (one of :./-_|): channel "news" is stored as "globexnews"`},
		{"shared prefix without separator", "tenants: {acme: {}}\nnamespace: {shared_prefix: pub}\n",
			`namespace.shared_prefix: "pub" does not end in a separator`},
		{"shared prefix with separator", "tenants: {acme: {}}\nnamespace: {shared_prefix: 'pub:'}\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("listen: {plaintext: true}\n" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			ws := strings.Join(c.Warnings(), "\n")
			if tc.want == "" && ws != "" || !strings.Contains(ws, tc.want) {
				t.Fatalf("warnings = %q\nwant %q", ws, tc.want)
			}
		})
	}
}

// A prefix that starts another tenant's is an error whatever its end: the
// first tenant could name the second's channels.
func TestOverlappingPrefixesWithoutSeparator(t *testing.T) {
	_, err := Parse([]byte("listen: {plaintext: true}\ntenants:\n  globex: {prefix: globex}\n  globexcorp: {}\n"))
	want := `tenants.globexcorp.prefix: "globexcorp:" overlaps tenants.globex.prefix "globex"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant it to contain %q", err, want)
	}
}
