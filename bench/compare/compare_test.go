package compare

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/bench"
	"github.com/pubgate/pubgate/internal/testutil"
)

// comparisonTable renders the W0, W1, W2 and W4 rows for three arms. W4's
// runs measured 10, 40 and 160 bytes per connection. W0's servers used 1, 2
// and 4 s of CPU for 10⁶ published (and delivered) messages; W2's 10, 20
// and 50 s for 10⁴ published and 10⁶ delivered messages; W1's runs did not
// measure CPU.
func comparisonTable(t *testing.T, o Options) string {
	t.Helper()
	arms := []*arm{{name: "redis"}, {name: "redis-tls"}, {name: "pubgate"}}
	var chosen []workload
	for _, w := range compareWorkloads() {
		if slices.Contains([]string{"W0", "W1", "W2", "W4"}, w.name) {
			chosen = append(chosen, w)
		}
	}
	results := map[string]map[string][]armRun{"W0": {}, "W1": {}, "W2": {}, "W4": {}}
	for i, a := range arms {
		results["W0"][a.name] = []armRun{{Result: &bench.Result{Published: 1e6, Delivered: 1e6, PublishRate: 1e5, DeliveryRate: 1e5},
			Measured: measured{cpu: []time.Duration{1, 2, 4}[i] * time.Second, cpuMeasured: true}}}
		results["W1"][a.name] = []armRun{{Result: &bench.Result{PublishRate: 1000 * float64(i+1), DeliveryRate: 1000}}}
		results["W2"][a.name] = []armRun{{Result: &bench.Result{Published: 1e4, Delivered: 1e6, PublishRate: 1e3, DeliveryRate: 1e5},
			Measured: measured{cpu: []time.Duration{10, 20, 50}[i] * time.Second, cpuMeasured: true}}}
		results["W4"][a.name] = []armRun{{Result: &bench.Result{}, Measured: measured{bytesPerConn: []float64{10, 40, 160}[i]}}}
	}
	var out bytes.Buffer
	writeComparison(&out, o, chosen, arms, results)
	return out.String()
}

// TestCompareTableSmokeLeavesMemoryOut: a --smoke run prints no memory per
// connection and no ratio of it (200 connections for a second measure the
// runtime's start-up), while the full run prints both.
func TestCompareTableSmokeLeavesMemoryOut(t *testing.T) {
	full := comparisonTable(t, Options{Repeat: 3, Duration: 4 * time.Second})
	if !strings.Contains(full, "| bytes/conn | 10 | 40 | 160 | 4.00× |") {
		t.Errorf("full run lacks the memory row:\n%s", full)
	}
	smoke := comparisonTable(t, Options{Repeat: 1, Duration: time.Second, Smoke: true})
	if !strings.Contains(smoke, "| bytes/conn | — | — | — | "+notInSmoke+" |") || strings.Contains(smoke, "4.00×") {
		t.Errorf("smoke run shows a memory figure:\n%s", smoke)
	}
	if !strings.Contains(smoke, "| publish/s | 1000 | 2000 | 3000 | 1.50× |") {
		t.Errorf("smoke run lacks W1's rates:\n%s", smoke)
	}
}

// TestCompareTableShowsCPUPerMessage: W0 has its rows, and the servers' CPU
// time is shown per published message (W0) or per delivered one (fan-out,
// W2), with the ratio pubgate / redis-tls, in smoke runs too; a run that
// did not measure it shows a dash, not a zero.
func TestCompareTableShowsCPUPerMessage(t *testing.T) {
	for _, smoke := range []bool{false, true} {
		table := comparisonTable(t, Options{Repeat: 1, Duration: time.Second, Smoke: smoke})
		for _, want := range []string{
			"| W0 baseline: 1 publisher (pipeline 16), 1 channel, 1 subscriber | publish/s | 100k | 100k | 100k | 1.00× |",
			"|  | " + cpuFigure + " | 1.00 | 2.00 | 4.00 | 2.00× |", // W0: per published message
			"|  | " + cpuFigure + " | 10.0 | 20.0 | 50.0 | 2.50× |", // W2: per delivered message
			"|  | " + cpuFigure + " | — | — | — | — |",              // W1: not measured
			"\n" + cpuFigure + ": " + cpuNote + "\n",
		} {
			if !strings.Contains(table, want) {
				t.Errorf("smoke %v: the table lacks %q:\n%s", smoke, want, table)
			}
		}
	}
}

// TestCompareRateWorkloadsMeasureCPU: the workloads are W0 to W8 (what
// `pubgate bench compare` runs by default, and so in --smoke), and every
// workload that reports a rate also reports the server's CPU per message:
// per delivery for fan-out (W2), per publish otherwise.
func TestCompareRateWorkloadsMeasureCPU(t *testing.T) {
	if names := WorkloadNames(); !slices.Equal(names, []string{"W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"}) {
		t.Errorf("workloads %v, want W0 to W8", names)
	}
	perDelivery := measured{cpu: time.Second, cpuMeasured: true}
	r := &bench.Result{Published: 1e3, Delivered: 1e6}
	var withCPU []string
	for _, w := range compareWorkloads() {
		var cpu []figure
		rates := false
		for _, f := range w.figures {
			if f.cpu {
				cpu = append(cpu, f)
			}
			rates = rates || f.name == publishRate.name || f.name == deliveryRate.name
		}
		if !rates {
			continue
		}
		withCPU = append(withCPU, w.name)
		if len(cpu) != 1 || cpu[0].name != cpuFigure || !cpu[0].lowerBetter {
			t.Errorf("%s's CPU figures: %+v", w.name, cpu)
			continue
		}
		want := 1e6 / 1e3 // µs per publish
		if w.name == "W2" {
			want = 1 // µs per delivery: 1e6 µs of CPU over 1e6 deliveries
		}
		if got := cpu[0].value(r, perDelivery); got != want {
			t.Errorf("%s: CPU µs/msg %v, want %v", w.name, got, want)
		}
		if got := cpu[0].value(r, measured{}); !math.IsNaN(got) {
			t.Errorf("%s: CPU µs/msg of a run that did not measure it is %v, not NaN", w.name, got)
		}
	}
	if !slices.Equal(withCPU, []string{"W0", "W1", "W2", "W5", "W6"}) {
		t.Errorf("workloads measuring CPU: %v, want W0, W1, W2, W5 and W6", withCPU)
	}
}

func TestCompareParseProcStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 1234, stime 567.
	stat := "4242 (redis-server *:6379) x) S 1 4242 4242 0 -1 4194560 1530 0 0 0 1234 567 0 0 20 0 5 0 12345 1000000 2000 18446744073709551615\n"
	got, ok := parseProcStatCPU(stat, 100)
	if !ok || got != 18010*time.Millisecond {
		t.Errorf("parseProcStatCPU = %v, %v; want 18.01s", got, ok)
	}
	if got, ok := parseProcStatCPU(stat, 1000); !ok || got != 1801*time.Millisecond {
		t.Errorf("at 1000 ticks/s: %v, %v; want 1.801s", got, ok)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 1530 0 0 0 a 567 0"} {
		if _, ok := parseProcStatCPU(bad, 100); ok {
			t.Errorf("parseProcStatCPU(%q) succeeded", bad)
		}
	}
}

// TestCompareArmCPU reads this process's CPU time as an arm's, before and
// after spending some, and finds what getrusage finds (which would not be
// so with the wrong clock ticks).
func TestCompareArmCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/<pid>/stat is Linux's")
	}
	if tick := clockTicks(); tick != 100 {
		t.Errorf("clock ticks %d/s, want 100 (Linux's USER_HZ)", tick)
	}
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	a := &arm{proc: &exec.Cmd{Process: self}}
	rusage := func() time.Duration { return testutil.ProcessCPU(t) }
	before, ok := a.cpu()
	if !ok {
		t.Fatal("cannot read this process's CPU time")
	}
	ruBefore := rusage()
	// Spin until 300 ms of CPU are spent, however busy the machine.
	for deadline := time.Now().Add(30 * time.Second); rusage()-ruBefore < 300*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("could not spend 300 ms of CPU in 30 s")
		}
	}
	spent := rusage() - ruBefore
	after, ok := a.cpu()
	// /proc counts in ticks of 10 ms, read at other instants than getrusage.
	if got := after - before; !ok || got < spent-50*time.Millisecond || got > spent+50*time.Millisecond {
		t.Errorf("/proc/self/stat says %v of CPU went by, getrusage %v", got, spent)
	}
}

// TestCompareSmoke runs W0 and W2 on the three arms, as --smoke does (but
// shorter), and checks that every arm's CPU per message was measured.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	redisServer := testutil.RequireBinary(t, "redis-server")
	o := Options{Repeat: 1, Duration: 500 * time.Millisecond, Idle: 200, Smoke: true, Workloads: []string{"W0", "W2"},
		PolicyDir: "../../examples/policies", Out: t.TempDir(), BcryptCost: 4, RedisServer: redisServer, Pubgate: pubgateBinary(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	if err := Run(ctx, o, &out, &logs); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), logs.String())
	}
	number := `[0-9]+(\.[0-9]+)?k?`
	cpuRow := regexp.MustCompile(fmt.Sprintf(`\| %s \| %s \| %s \| %s \| %s× \|`, regexp.QuoteMeta(cpuFigure), number, number, number, number))
	if n := len(cpuRow.FindAllString(out.String(), -1)); n != 2 {
		t.Errorf("%d rows of measured CPU per message, want 2 (W0, W2):\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "| W0 baseline: ") {
		t.Errorf("no W0 row:\n%s", out.String())
	}
}

// TestCompareSumMetric reads a counter's samples across label sets from
// the Prometheus text format, and no other metric that shares its prefix.
func TestCompareSumMetric(t *testing.T) {
	text := `# HELP pubgate_delivered_messages_total messages queued to clients
# TYPE pubgate_delivered_messages_total counter
pubgate_delivered_messages_total{tenant="acme"} 1200
pubgate_delivered_messages_total{tenant="globex"} 34
pubgate_delivered_messages_total_extra 99
pubgate_client_writes_total 5.5e+02
`
	if v, ok := sumMetric(text, "pubgate_delivered_messages_total"); !ok || v != 1234 {
		t.Errorf("delivered = %v, %v; want 1234", v, ok)
	}
	if v, ok := sumMetric(text, "pubgate_client_writes_total"); !ok || v != 550 {
		t.Errorf("writes = %v, %v; want 550", v, ok)
	}
	if _, ok := sumMetric(text, "pubgate_missing_total"); ok {
		t.Error("a missing metric was found")
	}
}

// TestComparePickWorkloads: an unknown workload name is an error, not an
// empty table; known ones come in their order.
func TestComparePickWorkloads(t *testing.T) {
	if _, err := pickWorkloads([]string{"W1", "w2"}); err == nil || !strings.Contains(err.Error(), `"w2"`) {
		t.Errorf("unknown workload: %v, want an error naming it", err)
	}
	chosen, err := pickWorkloads([]string{"W2", "W0"})
	if err != nil || len(chosen) != 2 || chosen[0].name != "W0" || chosen[1].name != "W2" {
		t.Errorf("picked %v, %v; want W0, W2", chosen, err)
	}
}
