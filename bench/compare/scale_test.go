package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pubgate/pubgate/bench"
	"github.com/pubgate/pubgate/internal/testutil"
)

// TestCompareManyChannelsStormAndNeighbour runs W6, W7 and W8 at a tiny
// size on the three arms: every arm's W6 CPU per message is measured, every
// storm client of every arm got subscribed, W8 reports each arm's rate with
// the neighbour over its rate alone, and the raw results keep the storm and
// the run alone. The storm user's hash has cost 4, not 10: the pubgate arm
// would spend most of the test hashing.
func TestCompareManyChannelsStormAndNeighbour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the three servers six times")
	}
	redisServer := testutil.RequireBinary(t, "redis-server")
	dir := t.TempDir()
	o := Options{Repeat: 1, Duration: 300 * time.Millisecond, Idle: 200, Smoke: true, Workloads: []string{"W6", "W7", "W8"},
		PolicyDir: "../../examples/policies", Out: dir, BcryptCost: 4, RedisServer: redisServer, Pubgate: pubgateBinary(t),
		FreshChannels: 40, StormClients: 30, StormBcryptCost: 4, StormTimeout: 30 * time.Second, NoisePatterns: 100}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	if err := Run(ctx, o, &out, &logs); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), logs.String())
	}
	table := out.String()
	number := `[0-9]+(\.[0-9]+)?k?`
	for _, want := range []string{
		fmt.Sprintf(`\| %s \| %s \| %s \| %s \| %s× \|`, regexp.QuoteMeta(cpuFigure), number, number, number, number), // W6
		`\| s to all subscribed \| ` + number + ` \| ` + number + ` \| ` + number + ` \|`,
		`\|  \| refused \| 0 \| 0 \| 0 \| — \|`,
		`\|  \| timed out \| 0 \| 0 \| 0 \| — \|`,
		`\| with / alone \| [0-9.]+ % \| [0-9.]+ % \| [0-9.]+ % \| [0-9.]+× \|`,
	} {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("the table lacks %s:\n%s", want, table)
		}
	}
	var storm armRun
	readJSON(t, filepath.Join(dir, "W7-pubgate-1.json"), &storm)
	if s := storm.Storm; s == nil || s.Subscribed != 30 || storm.ServerCPU <= 0 {
		t.Errorf("pubgate's storm: %+v, %v s of CPU", s, storm.ServerCPU)
	}
	var noisy armRun
	readJSON(t, filepath.Join(dir, "W8-redis-tls-1.json"), &noisy)
	if noisy.Alone == nil || noisy.Alone.Published == 0 || noisy.Result.Published == 0 {
		t.Errorf("redis-tls's W8 lacks a run: %+v", noisy)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestCompareStormFailuresAreQuoted: a storm with failures prints them
// under the table, with the first errors; one without prints nothing.
func TestCompareStormFailuresAreQuoted(t *testing.T) {
	arms := []*arm{{name: "redis-tls"}, {name: "pubgate"}}
	results := map[string]map[string][]armRun{"W7": {
		"redis-tls": {{Storm: &bench.StormResult{Clients: 10, Subscribed: 10}}},
		"pubgate":   {{Storm: &bench.StormResult{Clients: 10, Subscribed: 7, Refused: 1, TimedOut: 2, Errors: []string{"client 3: EOF"}}}},
	}}
	var out bytes.Buffer
	writeStormFailures(&out, []workload{stormWorkload()}, arms, results)
	want := "\nW7 on pubgate, run 1: 3 of 10 clients failed (1 refused, 2 timed out), e.g.:\n  client 3: EOF\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// TestCompareCheckOptions: options W6 and W7 cannot run are refused
// before any server starts.
func TestCompareCheckOptions(t *testing.T) {
	good := Options{Idle: 200, StormClients: 50, Pubgate: "pubgate"}.WithDefaults()
	if err := good.Check(); err != nil || good.FreshChannels != 10000 || good.StormBcryptCost != 10 || good.NoisePatterns != 30000 {
		t.Fatalf("good options %+v: %v", good, err)
	}
	for name, change := range map[string]func(*Options){
		"fresh-channels": func(o *Options) { o.FreshChannels = 10 },
		"storm-clients":  func(o *Options) { o.StormClients = 0 },
		"20,000 clients": func(o *Options) { o.StormClients = 30000 },
		"storm-timeout":  func(o *Options) { o.StormTimeout = 0 },
		"noise-patterns": func(o *Options) { o.NoisePatterns = -1 },
		"pubgate":        func(o *Options) { o.Pubgate = "" },
	} {
		o := good
		change(&o)
		if err := o.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), strings.Split(name, " ")[0]) && name != "20,000 clients" {
			t.Errorf("%s: %v does not name it", name, err)
		}
	}
}
