package compare

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/pubgate/pubgate/internal/testutil"
)

// binDir holds the pubgate binary the tests that start the arms build.
var binDir string

// TestMain makes the directory the pubgate binary is built in, and removes
// it when the tests end.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pubgate-compare-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildPubgate builds the pubgate command once, for the pubgate arm: the
// real binary, as `pubgate bench compare` runs it (the test binary is not
// pubgate). Tests of the tables and options need none.
var buildPubgate = sync.OnceValues(func() (string, error) { return testutil.BuildPubgate(binDir) })

// pubgateBinary is the pubgate binary, built on first use; a failed build
// fails the test with its output.
func pubgateBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildPubgate()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
