package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"

	"apoxy.dev/apoxy/internal/version"
)

func newVersionCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	var clientOnly bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(streams.Out, "Client Version: %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if clientOnly {
				return nil
			}
			rc, err := getter.ToRESTConfig()
			if err != nil {
				return err
			}
			dc, err := discovery.NewDiscoveryClientForConfig(rc)
			if err != nil {
				return err
			}
			info, err := dc.ServerVersion()
			if err != nil {
				return fmt.Errorf("server %s: %w", rc.Host, err)
			}
			fmt.Fprintf(streams.Out, "Server: %s (Kubernetes API %s)\n", rc.Host, info.GitVersion)
			return nil
		},
	}
	c.Flags().BoolVar(&clientOnly, "client", false, "print only the client version")
	return c
}
