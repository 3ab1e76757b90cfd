package main

import (
	"context"
	"io"

	"orchard/apple/applesim"
)

// applesimCmd runs the Apple simulator standalone (see apple/applesim/README.md).
func applesimCmd(ctx context.Context, args []string, stdout, _ io.Writer) error {
	return applesim.Run(ctx, args, stdout)
}
