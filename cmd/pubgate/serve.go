package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/gateway"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newServeCommand() *cobra.Command {
	var path *string
	var portsFile string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*path)
			if err != nil {
				return err
			}
			stop := make(chan os.Signal, 2)
			signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(stop)
			reload := make(chan os.Signal, 1)
			signal.Notify(reload, syscall.SIGHUP)
			defer signal.Stop(reload)
			return serve(cmd.Context(), cfg, serveOptions{
				path: *path, portsFile: portsFile, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), stop: stop, reload: reload,
			})
		},
	}
	path = configFlag(cmd)
	cmd.Flags().StringVar(&portsFile, "ports-file", "",
		`once listening, write the addresses pubgate got to this file as JSON ({"client":"127.0.0.1:6380","admin":…}), for port 0 and for tools; removed at shutdown`)
	return cmd
}

// serveOptions are what serve needs besides the configuration: the file it
// was loaded from (a reload reads it again), where to write the addresses
// it listens on, where the audit stream and the log go, and what the
// operator tells the running node: stop (SIGINT, SIGTERM; a second one
// ends the drain period early) and reload (SIGHUP). A nil channel never
// delivers. started, if set, is given the node once it listens.
type serveOptions struct {
	path, portsFile string
	stdout, stderr  io.Writer
	stop, reload    <-chan os.Signal
	started         func(*gateway.Gateway)
}

// serve runs a node with cfg until ctx is done or a stop signal arrives,
// then drains and shuts down gracefully.
func serve(ctx context.Context, cfg *config.Config, o serveOptions) error {
	g, err := gateway.New(ctx, cfg, gateway.Options{Version: buildVersion(), LogOutput: o.stderr, AuditStream: o.stdout})
	if err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return err
	}
	if o.portsFile != "" {
		if err := writePortsFile(o.portsFile, g); err != nil {
			_ = shutdown(g, cfg)
			return err
		}
		defer func() { _ = os.Remove(o.portsFile) }() // a stale file would name ports no longer ours
	}
	if o.started != nil {
		o.started(g)
	}
	log := g.Logger()
	for running := true; running; {
		select {
		case err := <-g.Failed():
			_ = shutdown(g, cfg)
			return err
		case <-o.reload:
			log.Info("SIGHUP: reloading the configuration")
			_ = g.ReloadFile(ctx, o.path) // logged and audited; the configuration in effect stays
		case <-o.stop:
			running = false
		case <-ctx.Done():
			running = false
		}
	}
	drain(g, o.stop, log)
	return shutdown(g, cfg)
}

// shutdown shuts the node down within listen.shutdown_timeout: an
// upstream that stopped answering cannot hold the process.
func shutdown(g *gateway.Gateway, cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Listen.ShutdownTimeout)
	defer cancel()
	return g.Shutdown(ctx)
}

// drain drains the node until the drain period ends, its clients have
// left, or another stop signal arrives.
func drain(g *gateway.Gateway, stop <-chan os.Signal, log *zap.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			log.Info("second stop signal: ending the drain period now")
			cancel()
		case <-ctx.Done():
		}
	}()
	g.Drain(ctx)
}

// listening is the content of --ports-file.
type listening struct {
	Client string `json:"client"`
	Admin  string `json:"admin,omitempty"`
}

// writePortsFile writes the node's addresses to path, whole: a reader
// polling for the file never sees half of it.
func writePortsFile(path string, g *gateway.Gateway) error {
	l := listening{Client: g.Addr().String()}
	if a := g.AdminAddr(); a != nil {
		l.Admin = a.String()
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--ports-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--ports-file: %w", err)
	}
	return nil
}
