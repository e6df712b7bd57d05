package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/pubgate/pubgate/audit"
	"github.com/spf13/cobra"
)

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, query and key the audit log",
	}
	cmd.AddCommand(newAuditVerifyCommand(), newAuditQueryCommand(), newAuditKeygenCommand())
	return cmd
}

// exitLiveTail is verify --live's exit status for a log that verifies up to
// an unsealed tail (1 is a log that does not verify).
const exitLiveTail = 3

// exitError ends a command with a status other than 1; its message, if
// any, is printed like any error's.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitStatus prints a command's error and returns the process's exit status.
func exitStatus(err error, stderr io.Writer) int {
	var e *exitError
	if errors.As(err, &e) {
		if e.msg != "" {
			fmt.Fprintf(stderr, "pubgate: %s\n", e.msg)
		}
		return e.code
	}
	fmt.Fprintf(stderr, "pubgate: %v\n", err)
	return 1
}

func newAuditVerifyCommand() *cobra.Command {
	var keyFile, keyEnv string
	var live bool
	cmd := &cobra.Command{
		Use:   "verify --key-file KEY [--live] FILE...",
		Short: "Prove that audit files hold one unbroken, sealed chain",
		Long: "verify checks every record's HMAC, that each names the one before, that\n" +
			"sequence numbers follow each other across rotated files (given in any\n" +
			"order), and that the log ends with a seal. It exits 0 when all holds;\n" +
			"otherwise it names the first bad record's file, line and seq, and why,\n" +
			"and exits 1.\n\n" +
			"--live verifies a log that pubgate is still writing: every complete record\n" +
			"is checked, and records after the last seal (pubgate seals every\n" +
			"audit.seal_interval and at shutdown) are reported rather than refused.\n" +
			"It exits 0 if the log ends with a seal, 3 if it verifies up to an unsealed\n" +
			"tail, 1 if it does not verify. It cannot tell a live writer from a log cut\n" +
			"at its end: verify without --live once pubgate has stopped.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			key, err := audit.LoadKey(keyFile, keyEnv)
			if err != nil {
				return err
			}
			if w := audit.KeyFileWarning(keyFile); w != "" && keyEnv == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "pubgate: warning: %s\n", w)
			}
			check := audit.Verify
			if live {
				check = audit.VerifyLive
			}
			rep, err := check(key, files)
			var p *audit.Problem
			if errors.As(err, &p) {
				return fmt.Errorf("audit log NOT verified: %w", err)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, w := range rep.Warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			if rep.Unsealed == 0 && !rep.Partial {
				fmt.Fprintf(out, "ok: %d records, seq %d to %d, in %d file(s), sealed\n", rep.Records, rep.FirstSeq, rep.LastSeq, len(rep.Files))
				return nil
			}
			fmt.Fprintf(out, "verified through seq %d (%d records, from seq %d, in %d file(s)); unsealed tail of %d record(s)",
				rep.LastSeq, rep.Records, rep.FirstSeq, len(rep.Files), rep.Unsealed)
			if rep.Partial {
				fmt.Fprint(out, " and an incomplete last line")
			}
			fmt.Fprintln(out, ": the writer is live, or the log was cut after its last seal (verify without --live once pubgate has stopped)")
			return &exitError{code: exitLiveTail}
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the chain key")
	cmd.Flags().StringVar(&keyEnv, "key-env", "", "environment variable holding the chain key")
	cmd.Flags().BoolVar(&live, "live", false, "accept an unsealed tail (a log still being written): exit 3 instead of 1")
	return cmd
}

func newAuditKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen [--out FILE]",
		Short: "Make a new random chain key (keep it out of the configuration)",
		Long: "keygen prints a new key (32 random bytes, hex), or with --out writes it to\n" +
			"a new file readable by its owner only (0600); it never replaces a file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out != "" {
				if err := audit.WriteKeyFile(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote a new audit key to %s (mode 0600)\n", out)
				return nil
			}
			key, err := audit.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the key to this new file (mode 0600) instead of printing it")
	return cmd
}
