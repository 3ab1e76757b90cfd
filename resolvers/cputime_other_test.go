//go:build !unix

package resolvers_test

import "time"

// processCPU is not known here: the benchmarks leave out their CPU figures.
func processCPU() time.Duration { return 0 }
