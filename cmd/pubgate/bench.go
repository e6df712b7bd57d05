package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pubgate/pubgate/bench"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/spf13/cobra"
)

func newBenchCommand() *cobra.Command {
	var o bench.Options
	var tlsFlags ptls.ClientOptions // the same client settings as pubgate's towards Redis
	var insecure bool
	var user, pass, prefix string
	var tenants []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a RESP pub/sub server (pubgate or Redis): rates, latency, and a check of every message",
		Long: `bench subscribes its subscribers, then publishes for --duration, closed loop
(--pipeline publishes per round trip) or at a fixed total --rate (latency is
then measured from each message's intended send time). Every message carries
its publisher, channel and sequence number: lost, duplicated and out-of-order
deliveries are counted, not just rates. It works against any RESP server:
point it at pubgate, or at Redis to compare.`,
		Example: `  pubgate bench --addr 127.0.0.1:6380 --tls --cacert ca.crt --user alice --pass alice-secret \
    --publishers 4 --pipeline 16 --channels 16 --subscribers 1 --duration 10s
  pubgate bench --addr 127.0.0.1:6379 --prefix acme: --rate 10000 --subscribers 10 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			tlsFlags.Enable = tlsFlags.Enable || insecure
			if o.TLS, err = ptls.ClientConfig(tlsFlags); err != nil {
				return fmt.Errorf("--cacert/--cert/--key: %w", err)
			}
			if insecure {
				o.TLS.InsecureSkipVerify = true //nolint:gosec // asked for with --insecure
			}
			if o.Tenants, err = benchTenants(user, pass, prefix, tenants); err != nil {
				return err
			}
			o.Progress = cmd.ErrOrStderr()
			r, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				r.WriteTable(cmd.OutOrStdout())
			}
			if r.Errors != "" {
				return errors.New("bench: connections broke during the run")
			}
			return nil
		},
	}
	cmd.AddCommand(newBenchCompareCommand())
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", "127.0.0.1:6380", "server address, host:port")
	f.BoolVar(&tlsFlags.Enable, "tls", false, "connect over TLS")
	f.StringVar(&tlsFlags.CAFile, "cacert", "", "CA certificate (PEM) to verify the server with (default: system roots); implies --tls")
	f.StringVar(&tlsFlags.CertFile, "cert", "", "client certificate (PEM), for mutual TLS; implies --tls")
	f.StringVar(&tlsFlags.KeyFile, "key", "", "client certificate's key (PEM)")
	f.StringVar(&tlsFlags.ServerName, "sni", "", "server name to verify (default: the address's host)")
	f.BoolVar(&insecure, "insecure", false, "do not verify the server's certificate")
	f.StringVar(&user, "user", "", "AUTH user name")
	f.StringVar(&pass, "pass", "", "AUTH password")
	f.StringVar(&prefix, "prefix", "", "prefix of every channel name (e.g. acme: against a plain Redis)")
	f.StringArrayVar(&tenants, "tenant", nil, "USER:PASS[:PREFIX], repeatable: connections take the tenants in turn (instead of --user/--pass/--prefix)")
	f.IntVar(&o.Channels, "channels", 1, "channels per tenant")
	f.IntVar(&o.SubChannels, "sub-channels", 0, "channels each subscriber holds (0: all)")
	f.BoolVar(&o.Patterns, "patterns", false, "subscribe with PSUBSCRIBE, one pattern per channel")
	f.IntVar(&o.Publishers, "publishers", 1, "publishing connections")
	f.IntVar(&o.Subscribers, "subscribers", 1, "subscribing connections")
	f.IntVar(&o.PayloadSize, "payload", 64, fmt.Sprintf("payload size in bytes (at least %d)", bench.HeaderSize))
	f.IntVar(&o.Pipeline, "pipeline", 1, "publishes in flight per publisher")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish")
	f.IntVar(&o.Rate, "rate", 0, "total publishes per second (0: as fast as the server answers)")
	f.DurationVar(&o.Drain, "drain", 5*time.Second, "how long to wait for messages in flight after publishing")
	f.IntVar(&o.DialConcurrency, "dial-concurrency", 64, "connections set up at once")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// benchTenants turns --tenant USER:PASS[:PREFIX] (or the single-tenant
// flags) into tenants.
func benchTenants(user, pass, prefix string, specs []string) ([]bench.Tenant, error) {
	if len(specs) == 0 {
		return []bench.Tenant{{User: user, Password: pass, Prefix: prefix}}, nil
	}
	if user != "" || pass != "" || prefix != "" {
		return nil, errors.New("--tenant replaces --user, --pass and --prefix: use one or the other")
	}
	out := make([]bench.Tenant, len(specs))
	for i, s := range specs {
		parts := strings.SplitN(s, ":", 3)
		if len(parts) < 2 {
			return nil, fmt.Errorf("--tenant %q: want USER:PASS[:PREFIX]", s)
		}
		out[i] = bench.Tenant{User: parts[0], Password: parts[1]}
		if len(parts) == 3 {
			out[i].Prefix = parts[2]
		}
	}
	return out, nil
}
