package main

import (
	"fmt"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
	"github.com/spf13/cobra"
)

// configFlag adds the required --config (-c) flag that serve and check share.
func configFlag(cmd *cobra.Command) *string {
	path := cmd.Flags().StringP("config", "c", "", "configuration file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	return path
}

func newCheckCommand() *cobra.Command {
	var path *string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a configuration file and print what it sets up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*path)
			if err != nil {
				return err
			}
			revision, err := gateway.Check(cmd.Context(), cfg) // what serve would refuse, short of listening
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), cfg.Summary())
			for _, w := range cfg.Warnings() {
				fmt.Fprintf(cmd.OutOrStdout(), "warning: %s\n", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy revision %s compiles\n", revision)
			fmt.Fprintf(cmd.OutOrStdout(), "configuration %s is valid\n", *path)
			return nil
		},
	}
	path = configFlag(cmd)
	return cmd
}
