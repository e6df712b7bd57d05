// Command pubgate is a secure multi-tenant pub/sub proxy that speaks the
// Redis protocol. Run `pubgate --help` for its subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's build information.
var version = ""

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one pubgate command line and returns its exit status; serve
// stops when ctx is done (or on SIGINT/SIGTERM).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return exitStatus(err, stderr) // 1, or a command's own (audit verify --live)
	}
	return 0
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "pubgate",
		Short: "A secure multi-tenant pub/sub proxy for Redis clients",
		Long: "pubgate lets unchanged Redis clients publish and subscribe through an\n" +
			"authenticating, tenant-isolating proxy in front of Redis or its embedded engine.",
		SilenceUsage:  true, // a failing command prints its error, not the usage
		SilenceErrors: true, // run prints it, once
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newCheckCommand(), newPolicyCommand(), newPasswdCommand(), newAuditCommand(), newBenchCommand(), newVersionCommand())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (run '%s --help' for usage)", err, c.CommandPath())
	})
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pubgate's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "pubgate %s\n", buildVersion())
			return nil
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
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
