package compare

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// filesSlack is the open files this process needs besides one per client
// connection (W4, W7): its logs, pipes, and the smaller workloads.
const filesSlack = 256

// The sizes of W6–W8 when neither a flag nor the caller says otherwise.
const (
	DefaultFreshChannels   = 10000
	DefaultStormClients    = 2000
	DefaultStormBcryptCost = 10
	DefaultStormTimeout    = time.Minute
	DefaultNoisePatterns   = 30000
)

// WithDefaults fills in the sizes of W6–W8 that o leaves at zero.
func (o Options) WithDefaults() Options {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&o.FreshChannels, DefaultFreshChannels)
	set(&o.StormClients, DefaultStormClients)
	set(&o.StormBcryptCost, DefaultStormBcryptCost)
	set(&o.NoisePatterns, DefaultNoisePatterns)
	if o.StormTimeout == 0 {
		o.StormTimeout = DefaultStormTimeout
	}
	return o
}

// Check refuses options the comparison cannot run, before any server
// starts, and makes room for the connections it will open.
func (o Options) Check() error {
	var errs []error
	if o.Pubgate == "" {
		errs = append(errs, errors.New("no pubgate binary for the pubgate arm (Options.Pubgate)"))
	}
	if o.FreshChannels <= 0 || o.FreshChannels%4 != 0 {
		errs = append(errs, fmt.Errorf("--fresh-channels %d: must be a positive multiple of 4 (W6's publishers)", o.FreshChannels))
	}
	if o.StormClients <= 0 {
		errs = append(errs, fmt.Errorf("--storm-clients %d: must be positive", o.StormClients))
	}
	if o.NoisePatterns <= 0 {
		errs = append(errs, fmt.Errorf("--noise-patterns %d: must be positive", o.NoisePatterns))
	}
	if o.StormTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--storm-timeout %s: must be positive", o.StormTimeout))
	}
	if o.StormBcryptCost < bcrypt.MinCost || o.StormBcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("--storm-bcrypt-cost %d: must be from %d to %d", o.StormBcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if errs != nil {
		return errors.Join(errs...)
	}
	return o.makeRoomForConnections()
}

// connections is the most connections one workload holds at once.
func (o Options) connections() int {
	n := max(o.Idle, o.StormClients)
	if o.Scaling {
		n = max(n, slices.Max(memoryScalingConnections), slices.Max(stormScalingClients))
	}
	return n
}

// makeRoomForConnections raises this process's soft limit on open files to
// its hard limit (the servers it starts inherit it), and fails if even
// that is too few for the clients, or for the servers' 20,000 maxclients.
func (o Options) makeRoomForConnections() error {
	need := o.connections() + filesSlack
	if need > 20000 {
		return fmt.Errorf("%d connections at once: the arms accept at most 20,000 clients", o.connections())
	}
	limit, ok, err := raiseOpenFiles()
	if err != nil {
		return fmt.Errorf("raising the limit on open files: %w", err)
	}
	if ok && limit < uint64(need) {
		return fmt.Errorf("%d connections need about %d open files, and the limit is %d (ulimit -Hn): lower --storm-clients or --idle-connections, or raise the hard limit",
			o.connections(), need, limit)
	}
	return nil
}
