package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pubgate/pubgate/auth"
	"github.com/pubgate/pubgate/config"
	"github.com/pubgate/pubgate/policy"
	"github.com/pubgate/pubgate/proxy"
	ptls "github.com/pubgate/pubgate/tls"
	"github.com/pubgate/pubgate/upstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newServeCommand() *cobra.Command {
	var path *string
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
			return serve(cmd.Context(), *path, cfg, cmd, signals{stop: stop, reload: reload})
		},
	}
	path = configFlag(cmd)
	return cmd
}

// signals are what the operator tells a running pubgate: stop (SIGINT,
// SIGTERM; a second one ends the drain period early) and reload (SIGHUP).
// A nil channel never delivers.
type signals struct {
	stop, reload <-chan os.Signal
}

// serve runs pubgate with cfg, loaded from path, until ctx is done or a
// stop signal arrives, then drains and shuts down gracefully. A reload
// signal applies path anew (reload.go).
func serve(ctx context.Context, path string, cfg *config.Config, cmd *cobra.Command, sig signals) error {
	log, logLevel, err := newLogger(cfg.Log, cmd)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	stopAdmin := func() {}
	defer func() { stopAdmin() }() // last: readiness says "draining" until the end
	setRedisLogger.Do(func() { redis.SetLogger(newRedisLogger(log.Named("go-redis"), redisLogRepeat)) })

	broker, err := openBroker(cfg.Upstream, log.Named("upstream"))
	if err != nil {
		return err
	}
	defer func() { _ = broker.Close() }() // it reports nothing a stopping node could act on
	auditor, closeAudit, err := openAudit(cfg.Audit, cmd.OutOrStdout(), log)
	if err != nil {
		return err
	}
	defer closeAudit(cfg.Listen.ShutdownTimeout)
	authz, err := newAuthorizer(ctx, cfg, log.Named("policy"))
	if err != nil {
		return err
	}
	passwords, err := auth.NewPasswordsWith(passwordUsers(cfg), passwordOptions(cfg))
	if err != nil {
		return err
	}
	srv, err := newProxy(ctx, cfg, passwords, broker, authz, auditor, log)
	if err != nil {
		return err
	}
	authz.OnReload(func(r policy.ReloadResult) {
		recordReload(auditor, r)
		if r.Changed() {
			srv.Recheck()
		}
	})
	if cfg.Policy.Watch && cfg.Policy.Configured() {
		if err := authz.Watch(ctx); err != nil {
			return fmt.Errorf("policy: watch: %w", err)
		}
	}
	ln, certs, err := listen(cfg.Listen, log)
	if err != nil {
		return err
	}
	reloads := &reloader{path: path, running: cfg, passwords: passwords, srv: srv, authz: authz, tls: certs,
		logLevel: logLevel, auditor: auditor, log: log}
	log.Info("pubgate listening", zap.String("version", buildVersion()), zap.Stringer("addr", ln.Addr()),
		zap.Bool("tls", !cfg.Listen.Plaintext),
		zap.String("upstream", cfg.Upstream.Describe()), zap.Int("tenants", len(cfg.Tenants)))
	if cfg.Auth.DefaultUser != "" {
		log.Warn("connections without AUTH act as a configured user", zap.String("auth.default_user", cfg.Auth.DefaultUser))
	}
	if stopAdmin, err = startAdmin(cfg.Admin, cfg.Audit.FailClosed, srv, passwords, broker, authz, auditor, log); err != nil {
		_ = ln.Close()
		return err
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	outageCtx, stopOutageWatch := context.WithCancel(ctx)
	defer stopOutageWatch()
	go disconnectOnOutage(outageCtx, broker.Health, cfg.Upstream.DisconnectClientsAfter, srv, log.Named("upstream"))
	for running := true; running; {
		select {
		case err := <-served:
			return err
		case <-sig.reload:
			log.Info("SIGHUP: reloading the configuration", zap.String("file", path))
			reloads.reload(ctx)
		case <-sig.stop:
			running = false
		case <-ctx.Done():
			running = false
		}
	}
	drain(srv, cfg.Listen.DrainPeriod, sig.stop, log)
	log.Info("shutting down: closing every connection once it received what was acknowledged",
		zap.Duration("listen.shutdown_timeout", cfg.Listen.ShutdownTimeout), zap.Int("clients", srv.Clients()))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Listen.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("stopped")
	return nil
}

// drain refuses new clients and serves the connected ones for the drain
// period, or until they have all left, or until another stop signal.
func drain(srv *proxy.Server, period time.Duration, stop <-chan os.Signal, log *zap.Logger) {
	log.Info("draining: new clients are refused, connected ones are served until they leave or the period ends",
		zap.Duration("listen.drain_period", period), zap.Int("clients", srv.Clients()))
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
	srv.Drain(ctx, period)
}

// listen opens the client listener: TLS, with the certificate source it
// serves, unless plaintext was asked for.
func listen(l config.Listen, log *zap.Logger) (net.Listener, *ptls.Source, error) {
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	if l.ProxyProtocol.Enabled() {
		if ln, err = proxy.ProxyProtocolListener(ln, l.ProxyProtocol); err != nil {
			return nil, nil, err
		}
		log.Info("client addresses from PROXY protocol headers", zap.Strings("trusted", l.ProxyProtocol.Trusted))
	}
	if l.Plaintext {
		log.Warn("serving without TLS (listen.plaintext: true): credentials and messages cross the network in clear")
		return ln, nil, nil
	}
	src, err := ptls.New(l.TLS, log)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	if src.CAFile != "" {
		log.Info("TLS certificate from pubgate's local CA; clients must trust its certificate",
			zap.String("ca_file", src.CAFile), zap.String("example", "redis-cli --tls --cacert "+src.CAFile))
	}
	return &closingListener{Listener: tls.NewListener(ln, src.Config()), onClose: src.Close}, src, nil
}

// closingListener stops the certificate source with the listener.
type closingListener struct {
	net.Listener
	onClose func() error
}

func (l *closingListener) Close() error {
	err := l.Listener.Close()
	_ = l.onClose()
	return err
}

func openBroker(u config.Upstream, log *zap.Logger) (upstream.Broker, error) {
	if u.IsMemory() {
		return upstream.NewMemory(), nil
	}
	tlsConfig, err := ptls.UpstreamConfig(u.TLS)
	if err != nil {
		return nil, err
	}
	o := upstream.RedisOptions{
		URL: u.URL, Username: u.Username, Password: u.Password,
		Timeout: u.Timeout, PoolSize: u.PoolSize, TLS: tlsConfig,
		HealthInterval: u.HealthInterval, OnHealthChange: logHealth(log, u.Describe(), u.HealthInterval),
	}
	if c := u.Cluster; c != nil {
		o.URL, o.Cluster = "", &upstream.ClusterOptions{Addrs: c.Addresses, Sharded: c.Sharded}
	}
	if s := u.Sentinel; s != nil {
		o.URL, o.Sentinel = "", &upstream.SentinelOptions{MasterName: s.MasterName, Addrs: s.Addresses, Username: s.Username, Password: s.Password}
	}
	return upstream.NewRedis(o)
}

// passwordUsers is the configuration's password table.
// passwordOptions are the bcrypt settings (auth.verified_cache,
// auth.bcrypt_concurrency). The bcrypt queue is bounded by max_clients: a
// connection checks one AUTH at a time.
func passwordOptions(cfg *config.Config) auth.PasswordOptions {
	o := auth.PasswordOptions{Concurrency: cfg.Auth.BcryptConcurrency, MaxQueued: cfg.Limits.MaxClients}
	if vc := cfg.Auth.VerifiedCache; vc.Enabled {
		o.VerifiedUsers = vc.MaxUsers
	}
	return o
}

func passwordUsers(cfg *config.Config) map[string]auth.PasswordUser {
	users := make(map[string]auth.PasswordUser, len(cfg.Users))
	for name, u := range cfg.Users {
		users[name] = auth.PasswordUser{Tenant: u.Tenant, PasswordHash: u.PasswordHash, Roles: u.Roles}
	}
	return users
}

func newProxy(ctx context.Context, cfg *config.Config, passwords *auth.Passwords, broker upstream.Broker, authz proxy.Authorizer,
	auditor proxy.Auditor, log *zap.Logger) (*proxy.Server, error) {
	var defaultUser *auth.Identity
	if cfg.Auth.DefaultUser != "" {
		id, _ := passwords.Lookup(cfg.Auth.DefaultUser)
		defaultUser = &id
	}
	certIdentity, err := certificateIdentities(cfg, passwords)
	if err != nil {
		return nil, err
	}
	authenticator := auth.Chain{Passwords: passwords}
	if j := cfg.Auth.JWT; j != nil {
		tokens, err := auth.NewJWT(ctx, auth.JWTOptions{
			JWKSURL: j.JWKSURL, JWKSFile: j.JWKSFile, RefreshInterval: j.RefreshInterval, UnknownKIDInterval: time.Minute,
			Issuer: j.Issuer, Audience: j.Audience, Algorithms: j.Algorithms, Leeway: j.Leeway,
			TenantClaim: j.Claims.Tenant, UserClaim: j.Claims.User, RolesClaim: j.Claims.Roles,
		})
		if err != nil {
			return nil, err
		}
		authenticator.JWT = tokens
	}
	return proxy.New(proxy.Options{
		CertificateIdentity: certIdentity,
		CertificateLogin:    cfg.Auth.Certificates != nil && cfg.Auth.Certificates.Login == "certificate",
		Limits:              cfg.Limits, Tenants: cfg.Tenants, Namespace: cfg.Namespace,
		Broker: broker, Auth: authenticator, Users: passwords.Lookup, Authorizer: authz, Audit: auditor, AuditLevels: cfg.Audit.AuditLevels(),
		DefaultUser: defaultUser, UpstreamTimeout: cfg.Upstream.Timeout, LoginTimeout: cfg.Auth.LoginTimeout,
		Throttle:     auth.NewThrottle(cfg.Auth.Throttle.MaxFailures, cfg.Auth.Throttle.Window, cfg.Auth.Throttle.MaxDelay),
		DrainTimeout: cfg.Listen.ShutdownTimeout, Version: buildVersion(), Logger: log,
	})
}

// certificateIdentities maps verified client certificates to identities
// (nil when auth.certificates is not set). A configured user of the same
// name and tenant lends the identity its roles.
func certificateIdentities(cfg *config.Config, passwords *auth.Passwords) (func(*x509.Certificate) (auth.Identity, error), error) {
	if cfg.Auth.Certificates == nil {
		return nil, nil
	}
	mapper, err := auth.NewCertificateMapper(cfg.Auth.Certificates.URITemplate)
	if err != nil {
		return nil, err
	}
	return func(c *x509.Certificate) (auth.Identity, error) {
		tenant, user, err := mapper.Map(c)
		if err != nil {
			return auth.Identity{}, err
		}
		id := auth.Identity{Tenant: tenant, User: user, Method: auth.MethodCertificate}
		if u, ok := passwords.Lookup(user); ok && u.Tenant == tenant {
			id.Roles = u.Roles
		}
		return id, nil
	}, nil
}

// newLogger is the operational log; its level can change while it runs.
func newLogger(c config.Log, cmd *cobra.Command) (*zap.Logger, zap.AtomicLevel, error) {
	level, err := zap.ParseAtomicLevel(c.Level)
	if err != nil {
		return nil, level, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(cmd.ErrOrStderr()), level)
	return zap.New(core), level, nil
}
