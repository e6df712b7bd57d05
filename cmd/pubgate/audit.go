package main

import (
	"errors"
	"fmt"

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

func newAuditVerifyCommand() *cobra.Command {
	var keyFile, keyEnv string
	cmd := &cobra.Command{
		Use:   "verify --key-file KEY FILE...",
		Short: "Prove that audit files hold one unbroken, sealed chain",
		Long: "verify checks every record's HMAC, that each names the one before, that\n" +
			"sequence numbers follow each other across rotated files (given in any\n" +
			"order), and that the log ends with a seal. It exits 0 when all holds;\n" +
			"otherwise it names the first bad record's file, line and seq, and why.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			key, err := audit.LoadKey(keyFile, keyEnv)
			if err != nil {
				return err
			}
			rep, err := audit.Verify(key, files)
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
			fmt.Fprintf(out, "ok: %d records, seq %d to %d, in %d file(s), sealed\n", rep.Records, rep.FirstSeq, rep.LastSeq, len(rep.Files))
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the chain key")
	cmd.Flags().StringVar(&keyEnv, "key-env", "", "environment variable holding the chain key")
	return cmd
}

func newAuditKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random chain key (keep it out of the configuration)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := audit.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
}
