package config

import (
	"strings"
	"testing"
)

func TestAdminDefaultsOff(t *testing.T) {
	c, err := Parse([]byte("listen: {plaintext: true}\ntenants: {acme: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Enabled() || c.Admin.Pprof || c.Admin.AllowPublic {
		t.Fatalf("admin on by default: %+v", c.Admin)
	}
	if s := c.Summary(); !strings.Contains(s, "admin:    off") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestAdminAddresses(t *testing.T) {
	base := "listen: {plaintext: true}\ntenants: {acme: {}}\n"
	for _, tc := range []struct {
		admin string
		want  string // "" = valid
	}{
		{"{address: '127.0.0.1:9090'}", ""},
		{"{address: 'localhost:9090', pprof: true}", ""},
		{"{address: '[::1]:9090'}", ""},
		{"{address: '127.0.0.2:0'}", ""},
		{"{address: ':9090', allow_public: true}", ""},
		{"{address: '0.0.0.0:9090', allow_public: true, pprof: true}", ""},
		{"{address: ':9090'}", `admin.address: ":9090" is not a loopback address, and the admin endpoints are unauthenticated`},
		{"{address: '0.0.0.0:9090'}", "set admin.allow_public: true"},
		{"{address: '[::]:9090'}", "is not a loopback address"},
		{"{address: '10.0.0.5:9090', pprof: true}", "reads metrics and profiles"},
		{"{address: 'metrics.example.com:9090'}", "is not a loopback address"},
		{"{address: '9090'}", "admin.address: must be host:port"},
		{"{address: '127.0.0.1:6380'}", `admin.address: "127.0.0.1:6380" is listen.address too`},
		{"{pprof: true}", "admin.pprof: needs admin.address"},
		{"{address: '127.0.0.1:0'}", ""}, // a free port each, even if listen.address asks for one too
		{"{adress: '127.0.0.1:9090'}", "admin.adress: unknown key"},
	} {
		t.Run(tc.admin, func(t *testing.T) {
			_, err := Parse([]byte(base + "admin: " + tc.admin + "\n"))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAdminSummary(t *testing.T) {
	c, err := Parse([]byte("listen: {plaintext: true}\ntenants: {acme: {}}\nadmin: {address: ':9090', allow_public: true, pprof: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Summary()
	for _, want := range []string{"admin:    http://:9090 (/metrics, /healthz, /readyz, /debug/pprof/), unauthenticated",
		"WARNING: the admin endpoints are served beyond loopback"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
