package testutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// BuildPubgate builds the pubgate command (cmd/pubgate) into dir, with the
// go command on PATH (`go test` puts its own first), and returns the
// binary's path, for tests that run pubgate as a process of its own. The
// error carries the build's output.
func BuildPubgate(dir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building pubgate: %w", err)
	}
	bin := filepath.Join(dir, "pubgate")
	out, err := exec.Command(goCmd, "build", "-o", bin, "github.com/pubgate/pubgate/cmd/pubgate").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build -o %s github.com/pubgate/pubgate/cmd/pubgate: %w\n%s", bin, err, out)
	}
	return bin, nil
}
