package main

import "testing"

// TestBenchCompareFlags: `pubgate bench compare` runs W0 to W8 by default
// (and so in --smoke), and its sizes of W6–W8 are package compare's.
func TestBenchCompareFlags(t *testing.T) {
	f := newBenchCompareCommand().Flags()
	for flag, want := range map[string]string{
		"workloads":         "[W0,W1,W2,W3,W4,W5,W6,W7,W8]",
		"fresh-channels":    "10000",
		"storm-clients":     "2000",
		"storm-bcrypt-cost": "10",
		"storm-timeout":     "1m0s",
		"noise-patterns":    "30000",
		"pubgate":           "",
	} {
		if got := f.Lookup(flag).DefValue; got != want {
			t.Errorf("--%s defaults to %q, want %q", flag, got, want)
		}
	}
}
