package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hash is bcrypt("alice-secret") at the minimum cost, to keep tests fast.
const hash = "$2a$04$kgPboL45J2J/V0s/3IbxXOQLOzAP1.yhtoWFpVWOR4gnrF79My9lG"

const valid = `
listen:
  address: 127.0.0.1:7000
  plaintext: true
upstream:
  url: redis://:secret@127.0.0.1:6379/
  timeout: 2s
tenants:
  acme: {}
  globex:
    prefix: "gx/"
users:
  alice:
    tenant: acme
    password_hash: "` + hash + `"
    roles: [publisher]
limits:
  max_payload_bytes: 64KiB
  client_output_buffer:
    hard_limit: 1MiB
    soft_limit: 512KiB
    soft_seconds: 5
`

func TestParseValid(t *testing.T) {
	c, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Address != "127.0.0.1:7000" || c.Upstream.Timeout != 2*time.Second {
		t.Errorf("listen/upstream not decoded: %+v %+v", c.Listen, c.Upstream)
	}
	if c.Tenants["acme"].Prefix != "acme:" || c.Tenants["globex"].Prefix != "gx/" {
		t.Errorf("prefixes: acme %q globex %q", c.Tenants["acme"].Prefix, c.Tenants["globex"].Prefix)
	}
	if c.Limits.MaxPayloadBytes != 64<<10 || c.Limits.ClientOutputBuffer.HardLimit != 1<<20 {
		t.Errorf("sizes: %+v", c.Limits)
	}
	if c.Limits.MaxClients != Default().Limits.MaxClients {
		t.Errorf("default max_clients not kept: %d", c.Limits.MaxClients)
	}
	if s := c.Summary(); strings.Contains(s, "secret") || !strings.Contains(s, "alice") {
		t.Errorf("summary leaks the password or misses users:\n%s", s)
	}
	if d := fmt.Sprint(c.PolicyData()); strings.Contains(d, hash) || !strings.Contains(d, "gx/") || !strings.Contains(d, "publisher") {
		t.Errorf("policy data leaks the password hash or misses tenants and roles: %s", d)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	base := "tenants: {acme: {}}\nlisten: {plaintext: true}\n"
	cases := []struct{ name, yaml, want string }{
		{"unknown top key", base + "listn: {}\n", "listn: unknown key (line 3)"},
		{"unknown nested key", base + "limits:\n  client_output_buffer:\n    hardlimit: 1\n", "limits.client_output_buffer.hardlimit: unknown key (line 5)"},
		{"unknown key in map entry", "tenants:\n  acme: {prefx: a}\n", "tenants.acme.prefx: unknown key"},
		{"unknown key in user", base + "users:\n  al:\n    tenant: acme\n    password: x\n", "users.al.password: unknown key"},
		{"no tenants", "listen: {address: 127.0.0.1:1}\n", "tenants: at least one tenant is required"},
		{"bad address", "tenants: {acme: {}}\nlisten: {address: nowhere, plaintext: true}\n", "listen.address: must be host:port"},
		{"no TLS and no plaintext", "tenants: {acme: {}}\n", "listen.tls: TLS is required"},
		{"plaintext with TLS", "tenants: {acme: {}}\nlisten: {plaintext: true, tls: {internal: {}}}\n", "listen.plaintext: cannot be combined with listen.tls"},
		{"cert without key", "tenants: {acme: {}}\nlisten: {tls: {cert_file: a.crt}}\n", "listen.tls: cert_file and key_file go together"},
		{"missing cert files", "tenants: {acme: {}}\nlisten: {tls: {cert_file: /nope.crt, key_file: /nope.key}}\n", "listen.tls.cert_file: open /nope.crt"},
		{"client auth without CA", "tenants: {acme: {}}\nlisten: {tls: {internal: {}, client_auth: require}}\n", "listen.tls.client_auth: require needs listen.tls.client_ca_file"},
		{"bad client auth", "tenants: {acme: {}}\nlisten: {tls: {internal: {}, client_auth: maybe}}\n", `listen.tls.client_auth: must be none, verify_if_given or require, not "maybe"`},
		{"acme without domains", "tenants: {acme: {}}\nlisten: {tls: {acme: {http_challenge_address: ':80'}}}\n", "listen.tls.acme.domains: name at least one domain"},
		{"acme without challenge", "tenants: {acme: {}}\nlisten: {tls: {acme: {domains: [a.example]}}}\n", "listen.tls.acme: enable http_challenge_address or tls_alpn_challenge"},
		{"acme over http", "tenants: {acme: {}}\nlisten: {tls: {acme: {domains: [a.example], directory_url: 'http://ca/dir', http_challenge_address: ':80'}}}\n", "listen.tls.acme.directory_url: must be an https:// URL"},
		{"acme with files", "tenants: {acme: {}}\nlisten: {tls: {acme: {domains: [a.example], http_challenge_address: ':80'}, internal: {}}}\n", "listen.tls.acme: cannot be combined"},
		{"bad min version", "tenants: {acme: {}}\nlisten: {tls: {internal: {}, min_version: '1.1'}}\n", `listen.tls.min_version: must be "1.2" or "1.3", not "1.1"`},
		{"bad scheme", base + "upstream: {url: 'http://x'}\n", `upstream.url: scheme must be memory, redis or rediss, not "http"`},
		{"url and cluster", base + "upstream: {url: 'redis://r:6379/', cluster: {addresses: ['r:7000']}}\n", "upstream.url: set either url or cluster, not both"},
		{"cluster and sentinel", base + "upstream: {cluster: {addresses: ['r:7000']}, sentinel: {master_name: m, addresses: ['s:26379']}}\n", "upstream: set either cluster or sentinel, not both"},
		{"cluster without seeds", base + "upstream: {cluster: {sharded: true}}\n", "upstream.cluster.addresses: needs at least one host:port"},
		{"bad cluster seed", base + "upstream: {cluster: {addresses: [r7000]}}\n", `upstream.cluster.addresses: "r7000" is not host:port`},
		{"sentinel without master", base + "upstream: {sentinel: {addresses: ['s:26379']}}\n", "upstream.sentinel.master_name: is required"},
		{"sentinel without addresses", base + "upstream: {sentinel: {master_name: m}}\n", "upstream.sentinel.addresses: needs at least one host:port"},
		{"username with url", base + "upstream: {url: 'redis://r:6379/', username: u}\n", "upstream.username: is for cluster and sentinel"},
		{"tls with plain url", base + "upstream: {url: 'redis://r:6379/', tls: {enabled: true}}\n", "upstream.tls: needs a rediss:// upstream.url"},
		{"zero health interval", base + "upstream: {health_interval: 0s}\n", "upstream.health_interval: must be positive"},
		{"overlapping prefixes", "tenants:\n  a: {prefix: 'x:'}\n  b: {prefix: 'x:y'}\n", `tenants.b.prefix: "x:y" overlaps tenants.a.prefix "x:"`},
		{"prefix with space", "tenants:\n  a: {prefix: 'x y'}\n", "tenants.a.prefix: must not contain spaces"},
		{"bad tenant name", "tenants:\n  'a b': {}\n", "tenants.a b: tenant names may contain"},
		{"unknown tenant", base + "users:\n  u: {tenant: nope, password_hash: '" + hash + "'}\n", `users.u.tenant: unknown tenant "nope"`},
		{"missing hash", base + "users:\n  u: {tenant: acme}\n", "users.u.password_hash: is required"},
		{"bad hash", base + "users:\n  u: {tenant: acme, password_hash: plain}\n", "users.u.password_hash: not a bcrypt hash"},
		{"bad role", base + "users:\n  u: {tenant: acme, password_hash: '" + hash + "', roles: ['a b']}\n", "users.u.roles[0]: role names"},
		{"unknown default user", base + "auth: {default_user: ghost}\n", `auth.default_user: unknown user "ghost"`},
		{"certificates without client CA", base + "auth: {certificates: {}}\n", "auth.certificates: needs listen.tls.client_ca_file and client_auth"},
		{"bad certificate template", base + "auth: {certificates: {uri_template: 'spiffe://x/{tenant}'}}\n", "auth.certificates.uri_template: must contain {tenant} and {user} once each"},
		{"stray braces in the certificate template", base + "auth: {certificates: {uri_template: 'spiffe://x/{tenant}/{user}/{x}'}}\n", "auth.certificates.uri_template: may contain no braces but those of {tenant} and {user}"},
		{"bad certificate login", base + "auth: {certificates: {login: maybe}}\n", `auth.certificates.login: must be certificate or password, not "maybe"`},
		{"jwt without keys", base + "auth: {jwt: {issuer: i, audience: a}}\n", "auth.jwt: set one of jwks_url and jwks_file"},
		{"jwt over http", base + "auth: {jwt: {jwks_url: 'http://idp/jwks', issuer: i, audience: a}}\n", "auth.jwt.jwks_url: must be an https:// URL"},
		{"jwt without issuer", base + "auth: {jwt: {jwks_url: 'https://idp/jwks', audience: a}}\n", "auth.jwt.issuer: is required"},
		{"jwt alg none", base + "auth: {jwt: {jwks_url: 'https://idp/jwks', issuer: i, audience: a, algorithms: [RS256, none]}}\n", `auth.jwt.algorithms[1]: "none" is not one of`},
		{"jwt HMAC", base + "auth: {jwt: {jwks_url: 'https://idp/jwks', issuer: i, audience: a, algorithms: [HS256]}}\n", `auth.jwt.algorithms[0]: "HS256" is not one of`},
		{"zero login timeout", base + "auth: {login_timeout: 0s}\n", "auth.login_timeout: must be positive"},
		{"throttle without window", base + "auth: {throttle: {max_failures: 3, window: 0s}}\n", "auth.throttle.window: must be positive when max_failures is set"},
		{"throttle without delay", base + "auth: {throttle: {max_failures: 3, max_delay: 0s}}\n", "auth.throttle.max_delay: must be positive when max_failures is set"},
		{"throttle delay too long", base + "auth: {throttle: {max_delay: 6s}}\n", "auth.throttle.max_delay: must be at most 5s"},
		{"throttle delay past the login timeout", base + "auth: {login_timeout: 2s, throttle: {max_delay: 2s}}\n", "auth.throttle.max_delay: must be less than auth.login_timeout (2s)"},
		{"negative max_failures", base + "auth: {throttle: {max_failures: -1}}\n", "auth.throttle.max_failures: must not be negative"},
		{"throttle lockout of old releases", base + "auth:\n  throttle:\n    max_failures: 5\n    lockout: 1m\n",
			"auth.throttle.lockout: no longer supported (line 6): the throttle no longer locks a client out, it delays each further login; remove lockout and set auth.throttle.max_delay"},
		{"soft above hard", base + "limits: {client_output_buffer: {hard_limit: 1KiB, soft_limit: 2KiB}}\n", "limits.client_output_buffer.soft_limit: must be positive and at most hard_limit"},
		{"bad size", base + "limits: {max_payload_bytes: lots}\n", `"lots" is not a size`},
		{"zero clients", base + "limits: {max_clients: 0}\n", "limits.max_clients: must be positive"},
		{"bad log level", base + "log: {level: loud}\n", `log.level: must be debug, info, warn or error, not "loud"`},
		{"bad duration", base + "upstream: {timeout: soon}\n", "soon"},
		{"not yaml", "tenants: [\n", "yaml"},
		{"bad namespace mode", base + "namespace: {mode: strict}\n", `namespace.mode: must be rewrite or enforce, not "strict"`},
		{"shared prefix in enforce", base + "namespace: {mode: enforce, shared_prefix: 's:'}\n", "namespace.shared_prefix: only applies in rewrite mode"},
		{"shared prefix overlaps a tenant", base + "namespace: {shared_prefix: 'ac'}\n", `namespace.shared_prefix: "ac" overlaps tenants.acme.prefix "acme:"`},
		{"missing policy path", base + "policy: {paths: [/nope/policies]}\n", "policy.paths[0]: stat /nope/policies"},
		{"missing bundle", base + "policy: {bundle: /nope.tar.gz}\n", "policy.bundle: stat /nope.tar.gz"},
		{"zero policy timeout", base + "policy: {timeout: 0s}\n", "policy.timeout: must be positive"},
		{"zero cache", base + "policy: {cache_size: 0}\n", "policy.cache_size: must be positive"},
		{"negative concurrency", base + "policy: {concurrency: -1}\n", "policy.concurrency: must not be negative"},
		{"unknown policy key", base + "policy: {path: x}\n", "policy.path: unknown key"},
		{"negative disconnect", "listen: {plaintext: true}\nupstream: {url: 'redis://h:1/', disconnect_clients_after: -1s}\ntenants: {acme: {}}\n", "upstream.disconnect_clients_after: must not be negative"},
		{"negative drain", "listen: {plaintext: true, drain_period: -1s}\ntenants: {acme: {}}\n", "listen.drain_period: must not be negative"},
		{"proxy protocol peer", "listen: {plaintext: true, proxy_protocol: {trusted: [10.0.0.0/8, haproxy]}}\ntenants: {acme: {}}\n", `listen.proxy_protocol.trusted[1]: "haproxy" is neither an IP address nor a CIDR range`},
		{"proxy protocol timeout", "listen: {plaintext: true, proxy_protocol: {trusted: [127.0.0.1], header_timeout: 0s}}\ntenants: {acme: {}}\n", "listen.proxy_protocol.header_timeout: must be positive"},
		{"negative quota", "listen: {plaintext: true}\ntenants:\n  acme: {quotas: {max_connections: -1}}\n", "tenants.acme.quotas.max_connections: must not be negative"},
		{"negative rate", "listen: {plaintext: true}\ntenants:\n  acme: {quotas: {publish_rate: {messages: -5}}}\n", "tenants.acme.quotas.publish_rate.messages: must not be negative"},
		{"unknown quota", "listen: {plaintext: true}\ntenants:\n  acme: {quotas: {max_conns: 1}}\n", "tenants.acme.quotas.max_conns: unknown key"},
		{"bad audit sink", base + "audit: {sink: syslog}\n", `audit.sink: must be none, file or stdout, not "syslog"`},
		{"audit file without path", base + "audit: {sink: file, key_env: PUBGATE_TEST_NO_SUCH_VAR}\n", "audit.path: the file sink needs a path"},
		{"audit without key", base + "audit: {sink: stdout}\n", "audit.key_file: no key"},
		{"audit key env unset", base + "audit: {sink: stdout, key_env: PUBGATE_TEST_NO_SUCH_VAR}\n", "audit.key_env: key: environment variable PUBGATE_TEST_NO_SUCH_VAR is empty or not set"},
		{"audit key file missing", base + "audit: {sink: stdout, key_file: /nope.key}\n", "audit.key_file: key: open /nope.key"},
		{"audit key in config", base + "audit: {sink: stdout, key: abc}\n", "audit.key: unknown key"},
		{"bad audit level", base + "audit: {level: all}\n", `audit.level: must be none, metadata, payload_digest or payload, not "all"`},
		{"bad audit action", base + "audit: {levels: {connect: none}}\n", `audit.levels: unknown action "connect"`},
		{"audit tenant unknown", base + "audit: {tenants: {initech: {level: none}}}\n", "audit.tenants.initech: no such tenant"},
		{"bad audit tenant level", base + "audit: {tenants: {acme: {levels: {publish: loads}}}}\n", "audit.tenants.acme.levels.publish: must be none"},
		{"zero fsync records", base + "audit: {fsync_records: 0}\n", "audit.fsync_records: must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTLSDefaults(t *testing.T) {
	c, err := Parse([]byte("tenants: {acme: {}}\nlisten: {tls: {internal: {data_dir: /tmp/x}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Listen.TLS.Internal; strings.Join(in.Names, ",") != "localhost,127.0.0.1,::1" || in.DataDir != "/tmp/x" {
		t.Errorf("internal CA defaults: %+v", in)
	}
	if c.Listen.TLS.ClientAuth != "none" || c.Listen.TLS.MinVersion != "1.2" {
		t.Errorf("tls defaults: %+v", c.Listen.TLS)
	}
}

func TestParseEmptyDocumentNeedsTenants(t *testing.T) {
	if _, err := Parse(nil); err == nil || !strings.Contains(err.Error(), "tenants") {
		t.Fatalf("empty config: %v", err)
	}
}

func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("users.yaml", "users:\n  svc: {tenant: acme, password_hash: '"+hash+"', roles: [publisher]}\n")
	main := write("pubgate.yaml", "listen: {plaintext: true}\ntenants: {acme: {}}\nusers_file: users.yaml\nusers:\n  alice: {tenant: acme, password_hash: '"+hash+"'}\n")
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users["svc"] == nil || c.Users["svc"].Roles[0] != "publisher" || c.Users["alice"] == nil {
		t.Fatalf("users: %v", c.Users)
	}
	write("users.yaml", "users:\n  alice: {tenant: acme, password_hash: '"+hash+"'}\n")
	if _, err := Load(main); err == nil || !strings.Contains(err.Error(), "users.alice: also defined in the configuration file") {
		t.Fatalf("duplicate user: %v", err)
	}
	write("users.yaml", "users:\n  svc: {tenant: nope, password_hash: '"+hash+"', pasword: x}\n")
	if _, err := Load(main); err == nil || !strings.Contains(err.Error(), "users.svc.pasword: unknown key") {
		t.Fatalf("unknown key in users_file: %v", err)
	}
	write("users.yaml", "users:\n  svc: {tenant: nope, password_hash: '"+hash+"'}\n")
	if _, err := Load(main); err == nil || !strings.Contains(err.Error(), `users.svc.tenant: unknown tenant "nope"`) {
		t.Fatalf("bad user in users_file: %v", err)
	}
}

func TestPolicyPathsAreRelativeToTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pubgate.yaml")
	cfg := "listen: {plaintext: true}\ntenants:\n  acme: {quotas: {max_connections: 3, publish_rate: {messages: 10, bytes: 1KiB}}}\npolicy: {paths: [policies]}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.Paths[0] != filepath.Join(dir, "policies") || !c.Policy.Watch || c.Namespace.Mode != "rewrite" {
		t.Fatalf("policy %+v namespace %+v", c.Policy, c.Namespace)
	}
	q := c.Tenants["acme"].Quotas
	if q.MaxConnections != 3 || q.PublishRate.Messages != 10 || q.PublishRate.Bytes != 1024 {
		t.Fatalf("quotas %+v", q)
	}
	if s := c.Summary(); !strings.Contains(s, "quotas: 3 connections, 10 msg/s, 1.0 KiB/s") || !strings.Contains(s, "policies, reloaded on change") {
		t.Fatalf("summary:\n%s", s)
	}
}

func TestAuditSettings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("k", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pubgate.yaml")
	cfg := "listen: {plaintext: true}\ntenants: {acme: {}, globex: {}}\n" +
		"audit: {sink: file, path: log/audit.log, key_file: audit.key, levels: {publish: metadata}, tenants: {globex: {level: payload_digest}}}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.Path != filepath.Join(dir, "log", "audit.log") || a.KeyFile != filepath.Join(dir, "audit.key") || !a.FailClosed ||
		a.FsyncInterval != time.Second || a.FsyncRecords != 1000 || a.SealInterval != time.Minute || a.MaxSize != 100<<20 {
		t.Fatalf("audit %+v", a)
	}
	s := c.Summary()
	for _, want := range []string{"audit:    file " + a.Path, "fail closed", "all tenants      subscribe=metadata psubscribe=metadata ssubscribe=metadata publish=metadata spublish=none",
		"tenant globex    subscribe=payload_digest"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestUpstreamDeployments(t *testing.T) {
	base := "tenants: {acme: {}}\nlisten: {plaintext: true}\n"
	cases := []struct{ yaml, kind, describe string }{
		{"", "memory", "memory://"},
		{"upstream: {url: 'redis://u:secret@r:6379/'}\n", "redis", "redis://u:xxxxx@r:6379/"},
		{"upstream: {cluster: {addresses: ['a:7000', 'b:7001'], sharded: true}, password: secret}\n", "cluster", "cluster a:7000,b:7001 (sharded pub/sub)"},
		{"upstream: {sentinel: {master_name: main, addresses: ['s:26379']}, tls: {enabled: true}}\n", "sentinel", `sentinel primary "main" via s:26379, TLS`},
	}
	for _, tc := range cases {
		c, err := Parse([]byte(base + tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.Upstream.Kind(); got != tc.kind {
			t.Errorf("%q: kind %s, want %s", tc.yaml, got, tc.kind)
		}
		if got := c.Upstream.Describe(); got != tc.describe {
			t.Errorf("%q: describe %q, want %q", tc.yaml, got, tc.describe)
		}
	}
}

func TestThrottleDefaultsAndSummary(t *testing.T) {
	c, err := Parse([]byte("tenants: {acme: {}}\nlisten: {plaintext: true}\nauth: {throttle: {max_failures: 3}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if th := c.Auth.Throttle; th.MaxFailures != 3 || th.Window != time.Minute || th.MaxDelay != 2*time.Second {
		t.Fatalf("throttle defaults: %+v", th)
	}
	want := "auth:     login within 10s; after 3 failed logins in 1m0s for a user (or a user at one address), further logins wait their turn, up to 2s apart\n"
	if s := c.Summary(); !strings.Contains(s, want) {
		t.Errorf("summary lacks %q:\n%s", want, s)
	}
	c, err = Parse([]byte("tenants: {acme: {}}\nlisten: {plaintext: true}\nauth: {throttle: {max_failures: 0, max_delay: 0s}}\n"))
	if err != nil {
		t.Fatalf("a disabled throttle needs no delay: %v", err)
	}
	if s := c.Summary(); !strings.Contains(s, "failed logins are not throttled") {
		t.Errorf("summary of a disabled throttle:\n%s", s)
	}
}

func TestProxyProtocolKeys(t *testing.T) {
	c, err := Parse([]byte("listen: {plaintext: true, proxy_protocol: {trusted: [10.0.0.0/8, 192.0.2.7]}}\ntenants: {acme: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Listen.ProxyProtocol; !p.Enabled() || p.HeaderTimeout != 5*time.Second {
		t.Errorf("proxy_protocol: %+v", p)
	}
	if s := c.Summary(); !strings.Contains(s, "client addresses from PROXY protocol headers sent by 10.0.0.0/8, 192.0.2.7") {
		t.Errorf("summary:\n%s", s)
	}
	if Default().Listen.ProxyProtocol.Enabled() {
		t.Error("the PROXY protocol is on by default")
	}
}
