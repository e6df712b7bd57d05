package compare

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/pubgate/pubgate/bench"
	"github.com/redis/go-redis/v9"
)

// noiseWorkload is W8: one tenant's (acme's) publish rate, W1's load,
// alone and while another tenant (globex) holds --noise-patterns pattern
// subscriptions that match none of acme's channels. A server that tries
// every pattern on every PUBLISH makes acme pay for globex; the figure
// that matters is each arm's rate with the neighbour over its rate
// without.
func noiseWorkload() workload {
	return workload{
		name:     "W8",
		title:    "noisy neighbour: acme publishes as in W1, alone and while globex holds --noise-patterns (30,000) patterns",
		options:  noisyOptions,
		figures:  noiseFigures,
		isolated: true,
		run: func(ctx context.Context, w workload, o Options, a *arm) (armRun, error) {
			return runNoisy(ctx, w, o, a, o.NoisePatterns)
		},
	}
}

// noiseScalingPatterns are the neighbour's patterns in --scaling.
var noiseScalingPatterns = []int{3000, 30000}

// neighbourPatterns is the most patterns W8's neighbour holds in a run
// with these options.
func neighbourPatterns(o Options) int {
	if o.Scaling {
		return slices.Max(noiseScalingPatterns)
	}
	return o.NoisePatterns
}

// noiseScaling is W8 with n patterns, for --scaling.
func noiseScaling(n int) workload {
	return workload{
		name: fmt.Sprintf("S5 %d", n), title: fmt.Sprintf("noisy neighbour: acme's W1 load, alone and with %d patterns of globex", n),
		options: noisyOptions, figures: noiseFigures, isolated: true,
		run: func(ctx context.Context, w workload, o Options, a *arm) (armRun, error) {
			return runNoisy(ctx, w, o, a, n)
		},
	}
}

// noisyOptions is W1's load, acme's alone: 4 publishers (pipeline 16) over
// 16 channels and a subscriber of them.
func noisyOptions(o Options, a *arm) bench.Options {
	b := baseOptions(o, a)
	b.Publishers, b.Pipeline, b.Channels, b.Subscribers = 4, 16, 16, 1
	return b
}

var noiseFigures = []figure{
	{name: "publish/s alone", value: func(_ *bench.Result, m measured) float64 {
		if m.alone == nil {
			return math.NaN()
		}
		return m.alone.PublishRate
	}},
	{name: "publish/s with neighbour", value: func(r *bench.Result, _ measured) float64 { return r.PublishRate }},
	{name: "with / alone", format: formatShare, note: noiseNote, value: func(r *bench.Result, m measured) float64 {
		if m.alone == nil || m.alone.PublishRate == 0 {
			return math.NaN()
		}
		return r.PublishRate / m.alone.PublishRate
	}},
	{name: cpuFigure + " with neighbour", lowerBetter: true, cpu: true, format: formatSmall, note: "as " + cpuFigure + ", over the run with the neighbour's patterns.",
		value: func(r *bench.Result, m measured) float64 { return m.cpuPer(r.Published) }},
}

const noiseNote = "the arm's publish rate with the neighbour's patterns over its rate alone, medians of the per-run ratios; " +
	"the ratio column compares what pubgate keeps with what Redis with TLS keeps."

// formatShare renders a fraction as a percentage, with a decimal below 10 %.
func formatShare(v float64) string {
	if v < 0.1 {
		return fmt.Sprintf("%.1f %%", 100*v)
	}
	return fmt.Sprintf("%.0f %%", 100*v)
}

// noiseSetupTimeout bounds subscribing the neighbour's patterns (through
// pubgate, a cold policy decision each).
const noiseSetupTimeout = 5 * time.Minute

// runNoisy runs w on the arm alone, then again while the arm's second
// tenant holds patterns patterns.
func runNoisy(ctx context.Context, w workload, o Options, a *arm, patterns int) (armRun, error) {
	alone, err := runWorkload(ctx, w, o, a)
	if err != nil {
		return armRun{}, fmt.Errorf("alone: %w", err)
	}
	setup, cancel := context.WithTimeout(ctx, noiseSetupTimeout)
	defer cancel()
	if err := a.allowNoise(setup, patterns); err != nil {
		return armRun{}, err
	}
	noise, err := bench.HoldPatterns(setup, bench.NoiseOptions{Addr: a.addr, TLS: a.tls, Tenant: a.tenants[1], Patterns: patterns})
	if err != nil {
		return armRun{}, err
	}
	noisy, err := runWorkload(ctx, w, o, a)
	noise.Close()
	if err != nil {
		return armRun{}, fmt.Errorf("with the neighbour: %w", err)
	}
	noisy.Alone, noisy.Measured.alone = alone.Result, alone.Result
	noisy.NoiseRefusals = noise.Refusals
	return noisy, nil
}

// aclChunk is how many patterns one ACL SETUSER adds.
const aclChunk = 1000

// allowNoise lets globex's ACL user PSUBSCRIBE the first n noise patterns,
// on the arm with ACL users. Redis checks a PSUBSCRIBE's pattern literally
// against the user's, so each must be listed; they are added when W8
// first needs them rather than in the configuration file, because Redis
// adds a user's patterns in quadratic time (30,000 took 17 s to load) and
// the arms restart for W4 and W7.
func (a *arm) allowNoise(ctx context.Context, n int) error {
	if a.aclAdmin == nil || n <= a.noiseAllowed {
		return nil
	}
	c := redis.NewClient(&redis.Options{Addr: a.addr, TLSConfig: a.tls, Username: a.aclAdmin.User, Password: a.aclAdmin.Password,
		DisableIdentity: true, ReadTimeout: time.Minute})
	defer c.Close()
	for from := a.noiseAllowed; from < n; from += aclChunk {
		args := []any{"ACL", "SETUSER", "globex"}
		for i := from; i < min(n, from+aclChunk); i++ {
			args = append(args, "&"+bench.NoisePattern("globex:", i))
		}
		if err := c.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("%s: allowing globex's noise patterns: %w", a.name, err)
		}
		a.noiseAllowed = min(n, from+aclChunk)
	}
	return nil
}

// writeNoiseRefusals says, under the table, which arms refused some of the
// neighbour's PSUBSCRIBEs before accepting them when sent again: the
// neighbour got its patterns, but a real client would have seen errors.
func writeNoiseRefusals(w io.Writer, workloads []workload, arms []*arm, results map[string]map[string][]armRun) {
	for _, wl := range workloads {
		for _, a := range arms {
			for i, r := range results[wl.name][a.name] {
				if r.NoiseRefusals > 0 {
					fmt.Fprintf(w, "\n%s on %s, run %d: the neighbour's PSUBSCRIBEs (%d patterns each) refused and sent again: %d.\n",
						wl.name, a.name, i+1, bench.NoiseChunk, r.NoiseRefusals)
				}
			}
		}
	}
}
