package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pubgate/pubgate/bench"
)

// TestBenchAgainstPubgate runs `pubgate bench` as an operator would,
// against pubgate on its embedded engine over TLS with two tenants' logins:
// every acknowledged message arrives once, in order, and the JSON says so.
func TestBenchAgainstPubgate(t *testing.T) {
	g := startGateway(t, "memory://")
	code, out, errOut := runCLI(t, "", "bench", "--addr", g.addr(), "--cacert", g.caFile,
		"--tenant", "alice:alice-secret", "--tenant", "bob:bob-secret",
		"--publishers", "2", "--pipeline", "8", "--channels", "3", "--subscribers", "4", "--duration", "500ms", "--json")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errOut)
	}
	var r bench.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Published == 0 || r.PublishErrors != 0 || r.Delivered != r.Expected || r.Lost+r.Duplicated+r.OutOfOrder != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--payload", "10"},
		{"--tenant", "nocolon"},
		{"--tenant", "a:b", "--user", "a"},
		{"--rate", "100", "--publishers", "0"},
	} {
		if code, _, errOut := runCLI(t, "", append([]string{"bench", "--addr", "127.0.0.1:1"}, args...)...); code == 0 || !strings.Contains(errOut, "pubgate: ") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}
