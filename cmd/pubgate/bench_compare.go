package main

import (
	"os"
	"time"

	"github.com/pubgate/pubgate/bench/compare"
	"github.com/spf13/cobra"
)

// newBenchCompareCommand is `pubgate bench compare`: its flags, and
// package compare's harness, whose pubgate arm is this binary unless
// --pubgate names another.
func newBenchCompareCommand() *cobra.Command {
	o := compare.Options{}
	var smoke bool
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Compare pubgate (TLS, passwords, the example policy, audit) with Redis alone and with Redis TLS + ACL, on loopback",
		Long: `compare starts, on loopback ports:
  redis       redis-server, plaintext, no authentication;
  redis-tls   redis-server with TLS and one ACL user per tenant, limited to
              its channels (&acme:*);
  pubgate     this pubgate with TLS, password logins, the example policy
              and the audit log at level metadata, in front of "redis";
then runs each workload against each arm, alternating the arms' order, and
prints the median of each figure and the ratio pubgate / redis-tls. The
rate workloads also show the server process's CPU time per message (user +
system, from /proc/<pid>/stat, between the first publish and the last
delivery). It needs redis-server on PATH and runs from the repository (the example
policy). The raw results (JSON) are kept in --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if smoke {
				o = o.AsSmoke()
			}
			if o.Pubgate == "" {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				o.Pubgate = self
			}
			return compare.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Repeat, "repeat", 3, "runs of each workload on each arm")
	f.DurationVar(&o.Duration, "duration", 4*time.Second, "publishing time of each run")
	f.IntVar(&o.Idle, "idle-connections", 10000, "W4's idle subscribers")
	f.StringSliceVar(&o.Workloads, "workloads", compare.WorkloadNames(), "workloads to run")
	f.StringVar(&o.PolicyDir, "policy", "examples/policies", "the policy pubgate runs")
	f.StringVar(&o.Out, "out", "", "directory for the arms' files and raw results (default: a temporary one, removed)")
	f.IntVar(&o.BcryptCost, "bcrypt-cost", 4, "cost of the users' password hashes (W4 logs in every connection)")
	f.StringVar(&o.RedisServer, "redis-server", "redis-server", "the redis-server binary")
	f.StringVar(&o.Pubgate, "pubgate", "", "the pubgate binary of the pubgate arm, e.g. an older build to compare with (default: this one)")
	f.IntVar(&o.FreshChannels, "fresh-channels", compare.DefaultFreshChannels, "W6's channel names, new on every run (a multiple of 4)")
	f.IntVar(&o.StormClients, "storm-clients", compare.DefaultStormClients, "W7's clients connecting at once")
	f.IntVar(&o.StormBcryptCost, "storm-bcrypt-cost", compare.DefaultStormBcryptCost, "cost of the password hash of W7's user on pubgate")
	f.DurationVar(&o.StormTimeout, "storm-timeout", compare.DefaultStormTimeout, "how long each W7 client may take to connect, log in and subscribe")
	f.IntVar(&o.NoisePatterns, "noise-patterns", compare.DefaultNoisePatterns, "W8's neighbour's pattern subscriptions")
	f.BoolVar(&smoke, "smoke", false, "one short run of each workload, W4 with 200 connections and its memory not measured, W7 with at most 100 clients, W8 with at most 1,000 patterns (CI)")
	f.BoolVar(&o.Scaling, "scaling", false, "instead of W0-W8: delivery rate by subscribers, publish rate by channels, memory by connections, reconnect storms by clients, a neighbour's cost by patterns")
	return cmd
}
