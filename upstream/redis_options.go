package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the Redis engine: a standalone server (URL), a
// primary found through Sentinel, or a Redis Cluster.
type RedisOptions struct {
	URL      string           // standalone: redis://[user:pass@]host:port/ or rediss://… (the user is a Redis ACL user)
	Sentinel *SentinelOptions // instead of URL: the primary that Sentinel names
	Cluster  *ClusterOptions  // instead of URL: a Redis Cluster
	// Username and Password authenticate to the data nodes of a Sentinel
	// or Cluster deployment (a standalone URL carries its own).
	Username, Password string
	// Timeout is the dial/read/write timeout of pooled connections and
	// bounds publishes and subscriptions; 0: DefaultTimeout (go-redis's own
	// timeouts for its pooled connections).
	Timeout  time.Duration
	PoolSize int // 0 picks go-redis's default
	// TLS replaces the default TLS configuration of a rediss:// URL: a CA to
	// trust, a client certificate, a server name. For Sentinel and Cluster
	// it turns TLS on (towards the sentinels too).
	TLS *tls.Config
	// HealthInterval is how often the engine is probed (0:
	// DefaultHealthInterval).
	HealthInterval time.Duration
	// OnHealthChange is called with the first probe's outcome (up or
	// down), then whenever the engine goes down or comes back.
	OnHealthChange func(Health)
}

// SentinelOptions locate the primary through Redis Sentinel.
type SentinelOptions struct {
	MasterName         string
	Addrs              []string // host:port of the sentinels
	Username, Password string   // the sentinels' own credentials, if any
}

// ClusterOptions connect to a Redis Cluster.
type ClusterOptions struct {
	Addrs []string // seed nodes; the rest is discovered
	// Sharded maps clients' PUBLISH and SUBSCRIBE to Redis 7's SPUBLISH
	// and SSUBSCRIBE, so that a message travels only within the shard
	// that owns its channel's slot instead of to every node. Pattern
	// subscriptions are not available then: Redis has no sharded patterns.
	Sharded bool
}

// ErrPatternsSharded refuses a pattern subscription in sharded mode.
var ErrPatternsSharded = errors.New("upstream: pattern subscriptions are not available when upstream.cluster.sharded is on (Redis has no sharded patterns)")

// The defaults of the options that the configuration file sets too; its
// defaults are these (config.Default uses them).
const (
	// DefaultTimeout is upstream.timeout: the bound on each upstream
	// operation (dial, publish, subscribe confirmation).
	DefaultTimeout = 5 * time.Second
	// DefaultHealthInterval is upstream.health_interval: how often the
	// engine is probed.
	DefaultHealthInterval = time.Second
)

// noRetries turns off go-redis's retry of a command after a network error:
// a PUBLISH whose reply was lost may have been delivered, and sending it
// again would deliver it twice. The client gets the error instead, as from
// Redis itself. (A cluster's MOVED and ASK redirects are still followed:
// those commands did not run.)
const noRetries = -1

// newRedisClient builds the go-redis client for the deployment o names.
func newRedisClient(o RedisOptions) (redis.UniversalClient, error) {
	switch {
	case o.Cluster != nil:
		return newClusterClient(o), nil
	case o.Sentinel != nil:
		return newFailoverClient(o), nil
	}
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if o.TLS != nil {
		if opt.TLSConfig == nil {
			return nil, fmt.Errorf("upstream: TLS options need a rediss:// URL")
		}
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = opt.TLSConfig.ServerName // the URL's host
		}
		opt.TLSConfig = cfg
	}
	opt.Protocol = 2 // push-free replies; pub/sub needs nothing from RESP3
	opt.ClientName = "pubgate"
	opt.MaxRetries = noRetries
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	if o.Timeout > 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	}
	return redis.NewClient(opt), nil
}

func newClusterClient(o RedisOptions) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: o.Cluster.Addrs, Username: o.Username, Password: o.Password,
		Protocol: 2, ClientName: "pubgate", TLSConfig: o.TLS, PoolSize: o.PoolSize, MaxRetries: noRetries,
		DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout,
	})
}

func newFailoverClient(o RedisOptions) *redis.Client {
	s := o.Sentinel
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: s.MasterName, SentinelAddrs: s.Addrs,
		SentinelUsername: s.Username, SentinelPassword: s.Password,
		Username: o.Username, Password: o.Password,
		Protocol: 2, ClientName: "pubgate", TLSConfig: o.TLS, PoolSize: o.PoolSize, MaxRetries: noRetries,
		DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout,
	})
}
