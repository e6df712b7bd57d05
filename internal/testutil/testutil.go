// Package testutil starts the real servers pubgate's tests talk to
// (redis-server, plain or TLS, and Sentinel and Cluster set-ups, on free
// loopback ports) and holds small helpers shared by tests: test CAs, waiting
// for a condition and a raw RESP client for checking replies byte for byte.
package testutil

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where a missing external
// program is a failure rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") != "" }

// RequireBinary returns the path of an external program the test needs. In CI
// a missing program fails the test; elsewhere it skips it.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if InCI() {
		t.Fatalf("%s not found on PATH (run .ci/run, which installs it): %v", name, err)
	}
	t.Skipf("%s not installed; run .ci/run to install test dependencies", name)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond until it holds, failing the test with what after a
// generous liveness deadline. It is for waiting, never for timing.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if poll(func() error {
		if cond() {
			return nil
		}
		return errors.New("false")
	}) != nil {
		t.Fatalf("condition never became true: %s", what)
	}
}

// EventuallyNoError is Eventually for a check that can say why it does not
// hold yet: a failure reports the last reason, which for a multi-process
// topology is what tells a slow start from a broken one.
func EventuallyNoError(t testing.TB, what string, check func() error) {
	t.Helper()
	if err := poll(check); err != nil {
		t.Fatalf("condition never became true: %s; last: %v", what, err)
	}
}

// poll calls check until it returns nil or a generous liveness deadline
// passes, returning the last error.
func poll(check func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for wait := time.Millisecond; ; wait = min(wait*2, 100*time.Millisecond) {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// Addr joins the loopback address and port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
