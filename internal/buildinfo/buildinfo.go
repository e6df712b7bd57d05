// Package buildinfo tells which pubgate this is, from what the Go
// toolchain stamped into the binary.
package buildinfo

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// Version is the version to report: stamped if the build set one (with
// -ldflags "-X main.version=…"), else the most telling one the build
// information gives (versionOf).
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	info, _ := debug.ReadBuildInfo()
	exe, _ := os.Executable()
	return versionOf(info, exe)
}

// versionOf is the most telling version the build information gives: the
// module version of `go install …@v1.2.3`, the VCS pseudo-version that
// `go build` stamps in a checkout (with "+dirty" for uncommitted changes),
// a revision alone, or, when nothing was stamped, "dev" and why: `go run`
// does not stamp VCS information unless given -buildvcs=true, and neither
// does a build outside a checkout or with -buildvcs=false.
func versionOf(info *debug.BuildInfo, exe string) string {
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision != "" {
		v := "dev-" + revision[:min(12, len(revision))]
		if modified {
			v += "+dirty"
		}
		return v
	}
	if builtByGoRun(exe) {
		return "dev (go run, no VCS stamp)"
	}
	return "dev (no VCS stamp)"
}

// builtByGoRun reports whether exe is where `go run` puts the binary it
// builds: a go-build…/b001/exe/ directory under GOTMPDIR or, since Go
// 1.24 caches those binaries, a "<hash>-d" directory in the build cache.
func builtByGoRun(exe string) bool {
	dir := filepath.ToSlash(filepath.Dir(exe))
	if strings.Contains(dir, "/go-build") && strings.HasSuffix(dir, "/exe") {
		return true
	}
	hash, ok := strings.CutSuffix(filepath.Base(dir), "-d")
	return ok && len(hash) == 64 && strings.Trim(hash, "0123456789abcdef") == ""
}
