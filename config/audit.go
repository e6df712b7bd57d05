package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pubgate/pubgate/audit"
)

// Audit is the tamper-evident audit log (docs/audit.md).
type Audit struct {
	// Sink is none (the default: security events go to the operational
	// log only), file or stdout (for containers).
	Sink string `yaml:"sink"`
	// Path is the file sink's file, relative to the configuration file;
	// rotated files are kept beside it.
	Path string `yaml:"path"`
	// The chain's HMAC key comes from a file or an environment variable,
	// never from this file (`pubgate audit keygen --out FILE` makes one).
	// KeyFile "auto" is audit.key in pubgate's data directory
	// ($XDG_DATA_HOME/pubgate, else ~/.local/share/pubgate, where the local
	// CA is by default), created (0600) by serve when it does not exist.
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
	// KeyAuto records that KeyFile was "auto" (KeyFile is then the path).
	KeyAuto bool `yaml:"-"`
	// FailClosed refuses new logins, subscriptions and recorded publishes
	// while the audit log cannot be written; false drops and counts the
	// records instead.
	FailClosed bool `yaml:"fail_closed"`
	// Level and Levels (per action) say what allowed actions record; a
	// tenant's own settings take precedence.
	Level   string                 `yaml:"level"`
	Levels  map[string]string      `yaml:"levels"`
	Tenants map[string]*AuditScope `yaml:"tenants"`
	// Rotation of the file sink: by size, by age, and how many rotated
	// files to keep (0: all).
	MaxSize    ByteSize      `yaml:"max_size"`
	MaxAge     time.Duration `yaml:"max_age"`
	MaxBackups int           `yaml:"max_backups"`
	// Records are fsynced in groups: at least every FsyncInterval, and
	// after FsyncRecords records.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	FsyncRecords  int           `yaml:"fsync_records"`
	// SealInterval is how often a seal is written while records arrive.
	SealInterval time.Duration `yaml:"seal_interval"`
	// QueueSize bounds the records waiting for the writer.
	QueueSize int `yaml:"queue_size"`
}

// AuditScope is one tenant's audit levels.
type AuditScope struct {
	Level  string            `yaml:"level"`
	Levels map[string]string `yaml:"levels"`
}

// Enabled reports whether an audit sink is configured.
func (a Audit) Enabled() bool { return a.Sink != "none" }

// AuditLevels resolves the configured levels for the audit package.
func (a Audit) AuditLevels() audit.Levels {
	l := audit.Levels{Global: audit.Scope{Level: a.Level, Actions: a.Levels}, Tenants: map[string]audit.Scope{}}
	for name, t := range a.Tenants {
		if t != nil {
			l.Tenants[name] = audit.Scope{Level: t.Level, Actions: t.Levels}
		}
	}
	return l
}

// defaultAudit is the audit section's defaults; those the audit package
// also applies to its Options are its constants.
func defaultAudit() Audit {
	return Audit{
		Sink: "none", FailClosed: true, MaxSize: 100 << 20, MaxAge: 24 * time.Hour,
		FsyncInterval: audit.DefaultFsyncInterval, FsyncRecords: audit.DefaultFsyncRecords,
		SealInterval: audit.DefaultSealInterval, QueueSize: audit.DefaultQueueSize,
	}
}

// AutoKeyFile is the value of audit.key_file that asks pubgate to create
// and keep the key itself.
const AutoKeyFile = "auto"

func (a *Audit) resolvePaths(dir string) {
	a.Path = relativeTo(dir, a.Path)
	if a.KeyFile == AutoKeyFile {
		a.KeyAuto, a.KeyFile = true, filepath.Join(defaultDataDir(), "audit.key")
		return
	}
	a.KeyFile = relativeTo(dir, a.KeyFile)
}

// KeyWarning is what `check` and `serve` say about a key file that others
// than its owner can read (""; nothing to say).
func (a Audit) KeyWarning() string {
	if !a.Enabled() || a.KeyEnv != "" {
		return ""
	}
	return audit.KeyFileWarning(a.KeyFile)
}

func (c *Config) validateAudit(add addFunc) {
	a := c.Audit
	switch a.Sink {
	case "none", "stdout":
	case "file":
		if a.Path == "" {
			add("audit.path", "the file sink needs a path")
		}
	default:
		add("audit.sink", "must be none, file or stdout, not %q", a.Sink)
	}
	if err := a.AuditLevels().Check("audit"); err != nil {
		key, msg, _ := strings.Cut(err.Error(), ": ") // Check names the key
		add(key, "%s", msg)
	}
	for _, name := range sortedKeys(a.Tenants) {
		if c.Tenants[name] == nil {
			add("audit.tenants."+name, "no such tenant")
		}
	}
	if a.MaxSize <= 0 {
		add("audit.max_size", "must be positive")
	}
	if a.FsyncInterval <= 0 {
		add("audit.fsync_interval", "must be positive")
	}
	if a.FsyncRecords <= 0 {
		add("audit.fsync_records", "must be positive")
	}
	if a.SealInterval <= 0 {
		add("audit.seal_interval", "must be positive")
	}
	if a.QueueSize <= 0 {
		add("audit.queue_size", "must be positive")
	}
	if a.MaxAge < 0 || a.MaxBackups < 0 {
		add("audit", "max_age and max_backups must not be negative (0: no limit)")
	}
	if a.KeyAuto && a.KeyEnv != "" {
		add("audit.key_file", "auto and audit.key_env both name a key: keep one")
	}
}

// checkAuditKey loads the audit key as serve will (CheckFiles): from
// key_file or the environment variable key_env. An auto key that does not
// exist yet is no error: serve creates it.
func (c *Config) checkAuditKey(add addFunc) {
	a := c.Audit
	if !a.Enabled() || (a.KeyAuto && a.KeyEnv != "") || (a.KeyAuto && !fileExists(a.KeyFile)) {
		return
	}
	if _, err := audit.LoadKey(a.KeyFile, a.KeyEnv); err != nil {
		add(auditKeyKey(a), "%v", strings.TrimPrefix(err.Error(), "audit: "))
	}
}

// auditKeyKey names the key setting an error is about.
func auditKeyKey(a Audit) string {
	if a.KeyEnv != "" && a.KeyFile == "" {
		return "audit.key_env"
	}
	return "audit.key_file"
}

func (a Audit) summary() string {
	if !a.Enabled() {
		return "audit:    none (security events go to the operational log)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "audit:    %s", a.Sink)
	if a.Sink == "file" {
		fmt.Fprintf(&b, " %s (rotated at %s or %s)", a.Path, a.MaxSize, a.MaxAge)
	}
	mode := "fail closed"
	if !a.FailClosed {
		mode = "fail open"
	}
	fmt.Fprintf(&b, ", %s; fsync every %s or %d records, seal every %s\n", mode, a.FsyncInterval, a.FsyncRecords, a.SealInterval)
	switch {
	case a.KeyEnv != "":
		fmt.Fprintf(&b, "  key from $%s\n", a.KeyEnv)
	case a.KeyAuto && !fileExists(a.KeyFile):
		fmt.Fprintf(&b, "  key %s (auto: serve creates it)\n", a.KeyFile)
	case a.KeyAuto:
		fmt.Fprintf(&b, "  key %s (auto)\n", a.KeyFile)
	default:
		fmt.Fprintf(&b, "  key %s\n", a.KeyFile)
	}
	if w := a.KeyWarning(); w != "" {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	levels := a.AuditLevels()
	tenants := append([]string{""}, sortedKeys(a.Tenants)...)
	for _, t := range tenants {
		var parts []string
		for _, action := range audit.Actions {
			parts = append(parts, action+"="+levels.For(t, action).String())
		}
		scope := "all tenants"
		if t != "" {
			scope = "tenant " + t
		}
		fmt.Fprintf(&b, "  %-16s %s\n", scope, strings.Join(parts, " "))
	}
	return b.String()
}
