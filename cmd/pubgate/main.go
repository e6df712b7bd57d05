// Command pubgate is a secure multi-tenant pub/sub proxy that speaks the
// Redis protocol. Run `pubgate --help` for its subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pubgate/pubgate/internal/buildinfo"
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

// buildVersion is pubgate's version: the one -ldflags set, else what the
// build information tells (internal/buildinfo).
func buildVersion() string { return buildinfo.Version(version) }
