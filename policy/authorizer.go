package policy

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/open-policy-agent/opa/v1/topdown/print"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options configure an Authorizer.
type Options struct {
	Sources Sources
	// CacheSize bounds the decision cache (entries); Timeout bounds one
	// evaluation (0: DefaultTimeout).
	CacheSize int
	Timeout   time.Duration
	// Concurrency bounds the evaluations that run at once (0: one per
	// CPU). More than the CPUs makes a burst of CPU-bound evaluations
	// share them, each slower and past its timeout (measured: 10 sessions
	// deciding 100 patterns each on 2 CPUs, 4 at once: the slowest decision
	// took 122 ms; 2 at once: 9 ms). A policy that waits on I/O (http.send)
	// holds its place while it waits: raise it for such a policy.
	Concurrency int
	Logger      *zap.Logger
}

// DefaultTimeout is policy.timeout's default (config.Default uses it), and
// bounds one evaluation when Options.Timeout is not set.
const DefaultTimeout = 100 * time.Millisecond

// Authorizer answers Requests with the current policy revision. It is safe
// for concurrent use. Deny by default: an evaluation error, a timeout or an
// undefined decision denies.
type Authorizer struct {
	opts    Options
	log     *zap.Logger
	evalLog *zap.Logger // sampled: a broken policy must not flood the log
	current atomic.Pointer[compiled]
	// evaluating holds a token per evaluation in progress (see evaluate).
	evaluating chan struct{}

	reloadMu sync.Mutex // one reload at a time; guards opts.Sources and watcher
	watcher  *fsnotify.Watcher
	subsMu   sync.Mutex
	onReload []func(ReloadResult)

	stats stats
}

type stats struct {
	// Hits are derived (every decision is a hit or a miss): a cached
	// decision, the common case, costs one atomic add.
	allowed, denied, errors, misses, planned, reloads, reloadFailures atomic.Int64
}

// Stats are counters since start.
type Stats struct {
	Allowed, Denied int64 // decisions, cached or not
	Errors          int64 // evaluations that failed (and denied)
	CacheHits       int64
	CacheMisses     int64
	Planned         int64 // cache misses a plan answered (see plan.go), not a full evaluation
	Reloads         int64 // revisions swapped in after the first
	ReloadFailures  int64 // reloads refused; the old revision stayed
}

// New loads and compiles the policy; it fails if the policy does not.
func New(ctx context.Context, opts Options) (*Authorizer, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	a := &Authorizer{opts: opts, log: opts.Logger, evaluating: make(chan struct{}, opts.Concurrency)}
	a.evalLog = a.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 3, 0)
	}))
	c, err := a.build(ctx, opts.Sources, "") // no revision is empty: never ErrUnchanged
	if err != nil {
		return nil, err
	}
	a.current.Store(c)
	a.log.Info("policy loaded", zap.String("revision", c.revision), zap.String("modules", c.files), zap.String("bundle_revision", c.bundle))
	return a, nil
}

// Revision names the policy in effect.
func (a *Authorizer) Revision() string { return a.current.Load().revision }

// Authorize decides a request. A warm cache answers without evaluating Rego.
func (a *Authorizer) Authorize(ctx context.Context, r *Request) Decision {
	c := a.current.Load()
	d, ok := c.cache.Get(r)
	if !ok {
		a.stats.misses.Add(1)
		d = a.decideOnce(ctx, c, r)
	}
	a.count(d)
	return d
}

// count counts a decision, cached or not.
func (a *Authorizer) count(d Decision) {
	if d.Allow {
		a.stats.allowed.Add(1)
	} else {
		a.stats.denied.Add(1)
	}
}

// AuthorizeAll decides the requests of one command (a SUBSCRIBE of many
// channels) with one policy revision, into ds (len(rs)). Cached decisions
// are answered at once; the others are evaluated concurrently, up to
// Options.Concurrency at a time across the node, so a command of a
// hundred new names costs about a hundredth of the time per CPU.
func (a *Authorizer) AuthorizeAll(ctx context.Context, rs []Request, ds []Decision) {
	c := a.current.Load()
	var cold []int
	for i := range rs {
		d, ok := c.cache.Get(&rs[i])
		if !ok {
			cold = append(cold, i)
			continue
		}
		ds[i] = d
	}
	a.stats.misses.Add(int64(len(cold)))
	a.evaluateAll(ctx, c, rs, ds, cold)
	for _, d := range ds {
		a.count(d)
	}
}

// evaluateAll evaluates rs[i] into ds[i] for every i of cold, on up to
// Concurrency goroutines (evaluate waits for a CPU slot in any case).
func (a *Authorizer) evaluateAll(ctx context.Context, c *compiled, rs []Request, ds []Decision, cold []int) {
	if len(cold) == 1 {
		i := cold[0]
		ds[i] = a.decideOnce(ctx, c, &rs[i])
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(cold), a.opts.Concurrency) {
		wg.Go(func() {
			for n := next.Add(1) - 1; n < int64(len(cold)); n = next.Add(1) - 1 {
				i := cold[n]
				ds[i] = a.decideOnce(ctx, c, &rs[i])
			}
		})
	}
	wg.Wait()
}

// decideOnce decides r, sharing the work with identical requests (same
// identity, action and channel) that arrive meanwhile: after a node
// drains, its clients reconnect together and ask the same questions. A
// request that joined takes the decision only if it is cacheable, since
// only a cacheable decision is the same for every client; otherwise it
// decides for itself.
func (a *Authorizer) decideOnce(ctx context.Context, c *compiled, r *Request) Decision {
	led := false
	v, _, _ := c.flight.Do(r.flightKey(), func() (any, error) {
		led = true
		d, cacheable := a.evaluate(ctx, c, r)
		return sharedDecision{d, cacheable}, nil
	})
	shared := v.(sharedDecision)
	if !led && !shared.cacheable {
		d, _ := a.evaluate(ctx, c, r)
		return d
	}
	return shared.Decision
}

type sharedDecision struct {
	Decision
	cacheable bool
}

// evaluate decides r with the policy (a plan, or a full evaluation), and
// caches the decision if it may be.
func (a *Authorizer) evaluate(ctx context.Context, c *compiled, r *Request) (d Decision, cacheable bool) {
	// policy.timeout bounds the evaluation, not the wait for a CPU: a burst
	// of cold decisions (a client subscribing to a hundred patterns, many
	// clients at once) runs a few at a time, each at full speed, instead
	// of all at once, each at a fraction of it and past its timeout.
	a.evaluating <- struct{}{}
	defer func() { <-a.evaluating }()
	if p := c.plans.planFor(ctx, r); p != nil && p.allow.holds(r) {
		a.stats.planned.Add(1)
		d := Decision{Allow: true, Reason: p.reason, Revision: c.revision}
		c.cache.Add(r, d)
		return d, true
	}
	input, err := r.input()
	var ans answer
	if err == nil {
		ans, err = c.eval(ctx, input, a.opts.Timeout, nil)
	}
	if err != nil {
		a.stats.errors.Add(1)
		a.evalLog.Warn("policy evaluation failed; denied", zap.String("revision", c.revision),
			zap.String("tenant", r.Subject.Tenant), zap.String("user", r.Subject.User),
			zap.Stringer("action", r.Action), zap.String("channel", r.Channel), zap.Error(err))
		return Decision{Reason: "policy evaluation failed", Revision: c.revision}, false
	}
	d = Decision{Allow: ans.allow, Reason: ans.reason, Revision: c.revision}
	if ans.cache {
		c.cache.Add(r, d)
	}
	return d, ans.cache
}

// ReloadResult is the outcome of one reload.
type ReloadResult struct {
	Previous, Revision string // the revision before and the one in effect after
	Err                error  // why the reload was refused; ErrUnchanged if nothing changed
}

// Changed reports whether a new revision took effect.
func (r ReloadResult) Changed() bool { return r.Err == nil }

// OnReload registers f to run after every reload, applied or not (to
// re-check what was allowed before, to record it).
func (a *Authorizer) OnReload(f func(ReloadResult)) {
	a.subsMu.Lock()
	defer a.subsMu.Unlock()
	a.onReload = append(a.onReload, f)
}

// notify tells the OnReload subscribers.
func (a *Authorizer) notify(r ReloadResult) {
	a.subsMu.Lock()
	subs := append([]func(ReloadResult){}, a.onReload...)
	a.subsMu.Unlock()
	for _, f := range subs {
		f(r)
	}
}

// ErrUnchanged is returned by Reload when the sources did not change.
var ErrUnchanged = errors.New("policy: unchanged")

// Reload reads and compiles the sources again beside the policy in effect
// and swaps them in. On any error the old revision stays in effect.
func (a *Authorizer) Reload(ctx context.Context) (revision string, err error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.reload(ctx)
}

// Stage compiles the policy from new sources (a configuration reload:
// other paths, new data.pubgate) beside the one in effect, and returns what
// puts it into effect. Nothing changes until apply runs, so that a caller
// applying several parts of a new configuration applies all or none: the
// policy compiles once, here. If the sources hold the policy in effect,
// apply only records them.
func (a *Authorizer) Stage(ctx context.Context, src Sources) (apply func(), err error) {
	c, err := a.build(ctx, src, a.Revision())
	if errors.Is(err, ErrUnchanged) {
		c, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return func() { a.install(src, c) }, nil
}

// SetSources reloads the policy from new sources at once (Stage, then
// apply). If the policy they hold is refused, the old sources and revision
// stay in effect, and the refusal is reported as a reload's.
func (a *Authorizer) SetSources(ctx context.Context, src Sources) (revision string, err error) {
	apply, err := a.Stage(ctx, src)
	if err != nil {
		a.reloadMu.Lock()
		defer a.reloadMu.Unlock()
		a.refuse(a.current.Load(), err)
		return a.Revision(), err
	}
	apply()
	return a.Revision(), nil
}

// install puts staged sources, and their revision if it is new, into
// effect, watching the new paths too if Watch runs.
func (a *Authorizer) install(src Sources, c *compiled) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.opts.Sources = src
	if c != nil {
		a.swap(a.current.Load(), c)
	}
	if a.watcher != nil {
		for _, p := range a.watchedPaths() {
			if werr := addTree(a.watcher, p); werr != nil {
				a.log.Warn("policy file watch", zap.String("path", p), zap.Error(werr))
			}
		}
	}
}

// reload is Reload with reloadMu held.
func (a *Authorizer) reload(ctx context.Context) (revision string, err error) {
	old := a.current.Load()
	c, err := a.build(ctx, a.opts.Sources, old.revision)
	if err != nil {
		a.refuse(old, err)
		return old.revision, err
	}
	a.swap(old, c)
	return c.revision, nil
}

// swap puts revision c in the place of old, with reloadMu held.
func (a *Authorizer) swap(old, c *compiled) {
	a.current.Store(c)
	a.stats.reloads.Add(1)
	a.log.Info("policy reloaded", zap.String("previous_revision", old.revision),
		zap.String("revision", c.revision), zap.String("modules", c.files), zap.String("bundle_revision", c.bundle))
	a.notify(ReloadResult{Previous: old.revision, Revision: c.revision})
}

// refuse reports a reload that kept old in effect, with reloadMu held.
func (a *Authorizer) refuse(old *compiled, err error) {
	if !errors.Is(err, ErrUnchanged) {
		a.stats.reloadFailures.Add(1)
		a.log.Error("policy reload refused; the previous policy stays in effect",
			zap.String("revision", old.revision), zap.Error(err))
	}
	a.notify(ReloadResult{Previous: old.revision, Revision: old.revision, Err: err})
}

// build loads src and compiles it, unless it holds revision current
// (ErrUnchanged).
func (a *Authorizer) build(ctx context.Context, src Sources, current string) (*compiled, error) {
	l, err := load(src)
	if err != nil {
		return nil, err
	}
	if l.revision == current {
		return nil, ErrUnchanged
	}
	return compile(ctx, l, a.opts.CacheSize, a.printHook())
}

// Stats returns the counters.
func (a *Authorizer) Stats() Stats {
	s := &a.stats
	allowed, denied, misses := s.allowed.Load(), s.denied.Load(), s.misses.Load()
	return Stats{
		Allowed: allowed, Denied: denied, Errors: s.errors.Load(),
		CacheHits: allowed + denied - misses, CacheMisses: misses, Planned: s.planned.Load(),
		Reloads: s.reloads.Load(), ReloadFailures: s.reloadFailures.Load(),
	}
}

// printHook sends Rego print() output to the operational log at debug.
func (a *Authorizer) printHook() print.Hook { return printLogger{a.log} }

type printLogger struct{ log *zap.Logger }

func (p printLogger) Print(ctx print.Context, msg string) error {
	p.log.Debug("policy print", zap.String("location", ctx.Location.String()), zap.String("message", msg))
	return nil
}
