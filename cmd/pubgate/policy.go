package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
	"github.com/pubgate/pubgate/policy"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test and try Rego authorization policies",
	}
	cmd.AddCommand(newPolicyTestCommand(), newPolicyEvalCommand())
	return cmd
}

func newPolicyTestCommand() *cobra.Command {
	var run string
	var verbose bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test PATH...",
		Short: "Run the Rego unit tests (rules named test_*) under the paths, like opa test",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			passed, err := policy.Test(cmd.Context(), policy.TestOptions{
				Paths: paths, Run: run, Verbose: verbose, Output: cmd.OutOrStdout(), Timeout: timeout,
			})
			if err != nil {
				return err
			}
			if !passed {
				return errors.New("policy tests failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&run, "run", "r", "", "run only tests matching this regular expression")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every test, not only failures")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "time limit of each test")
	return cmd
}

func newPolicyEvalCommand() *cobra.Command {
	var path *string
	var input string
	var explain bool
	cmd := &cobra.Command{
		Use:   "eval --config FILE --input JSON|@FILE|-",
		Short: "Decide one policy input document with the configured policy and show which rules decided",
		Example: `  pubgate policy eval -c pubgate.yaml --input '{"action": "publish", "tenant": "acme", "user": "alice",
    "roles": ["publisher"], "channel": "orders", "upstream_channel": "acme:orders", "pattern": false}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*path)
			if err != nil {
				return err
			}
			doc, err := readInput(input, cmd.InOrStdin())
			if err != nil {
				return err
			}
			a, err := gateway.NewAuthorizer(cmd.Context(), cfg, zap.NewNop())
			if err != nil {
				return err
			}
			x, err := a.Explain(cmd.Context(), doc, explain)
			if err != nil {
				return fmt.Errorf("policy: evaluation failed (pubgate would deny): %w", err)
			}
			x.Print(cmd.OutOrStdout())
			return nil
		},
	}
	path = configFlag(cmd)
	cmd.Flags().StringVarP(&input, "input", "i", "", "the input document: JSON, @file, or - for standard input")
	_ = cmd.MarkFlagRequired("input")
	cmd.Flags().BoolVar(&explain, "explain", false, "also print OPA's full evaluation trace")
	return cmd
}

// readInput parses --input: inline JSON, @file or - (standard input).
func readInput(arg string, stdin io.Reader) (map[string]any, error) {
	var data []byte
	var err error
	switch {
	case arg == "-":
		data, err = io.ReadAll(stdin)
	case strings.HasPrefix(arg, "@"):
		data, err = os.ReadFile(arg[1:])
	default:
		data = []byte(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("--input: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("--input: not a JSON object: %w", err)
	}
	return doc, nil
}
