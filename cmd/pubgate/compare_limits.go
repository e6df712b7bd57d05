package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// filesSlack is the open files this process needs besides one per client
// connection (W4, W7): its logs, pipes, and the smaller workloads.
const filesSlack = 256

// The sizes of W6–W8 when neither a flag nor the caller says otherwise.
const (
	defaultFreshChannels   = 10000
	defaultStormClients    = 2000
	defaultStormBcryptCost = 10
	defaultStormTimeout    = time.Minute
	defaultNoisePatterns   = 30000
)

// withDefaults fills in the sizes of W6–W8 that o leaves at zero.
func (o compareOptions) withDefaults() compareOptions {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&o.freshChannels, defaultFreshChannels)
	set(&o.stormClients, defaultStormClients)
	set(&o.stormBcryptCost, defaultStormBcryptCost)
	set(&o.noisePatterns, defaultNoisePatterns)
	if o.stormTimeout == 0 {
		o.stormTimeout = defaultStormTimeout
	}
	return o
}

// check refuses options the comparison cannot run, before any server
// starts, and makes room for the connections it will open.
func (o compareOptions) check() error {
	var errs []error
	if o.freshChannels <= 0 || o.freshChannels%4 != 0 {
		errs = append(errs, fmt.Errorf("--fresh-channels %d: must be a positive multiple of 4 (W6's publishers)", o.freshChannels))
	}
	if o.stormClients <= 0 {
		errs = append(errs, fmt.Errorf("--storm-clients %d: must be positive", o.stormClients))
	}
	if o.noisePatterns <= 0 {
		errs = append(errs, fmt.Errorf("--noise-patterns %d: must be positive", o.noisePatterns))
	}
	if o.stormTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--storm-timeout %s: must be positive", o.stormTimeout))
	}
	if o.stormBcryptCost < bcrypt.MinCost || o.stormBcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("--storm-bcrypt-cost %d: must be from %d to %d", o.stormBcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if errs != nil {
		return errors.Join(errs...)
	}
	return o.makeRoomForConnections()
}

// connections is the most connections one workload holds at once.
func (o compareOptions) connections() int {
	n := max(o.idle, o.stormClients)
	if o.scaling {
		n = max(n, 10000, 2000)
	}
	return n
}

// makeRoomForConnections raises this process's soft limit on open files to
// its hard limit (the servers it starts inherit it), and fails if even
// that is too few for the clients, or for the servers' 20,000 maxclients.
func (o compareOptions) makeRoomForConnections() error {
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
