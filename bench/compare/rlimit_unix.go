//go:build unix

package compare

import "syscall"

// raiseOpenFiles sets the soft limit on open files to the hard limit and
// returns it. Go raises its own soft limit at start-up but gives children
// the original one back; setting it here explicitly makes the servers the
// comparison starts inherit the raised limit.
func raiseOpenFiles() (limit uint64, ok bool, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false, err
	}
	return lim.Cur, true, nil
}
