package config

import (
	"fmt"
	"net"
	"strings"
)

// Admin is the operator's HTTP listener: Prometheus metrics, liveness and
// readiness, and optionally Go's profiler. Its endpoints are
// unauthenticated, so it is off by default and kept off public interfaces
// unless AllowPublic says otherwise.
type Admin struct {
	// Address is host:port to serve on; "" (the default) disables it.
	Address string `yaml:"address"`
	// AllowPublic must be set to serve on an address that is not a
	// loopback one (including ":9090" and 0.0.0.0, which are every
	// interface).
	AllowPublic bool `yaml:"allow_public"`
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool `yaml:"pprof"`
}

// Enabled reports whether the admin listener is on.
func (a Admin) Enabled() bool { return a.Address != "" }

func defaultAdmin() Admin { return Admin{} }

// Loopback reports whether the address's host is a loopback address (or
// the name localhost); an empty host means every interface.
func (a Admin) Loopback() bool {
	host, _, err := net.SplitHostPort(a.Address)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateAdmin(add addFunc) {
	a := c.Admin
	if !a.Enabled() {
		if a.Pprof {
			add("admin.pprof", "needs admin.address: the admin listener is off")
		}
		return
	}
	if _, _, err := net.SplitHostPort(a.Address); err != nil {
		add("admin.address", "must be host:port: %v", err)
		return
	}
	if !a.Loopback() && !a.AllowPublic {
		add("admin.address", "%q is not a loopback address, and the admin endpoints are unauthenticated "+
			"(anyone who reaches them reads metrics%s); serve them on 127.0.0.1, or set admin.allow_public: true",
			a.Address, map[bool]string{true: " and profiles", false: ""}[a.Pprof])
	}
	if _, port, _ := net.SplitHostPort(a.Address); a.Address == c.Listen.Address && port != "0" {
		add("admin.address", "%q is listen.address too", a.Address)
	}
}

func (a Admin) summary() string {
	if !a.Enabled() {
		return "admin:    off\n"
	}
	endpoints := "/metrics, /healthz, /readyz"
	if a.Pprof {
		endpoints += ", /debug/pprof/"
	}
	s := fmt.Sprintf("admin:    http://%s (%s), unauthenticated\n", a.Address, endpoints)
	if !a.Loopback() {
		s += "WARNING: the admin endpoints are served beyond loopback (admin.allow_public: true)\n"
	}
	return s
}
