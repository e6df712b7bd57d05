package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestVersionOf: the version says as much as the build information holds,
// and why it is "dev" when it holds nothing.
func TestVersionOf(t *testing.T) {
	rev := "5ec6d170523125fc074471eade0169956e4b1e72"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	cache := "/root/.cache/go-build/9c/9cc9606c939ed47177edb1fed3c1eb74af05d5646acabeb667052b4197d5cdd0-d/pubgate"
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		exe  string
		want string
	}{
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "/root/go/bin/pubgate", "v1.2.3"},
		{"go build in a dirty checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207042523-5ec6d1705231+dirty"}, Settings: vcs("true")},
			"/src/pubgate", "v0.0.0-20261207042523-5ec6d1705231+dirty"},
		{"revision without a module version", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")}, "/src/pubgate", "dev-5ec6d1705231+dirty"},
		{"clean revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "/src/pubgate", "dev-5ec6d1705231"},
		{"go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "/tmp/go-build3270665199/b001/exe/pubgate", "dev (go run, no VCS stamp)"},
		{"go run, cached binary", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, cache, "dev (go run, no VCS stamp)"},
		{"go build -buildvcs=false", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "/src/pubgate", "dev (no VCS stamp)"},
		{"no build information", nil, "/src/pubgate", "dev"},
	} {
		if got := versionOf(c.info, c.exe); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
