//go:build unix

package resolvers_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used so far, user and system (0 where it is
// not known).
func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
