package compare

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/pubgate/pubgate/bench"
)

// stormWorkload is W7: a reconnect storm, every client of a failed-over
// server connecting at once as one user (bcrypt cost 10 on pubgate, Redis
// ACL's SHA-256 on redis-tls): TLS handshake, AUTH, SUBSCRIBE. It runs on
// servers started for it, so that no login or policy decision is cached.
func stormWorkload() workload {
	return workload{
		name:    "W7",
		title:   "reconnect storm: --storm-clients (2,000) TLS clients at once as one user (bcrypt cost 10 on pubgate): connect, AUTH, SUBSCRIBE",
		figures: stormFigures,
		fresh:   true,
		run: func(ctx context.Context, _ workload, o Options, a *arm) (armRun, error) {
			return runStorm(ctx, o, a, o.StormClients)
		},
	}
}

// stormScalingClients are S4's sizes.
var stormScalingClients = []int{500, 2000}

// stormScaling is the storm by number of clients, for --scaling.
func stormScaling() []workload {
	var out []workload
	for _, n := range stormScalingClients {
		out = append(out, workload{
			name: fmt.Sprintf("S4 %d", n), title: fmt.Sprintf("reconnect storm: %d TLS clients at once as one user", n),
			figures: stormFigures, fresh: true,
			run: func(ctx context.Context, _ workload, o Options, a *arm) (armRun, error) {
				return runStorm(ctx, o, a, n)
			},
		})
	}
	return out
}

// stormValue reads a figure of W7's result (NaN for other runs).
func stormValue(get func(*bench.StormResult) float64) func(*bench.Result, measured) float64 {
	return func(_ *bench.Result, m measured) float64 {
		if m.storm == nil {
			return math.NaN()
		}
		return get(m.storm)
	}
}

var stormFigures = []figure{
	{name: "subscribed", value: stormValue(func(r *bench.StormResult) float64 { return float64(r.Subscribed) })},
	{name: "s to all subscribed", lowerBetter: true, format: formatSmall, note: stormNote,
		value: stormValue(func(r *bench.StormResult) float64 {
			if r.Failures() > 0 {
				return math.NaN() // never all
			}
			return r.Seconds
		})},
	{name: "refused", lowerBetter: true, value: stormValue(func(r *bench.StormResult) float64 { return float64(r.Refused) })},
	{name: "timed out", lowerBetter: true, value: stormValue(func(r *bench.StormResult) float64 { return float64(r.TimedOut) })},
	{name: "CPU ms/client", lowerBetter: true, cpu: true, format: formatSmall, note: stormCPUNote,
		value: func(_ *bench.Result, m measured) float64 {
			if m.storm == nil || !m.cpuMeasured {
				return math.NaN()
			}
			return float64(m.cpu.Microseconds()) / 1e3 / float64(m.storm.Clients)
		}},
}

const stormNote = "from the moment every client starts connecting until the last one's SUBSCRIBE is confirmed, " +
	"over the runs in which every client got subscribed (— if none did); refused counts connections the server " +
	"refused, reset or closed and error replies, timed out those that took longer than --storm-timeout (or 10 s to connect)."

const stormCPUNote = "the server process's CPU time (user + system) over the storm, per client: " +
	"TLS handshake, login (bcrypt on pubgate, SHA-256 on Redis) and SUBSCRIBE."

// runStorm connects clients at once to the arm as its storm user and
// measures the server's CPU time meanwhile.
func runStorm(ctx context.Context, o Options, a *arm, clients int) (armRun, error) {
	before, okBefore := a.cpu()
	res, err := bench.Storm(ctx, bench.StormOptions{Addr: a.addr, TLS: a.tls, Tenant: a.storm,
		Clients: clients, Timeout: o.StormTimeout})
	if err != nil {
		return armRun{}, err
	}
	after, okAfter := a.cpu()
	m := measured{storm: res, cpu: after - before, cpuMeasured: okBefore && okAfter}
	run := armRun{Result: &bench.Result{}, Measured: m, Storm: res}
	if m.cpuMeasured {
		run.ServerCPU = m.cpu.Seconds()
	}
	return run, nil
}

// writeStormFailures quotes, under the table, the first failures of every
// storm that had any: a count alone does not say what went wrong.
func writeStormFailures(w io.Writer, workloads []workload, arms []*arm, results map[string]map[string][]armRun) {
	for _, wl := range workloads {
		for _, a := range arms {
			for i, r := range results[wl.name][a.name] {
				if s := r.Storm; s != nil && s.Failures() > 0 {
					fmt.Fprintf(w, "\n%s on %s, run %d: %d of %d clients failed (%d refused, %d timed out), e.g.:\n  %s\n",
						wl.name, a.name, i+1, s.Failures(), s.Clients, s.Refused, s.TimedOut, strings.Join(s.Errors, "\n  "))
				}
			}
		}
	}
}
