// Package config is pubgate's configuration: the YAML schema, its defaults
// (filled in one place, Default), strict decoding (unknown keys are errors
// that name the key) and Validate, whose errors name the offending key.
package config

import (
	"strings"
	"time"
)

// Config is the whole pubgate configuration file.
type Config struct {
	Listen   Listen             `yaml:"listen"`
	Upstream Upstream           `yaml:"upstream"`
	Tenants  map[string]*Tenant `yaml:"tenants"`
	Users    map[string]*User   `yaml:"users"`
	Auth     Auth               `yaml:"auth"`
	Limits   Limits             `yaml:"limits"`
	Log      Log                `yaml:"log"`
}

// Listen is the client-facing listener.
type Listen struct {
	Address string `yaml:"address"`
	// ShutdownTimeout bounds how long a graceful stop waits for sessions to
	// flush what they were already sent before closing them.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Upstream is the fan-out engine.
type Upstream struct {
	// URL is memory:// (embedded engine), redis://[user:pass@]host:port/[db]
	// or rediss://… for Redis over TLS.
	URL      string        `yaml:"url"`
	Timeout  time.Duration `yaml:"timeout"`
	PoolSize int           `yaml:"pool_size"`
}

// IsMemory reports whether the URL selects the embedded engine.
func (u Upstream) IsMemory() bool { return strings.HasPrefix(u.URL, "memory:") }

// Tenant is an isolated channel namespace.
type Tenant struct {
	// Prefix is prepended to every channel and pattern of the tenant
	// upstream. Default: the tenant name followed by ':'.
	Prefix string `yaml:"prefix"`
}

// User is a password identity bound to one tenant.
type User struct {
	Tenant       string   `yaml:"tenant"`
	PasswordHash string   `yaml:"password_hash"` // bcrypt, from `pubgate passwd`
	Roles        []string `yaml:"roles"`
}

// Auth holds settings of client authentication.
type Auth struct {
	// DefaultUser, when set, binds connections that have not sent AUTH to
	// this user, like Redis's nopass default user. Off unless set.
	DefaultUser string `yaml:"default_user"`
	// LoginTimeout closes connections that have not authenticated in time,
	// so idle connections cannot hold max_clients slots.
	LoginTimeout time.Duration `yaml:"login_timeout"`
	Throttle     Throttle      `yaml:"throttle"`
}

// Throttle locks out a client address after MaxFailures failed logins within
// Window, for Lockout. MaxFailures 0 disables it.
type Throttle struct {
	MaxFailures int           `yaml:"max_failures"`
	Window      time.Duration `yaml:"window"`
	Lockout     time.Duration `yaml:"lockout"`
}

// Limits protect pubgate and other clients from one client.
type Limits struct {
	MaxClients                int          `yaml:"max_clients"`
	MaxSubscriptionsPerClient int          `yaml:"max_subscriptions_per_client"`
	MaxPayloadBytes           ByteSize     `yaml:"max_payload_bytes"`
	MaxChannelBytes           ByteSize     `yaml:"max_channel_bytes"` // channel and pattern names
	ClientOutputBuffer        OutputBuffer `yaml:"client_output_buffer"`
}

// OutputBuffer is Redis's client-output-buffer-limit for pub/sub clients: a
// client whose unsent output exceeds HardLimit, or stays above SoftLimit for
// SoftSeconds, is disconnected.
type OutputBuffer struct {
	HardLimit   ByteSize `yaml:"hard_limit"`
	SoftLimit   ByteSize `yaml:"soft_limit"`
	SoftSeconds int      `yaml:"soft_seconds"`
}

// Log is the operational log (not the audit log).
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // console | json
}

// Default returns the configuration used for every key a file leaves out.
func Default() *Config {
	return &Config{
		Listen:   Listen{Address: "127.0.0.1:6380", ShutdownTimeout: 10 * time.Second},
		Upstream: Upstream{URL: "memory://", Timeout: 5 * time.Second},
		Auth: Auth{
			LoginTimeout: 10 * time.Second,
			Throttle:     Throttle{MaxFailures: 5, Window: time.Minute, Lockout: time.Minute},
		},
		Limits: Limits{
			MaxClients:                10000,
			MaxSubscriptionsPerClient: 10000,
			MaxPayloadBytes:           1 << 20,
			MaxChannelBytes:           4 << 10,
			ClientOutputBuffer:        OutputBuffer{HardLimit: 32 << 20, SoftLimit: 8 << 20, SoftSeconds: 60},
		},
		Log: Log{Level: "info", Format: "console"},
	}
}

// fillDerivedDefaults sets defaults that depend on other keys.
func (c *Config) fillDerivedDefaults() {
	for name, t := range c.Tenants {
		if t == nil {
			t = &Tenant{}
			c.Tenants[name] = t
		}
		if t.Prefix == "" {
			t.Prefix = name + ":"
		}
	}
	for name, u := range c.Users {
		if u == nil {
			c.Users[name] = &User{}
		}
	}
}
