package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/bench"
)

// comparisonTable renders the W1 and W4 rows for three arms whose W4 runs
// measured 10, 40 and 160 bytes per connection.
func comparisonTable(t *testing.T, o compareOptions) string {
	t.Helper()
	arms := []*arm{{name: "redis"}, {name: "redis-tls"}, {name: "pubgate"}}
	var chosen []workload
	for _, w := range compareWorkloads() {
		if w.name == "W1" || w.name == "W4" {
			chosen = append(chosen, w)
		}
	}
	results := map[string]map[string][]armRun{"W1": {}, "W4": {}}
	for i, a := range arms {
		results["W1"][a.name] = []armRun{{Result: &bench.Result{PublishRate: 1000 * float64(i+1), DeliveryRate: 1000}}}
		results["W4"][a.name] = []armRun{{Result: &bench.Result{}, Measured: measured{bytesPerConn: []float64{10, 40, 160}[i]}}}
	}
	var out bytes.Buffer
	writeComparison(&out, o, chosen, arms, results)
	return out.String()
}

// TestComparisonSmokeLeavesMemoryOut: a --smoke run prints no memory per
// connection and no ratio of it (200 connections for a second measure the
// runtime's start-up), while the full run prints both.
func TestComparisonSmokeLeavesMemoryOut(t *testing.T) {
	full := comparisonTable(t, compareOptions{repeat: 3, duration: 4 * time.Second})
	if !strings.Contains(full, "| bytes/conn | 10 | 40 | 160 | 4.00× |") {
		t.Errorf("full run lacks the memory row:\n%s", full)
	}
	smoke := comparisonTable(t, compareOptions{repeat: 1, duration: time.Second, smoke: true})
	if !strings.Contains(smoke, "| bytes/conn | — | — | — | "+notInSmoke+" |") || strings.Contains(smoke, "4.00×") {
		t.Errorf("smoke run shows a memory figure:\n%s", smoke)
	}
	if !strings.Contains(smoke, "| publish/s | 1000 | 2000 | 3000 | 1.50× |") {
		t.Errorf("smoke run lacks W1's rates:\n%s", smoke)
	}
}
