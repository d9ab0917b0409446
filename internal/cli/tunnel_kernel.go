package cli

import (
	"context"
	"errors"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func runKernelTunnel(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, f *tunnelRunFlags, name string) error {
	return errors.New("--mode kernel: not built yet")
}
