package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions select and report Rego unit tests.
type TestOptions struct {
	Paths   []string
	Run     string // regular expression selecting tests, as opa test --run
	Verbose bool
	Output  io.Writer
	// Timeout bounds each test (default 30s; opa test's 5s is tight for
	// exhaustive table tests on a slow or race-instrumented build).
	Timeout time.Duration
}

// Test runs the Rego unit tests (rules named test_*) found under the paths
// with OPA's tester and reports them as `opa test` does. passed is false
// when a test failed or errored, err when the policy did not load or holds
// no test.
func Test(ctx context.Context, o TestOptions) (passed bool, err error) {
	modules, store, err := tester.Load(o.Paths, nil)
	if err != nil {
		return false, fmt.Errorf("policy: %w", err)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return false, err
	}
	defer store.Abort(ctx, txn)
	results, err := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		CapturePrintOutput(true).
		SetTimeout(cmp.Or(o.Timeout, 30*time.Second)).
		Filter(o.Run).
		RunTests(ctx, txn)
	if err != nil {
		return false, fmt.Errorf("policy: %w", err)
	}
	counted := make(chan *tester.Result)
	var total, bad int
	go func() {
		defer close(counted)
		for r := range results {
			total++
			if r.Fail || r.Error != nil {
				bad++
			}
			counted <- r
		}
	}()
	if err := (tester.PrettyReporter{Output: o.Output, Verbose: o.Verbose, FailureLine: true}).Report(counted); err != nil {
		return false, err
	}
	if total == 0 {
		return false, errNoTests
	}
	return bad == 0, nil
}

var errNoTests = errors.New("policy: no tests found (rules named test_*)")
