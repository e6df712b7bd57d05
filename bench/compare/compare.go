// Package compare is `pubgate bench compare`: it measures pubgate (TLS,
// passwords, the example policy, audit) against Redis alone and Redis with
// TLS and ACL users, on loopback, with the workloads W0–W8 of BENCHMARKS.md
// (or, with Options.Scaling, its scaling series), each run by package bench.
package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pubgate/pubgate/bench"
	"golang.org/x/crypto/bcrypt"
)

// Options say how big a comparison runs. Run fills in the sizes of W6–W8
// left at zero (see WithDefaults); the other fields have no defaults here:
// `pubgate bench compare`'s flags give them.
type Options struct {
	// Repeat is the number of runs of each workload on each arm.
	Repeat int
	// Duration is the publishing time of each run.
	Duration time.Duration
	// Idle is W4's number of idle subscribers.
	Idle int
	// Workloads names the workloads to run, of W0–W8 (see WorkloadNames).
	Workloads []string
	// PolicyDir is the policy the pubgate arm runs (the example policy).
	PolicyDir string
	// Out is the directory for the arms' files and the raw results (JSON);
	// "" for a temporary one, removed at the end.
	Out string
	// BcryptCost is the cost of the tenants' users' password hashes on
	// pubgate (W4 logs in every connection).
	BcryptCost int
	// RedisServer is the redis-server binary of the Redis arms.
	RedisServer string
	// Pubgate is the pubgate binary of the pubgate arm (required): the
	// running one for `pubgate bench compare`, or an older build to
	// compare with.
	Pubgate string
	// Scaling runs, instead of Workloads, the series of BENCHMARKS.md's
	// scaling tables.
	Scaling bool
	// FreshChannels is W6's number of channel names, new to the servers on
	// every run (a multiple of 4).
	FreshChannels int
	// StormClients is W7's number of clients connecting at once.
	StormClients int
	// StormBcryptCost is the cost of the password hash of W7's user on
	// pubgate.
	StormBcryptCost int
	// StormTimeout is how long each W7 client may take to connect, log in
	// and subscribe.
	StormTimeout time.Duration
	// NoisePatterns is W8's neighbour's number of pattern subscriptions.
	NoisePatterns int
	// Smoke marks a smoke run (see AsSmoke), too short and too small to
	// measure memory per connection: the figure would be the runtime's
	// start-up, so the table leaves it out.
	Smoke bool
}

// AsSmoke is o as a smoke run (what CI runs): one short run of each
// workload, W4 with 200 connections and its memory not measured, W7 with
// at most 100 clients, W8 with at most 1,000 patterns.
func (o Options) AsSmoke() Options {
	o = o.WithDefaults() // the caps below apply to the sizes that would run
	o.Repeat, o.Duration, o.Idle, o.Smoke = 1, time.Second, 200, true
	o.StormClients, o.NoisePatterns = min(o.StormClients, 100), min(o.NoisePatterns, 1000)
	return o
}

// WorkloadNames are the names of the workloads W0–W8, in their order: what
// a comparison runs unless told otherwise.
func WorkloadNames() []string {
	var names []string
	for _, w := range compareWorkloads() {
		names = append(names, w.name)
	}
	return names
}

// workload is one of W0–W8 (issue 15's W1–W5, a baseline, and issue 16's
// W6–W8): the bench options for an arm, and the figures the table shows.
type workload struct {
	name, title string
	options     func(o Options, a *arm) bench.Options
	figures     []figure
	// fresh runs each repetition on servers started for it, and measures
	// their memory (W4) unless run is set.
	fresh bool
	// isolated runs each arm's run on servers started for it (W8: Redis
	// never shrinks its table of patterns, so a run after the neighbour's
	// patterns left, or on the Redis behind pubgate after pubgate's run,
	// would still pay for them: 9k publishes/s where it made 220k).
	isolated bool
	// run, if set, runs the workload on an arm instead of runWorkload
	// (W7, W8: more than one bench run).
	run func(ctx context.Context, w workload, o Options, a *arm) (armRun, error)
}

type figure struct {
	name string
	// value is NaN if the run did not measure it.
	value       func(r *bench.Result, m measured) float64
	lowerBetter bool
	// memory figures are not measured in --smoke runs.
	memory bool
	// cpu figures need the server's CPU time measured over the run.
	cpu bool
	// format renders the figure's median (nil: formatFigure).
	format func(float64) string
	// note, if any, explains the figure under the table.
	note string
}

// measured is what a run yields besides the bench result.
type measured struct {
	bytesPerConn float64 // W4: the server's RSS growth per connection
	// cpu is the CPU time (user + system) the server's process used from
	// the first publish until every delivery arrived (see runWorkload);
	// cpuMeasured is false if the run did not measure it.
	cpu         time.Duration
	cpuMeasured bool
	// writes and delivered are pubgate's client writes and delivered
	// messages over the same window (writesMeasured: pubgate arm only).
	writes, delivered float64
	writesMeasured    bool
	// storm is W7's result; alone is W8's run without the neighbour.
	storm *bench.StormResult
	alone *bench.Result
}

// cpuPer is the server's CPU time per message, in µs, or NaN if the run did
// not measure it or passed no message.
func (m measured) cpuPer(messages uint64) float64 {
	if !m.cpuMeasured || messages == 0 {
		return math.NaN()
	}
	return float64(m.cpu.Nanoseconds()) / 1e3 / float64(messages)
}

var (
	publishRate  = figure{name: "publish/s", value: func(r *bench.Result, _ measured) float64 { return r.PublishRate }}
	deliveryRate = figure{name: "delivered/s", value: func(r *bench.Result, _ measured) float64 { return r.DeliveryRate }}
	p50          = figure{name: "p50 µs", lowerBetter: true, value: func(r *bench.Result, _ measured) float64 { return r.Latency.P50 }}
	p99          = figure{name: "p99 µs", lowerBetter: true, value: func(r *bench.Result, _ measured) float64 { return r.Latency.P99 }}
	p999         = figure{name: "p99.9 µs", lowerBetter: true, value: func(r *bench.Result, _ measured) float64 { return r.Latency.P999 }}
	perConn      = figure{name: "bytes/conn", lowerBetter: true, memory: true, value: func(_ *bench.Result, m measured) float64 { return m.bytesPerConn }}
	// cpuPerPublish is for workloads whose subscribers receive each message
	// once (W0, W1, W5): per acknowledged publish, which includes
	// delivering it. cpuPerDelivery is for fan-out (W2), where the
	// deliveries are the work: per message received by a subscriber.
	cpuPerPublish  = figure{name: cpuFigure, lowerBetter: true, cpu: true, format: formatSmall, note: cpuNote, value: func(r *bench.Result, m measured) float64 { return m.cpuPer(r.Published) }}
	cpuPerDelivery = figure{name: cpuFigure, lowerBetter: true, cpu: true, format: formatSmall, note: cpuNote, value: func(r *bench.Result, m measured) float64 { return m.cpuPer(r.Delivered) }}
)

// writesPerDelivery is pubgate's writes to client connections per message
// delivered (pubgate_client_writes_total / pubgate_delivered_messages_total
// over the run): how well fan-out coalesces. The writes include replies.
var writesPerDelivery = figure{name: "writes/delivery", lowerBetter: true, format: formatSmall, note: writesNote, value: func(_ *bench.Result, m measured) float64 {
	if !m.writesMeasured || m.delivered == 0 {
		return math.NaN()
	}
	return m.writes / m.delivered
}}

// cpuFigure names the server's CPU time per message.
const cpuFigure = "CPU µs/msg"

// baseOptions are what every rate workload shares: the arm's first
// tenant, 64-byte messages, o's duration.
func baseOptions(o Options, a *arm) bench.Options {
	return bench.Options{Addr: a.addr, TLS: a.tls, Tenants: a.tenants[:1], PayloadSize: 64, Duration: o.Duration, Drain: 3 * time.Second}
}

func compareWorkloads() []workload {
	return []workload{
		{name: "W0", title: "baseline: 1 publisher (pipeline 16), 1 channel, 1 subscriber", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Publishers, b.Pipeline, b.Channels, b.Subscribers = 1, 16, 1, 1
			return b
		}, figures: []figure{publishRate, deliveryRate, cpuPerPublish, writesPerDelivery}},
		{name: "W1", title: "publish-heavy: 4 publishers, pipeline 16, 16 channels, 1 subscriber", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Publishers, b.Pipeline, b.Channels, b.Subscribers = 4, 16, 16, 1
			return b
		}, figures: []figure{publishRate, deliveryRate, cpuPerPublish, writesPerDelivery}},
		{name: "W2", title: "fan-out: 1 publisher (pipeline 16), 100 subscribers on 1 channel", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Publishers, b.Pipeline, b.Channels, b.Subscribers = 1, 16, 1, 100
			return b
		}, figures: []figure{deliveryRate, publishRate, cpuPerDelivery, writesPerDelivery}},
		{name: "W3", title: "latency: 10,000 messages/s, 1 channel, 10 subscribers", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Publishers, b.Pipeline, b.Rate, b.Channels, b.Subscribers = 1, 64, 10000, 1, 10
			return b
		}, figures: []figure{p50, p99, p999}},
		{name: "W4", title: "connections: idle authenticated subscribers on 1,000 channels", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Channels, b.SubChannels, b.Subscribers, b.Duration, b.Drain = 1000, 1, o.Idle, time.Millisecond, time.Millisecond
			return b
		}, figures: []figure{perConn}, fresh: true},
		{name: "W5", title: "patterns: 1,000 pattern subscriptions over 2 tenants, 4 publishers (pipeline 16)", options: func(o Options, a *arm) bench.Options {
			b := baseOptions(o, a)
			b.Tenants = a.tenants
			b.Publishers, b.Pipeline, b.Channels, b.Patterns = 4, 16, 500, true
			b.Subscribers, b.SubChannels = 10, 100 // 5 per tenant × 100 patterns, each matching one channel
			return b
		}, figures: []figure{publishRate, deliveryRate, cpuPerPublish}},
		manyChannelsWorkload(),
		stormWorkload(),
		noiseWorkload(),
	}
}

// memoryScalingConnections are S3's sizes: idle subscribers.
var memoryScalingConnections = []int{1000, 10000}

// scalingWorkloads are the series of BENCHMARKS.md's scaling tables.
func scalingWorkloads() []workload {
	var out []workload
	base := func(o Options, a *arm) bench.Options {
		b := baseOptions(o, a)
		b.Publishers, b.Pipeline = 1, 16
		return b
	}
	for _, n := range []int{1, 10, 100, 1000} {
		out = append(out, workload{name: fmt.Sprintf("S1 %d", n), title: fmt.Sprintf("delivery: 1 publisher (pipeline 16), %d subscribers of 1 channel", n),
			options: func(o Options, a *arm) bench.Options {
				b := base(o, a)
				b.Subscribers = n
				return b
			}, figures: []figure{deliveryRate}})
	}
	for _, n := range []int{1, 100, 10000} {
		out = append(out, workload{name: fmt.Sprintf("S2 %d", n), title: fmt.Sprintf("publish: 4 publishers (pipeline 16) over %d channels, 1 subscriber of all", n),
			options: func(o Options, a *arm) bench.Options {
				b := base(o, a)
				b.Publishers, b.Channels, b.Subscribers = 4, n, 1
				return b
			}, figures: []figure{publishRate}})
	}
	for _, n := range memoryScalingConnections {
		out = append(out, workload{name: fmt.Sprintf("S3 %d", n), title: fmt.Sprintf("memory: %d idle subscribers on 1,000 channels", n),
			options: func(o Options, a *arm) bench.Options {
				b := base(o, a)
				b.Publishers, b.Channels, b.SubChannels, b.Subscribers, b.Duration, b.Drain = 0, 1000, 1, n, time.Millisecond, time.Millisecond
				return b
			}, figures: []figure{perConn}, fresh: true})
	}
	out = append(out, stormScaling()...)
	for _, n := range noiseScalingPatterns {
		out = append(out, noiseScaling(n))
	}
	return out
}

// pickWorkloads returns the named workloads, in their order; a name that
// is none of them is an error rather than an empty table.
func pickWorkloads(names []string) ([]workload, error) {
	var chosen []workload
	known := map[string]bool{}
	for _, w := range compareWorkloads() {
		known[w.name] = true
		if slices.Contains(names, w.name) {
			chosen = append(chosen, w)
		}
	}
	for _, n := range names {
		if !known[n] {
			return nil, fmt.Errorf("--workloads: no workload %q (there are W0-W8)", n)
		}
	}
	return chosen, nil
}

// Run starts, on loopback ports, redis-server alone (arm "redis"),
// redis-server with TLS and an ACL user per tenant ("redis-tls"), and
// o.Pubgate with TLS, password logins, the policy in o.PolicyDir and the
// audit log at level metadata in front of the first ("pubgate"); runs each
// chosen workload on each arm o.Repeat times, alternating the arms' order;
// and prints to stdout, as a Markdown table, the median of each figure per
// arm and the ratio pubgate / redis-tls. Progress and the servers' log
// files go to stderr. It fails if a run lost, duplicated or reordered a
// message.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	o = o.WithDefaults()
	if err := o.Check(); err != nil {
		return err
	}
	chosen := scalingWorkloads()
	if !o.Scaling {
		var err error
		if chosen, err = pickWorkloads(o.Workloads); err != nil {
			return err
		}
	}
	dir := o.Out
	if dir == "" {
		tmp, err := os.MkdirTemp("", "pubgate-compare-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	}
	arms, stop, err := startArms(ctx, o, dir, stderr)
	defer func() { stop() }()
	if err != nil {
		return err
	}
	// restart gives a workload that measures memory servers that nothing
	// ran on before, and the next workload servers without its garbage;
	// servers nothing ran on yet (used false) are not restarted.
	used := false
	restart := func() error {
		if !used {
			return nil
		}
		stop()
		arms, stop, err = startArms(ctx, o, dir, stderr)
		used = false
		return err
	}
	results := make(map[string]map[string][]armRun) // workload → arm → runs
	for _, w := range chosen {
		results[w.name] = make(map[string][]armRun)
		for rep := range o.Repeat {
			if w.fresh {
				if err := restart(); err != nil {
					return err
				}
			}
			for k := range arms {
				if w.isolated {
					if err := restart(); err != nil {
						return err
					}
				}
				a := arms[(k+rep)%len(arms)] // alternate which arm goes first
				fmt.Fprintf(stderr, "%s run %d/%d on %s\n", w.name, rep+1, o.Repeat, a.name)
				run := w.run
				if run == nil {
					run = runWorkload
				}
				r, err := run(ctx, w, o, a)
				used = true
				if err != nil {
					return fmt.Errorf("%s on %s: %w", w.name, a.name, err)
				}
				results[w.name][a.name] = append(results[w.name][a.name], r)
				if err := saveRun(dir, w.name, a.name, rep, r); err != nil {
					return err
				}
			}
		}
		if w.fresh || w.isolated {
			if err := restart(); err != nil {
				return err
			}
		}
	}
	writeComparison(stdout, o, chosen, arms, results)
	writeStormFailures(stdout, chosen, arms, results)
	writeNoiseRefusals(stdout, chosen, arms, results)
	return checkDeliveries(results)
}

// checkDeliveries fails the comparison if any run lost, duplicated or
// reordered a message: a rate bought that way would mean nothing.
func checkDeliveries(results map[string]map[string][]armRun) error {
	var bad []string
	for w, arms := range results {
		for a, runs := range arms {
			for i, r := range runs {
				for _, res := range []*bench.Result{r.Result, r.Alone} {
					if res != nil && res.Lost+res.Duplicated+res.OutOfOrder > 0 {
						bad = append(bad, fmt.Sprintf("%s on %s, run %d: %d lost, %d duplicated, %d out of order",
							w, a, i+1, res.Lost, res.Duplicated, res.OutOfOrder))
					}
				}
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return errors.New("bench compare: messages went wrong:\n  " + strings.Join(bad, "\n  "))
}

// armRun is one workload run on one arm.
type armRun struct {
	Result   *bench.Result `json:"result"`
	Measured measured      `json:"-"`
	PerConn  float64       `json:"bytes_per_connection,omitempty"`
	// ServerCPU is measured.cpu in seconds.
	ServerCPU float64 `json:"server_cpu_seconds,omitempty"`
	// Storm is W7's result (Result is then empty); Alone is W8's run
	// without the neighbour (Result is the run with it).
	Storm *bench.StormResult `json:"storm,omitempty"`
	Alone *bench.Result      `json:"alone,omitempty"`
	// NoiseRefusals counts W8's PSUBSCRIBEs the arm refused and accepted
	// when sent again.
	NoiseRefusals int `json:"noise_refusals,omitempty"`
}

func runWorkload(ctx context.Context, w workload, o Options, a *arm) (armRun, error) {
	bo := w.options(o, a)
	var m measured
	var before int64
	if w.fresh && !o.Smoke {
		before = a.rss()
		bo.OnSubscribed = func() {
			time.Sleep(time.Second) // let the servers settle
			m.bytesPerConn = float64(a.rss()-before) / float64(bo.Subscribers)
		}
	}
	if slices.ContainsFunc(w.figures, func(f figure) bool { return f.cpu }) {
		// The CPU window is the one the result's counts come from: it opens
		// once every connection is set up and subscribed, just before the
		// first publish, and closes after the last acknowledged publish
		// once every expected message reached its subscriber (or the drain
		// gave up), before any connection closes. So it holds the server's
		// work for the published and delivered messages the result counts
		// (acknowledging, routing, delivering, and pubgate's policy and
		// audit), and none of the TLS handshakes, logins, subscriptions
		// or disconnections around them. It is a few milliseconds wider
		// than the messages (the harness sees the last delivery on a
		// 10 ms poll, when the server is idle), and /proc counts in clock
		// ticks (10 ms): over runs of seconds, errors of well under 1%.
		var start time.Duration
		var started, counted bool
		var writes, delivered float64
		settle := bo.OnSubscribed // a memory measure, if any, comes first
		bo.OnSubscribed = func() {
			if settle != nil {
				settle()
			}
			writes, delivered, counted = a.counters() // first: the scrape is pubgate's work, not the run's
			start, started = a.cpu()
		}
		bo.OnDrained = func() {
			end, ended := a.cpu()
			m.cpu, m.cpuMeasured = end-start, started && ended
			w, d, ok := a.counters()
			m.writes, m.delivered, m.writesMeasured = w-writes, d-delivered, counted && ok
		}
	}
	r, err := bench.Run(ctx, bo)
	if err != nil {
		return armRun{}, err
	}
	if r.Errors != "" {
		return armRun{}, errors.New(r.Errors)
	}
	run := armRun{Result: r, Measured: m, PerConn: m.bytesPerConn}
	if m.cpuMeasured {
		run.ServerCPU = m.cpu.Seconds()
	}
	return run, nil
}

func saveRun(dir, workload, arm string, rep int, r armRun) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, strings.ReplaceAll(fmt.Sprintf("%s-%s-%d.json", workload, arm, rep+1), " ", "-")), data, 0o644)
}

// writeComparison prints, per workload, the median of each figure per arm
// and the ratio pubgate / redis-tls, as a Markdown table.
func writeComparison(w io.Writer, o Options, workloads []workload, arms []*arm, results map[string]map[string][]armRun) {
	fmt.Fprintf(w, "Medians of %d runs of %s each; ratio = pubgate / redis-tls.\n\n", o.Repeat, o.Duration)
	fmt.Fprintf(w, "| workload | figure | %s | ratio | lost (all runs) |\n", strings.Join(armNames(arms), " | "))
	fmt.Fprintf(w, "|---|---|%s---:|---:|\n", strings.Repeat("---:|", len(arms)))
	for _, wl := range workloads {
		for i, f := range wl.figures {
			name, lost := "", ""
			if i == 0 {
				name, lost = wl.name+" "+wl.title, lostSummary(arms, results[wl.name])
			}
			if f.memory && o.Smoke {
				fmt.Fprintf(w, "| %s | %s | %s%s | %s |\n", name, f.name, strings.Repeat("— | ", len(arms)), notInSmoke, lost)
				continue
			}
			format := f.format
			if format == nil {
				format = formatFigure
			}
			med := make(map[string]float64)
			cells := make([]string, len(arms))
			for k, a := range arms {
				var vs []float64
				for _, r := range results[wl.name][a.name] {
					if v := f.value(r.Result, r.Measured); !math.IsNaN(v) {
						vs = append(vs, v)
					}
				}
				cells[k] = "—"
				if len(vs) > 0 {
					med[a.name] = median(vs)
					cells[k] = format(med[a.name])
				}
			}
			ratio := "—"
			if b := med["redis-tls"]; b > 0 {
				if p, ok := med["pubgate"]; ok {
					ratio = fmt.Sprintf("%.2f×", p/b)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, f.name, strings.Join(cells, " | "), ratio, lost)
		}
	}
	writeNotes(w, workloads)
}

// writeNotes explains, once each, the figures of the table that need it.
func writeNotes(w io.Writer, workloads []workload) {
	seen := map[string]bool{}
	for _, wl := range workloads {
		for _, f := range wl.figures {
			if f.note != "" && !seen[f.name] {
				seen[f.name] = true
				fmt.Fprintf(w, "\n%s: %s\n", f.name, f.note)
			}
		}
	}
}

// writesNote explains the writes per delivery under the table.
const writesNote = "pubgate's writes to client connections (replies included) per message delivered, " +
	"from its metrics (pubgate_client_writes_total / pubgate_delivered_messages_total) over the same window; " +
	"a burst of messages queued together goes to a client in one write."

// cpuNote explains the CPU figure under the table.
const cpuNote = "the server process's CPU time (user + system, all threads, from /proc/<pid>/stat) " +
	"from the first publish until the last delivery, per published message (per delivered message for fan-out, W2); " +
	"lower is better. pubgate's counts pubgate only, not the Redis behind it."

// notInSmoke stands for a memory figure of a --smoke run: with a few hundred
// connections for a second, the growth of a server's RSS is mostly its
// runtime starting up (Go's heap and goroutine stacks, Redis's allocator),
// not what a connection costs, and a ratio of it would mislead.
const notInSmoke = "not measured in --smoke: too few connections"

func lostSummary(arms []*arm, runs map[string][]armRun) string {
	var parts []string
	for _, a := range arms {
		var lost, dup, ooo uint64
		for _, r := range runs[a.name] {
			for _, res := range []*bench.Result{r.Result, r.Alone} {
				if res != nil {
					lost, dup, ooo = lost+res.Lost, dup+res.Duplicated, ooo+res.OutOfOrder
				}
			}
		}
		s := fmt.Sprint(lost)
		if dup+ooo > 0 {
			s += fmt.Sprintf(" (+%d dup, %d reordered)", dup, ooo)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " / ")
}

func armNames(arms []*arm) []string {
	names := make([]string, len(arms))
	for i, a := range arms {
		names[i] = a.name
	}
	return names
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// formatSmall renders figures that are mostly below 10 (µs per message,
// writes per delivery) with two decimals.
func formatSmall(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return formatFigure(v)
}

func formatFigure(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// hashFor is a bcrypt hash of password for the arms' users.
func hashFor(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}
