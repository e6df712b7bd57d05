package testutil

import (
	"syscall"
	"testing"
	"time"
)

// ProcessCPU is the CPU time (user and system, every thread) the test
// process has used so far, for benchmarks that report CPU per operation.
func ProcessCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
