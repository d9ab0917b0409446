// Package cli implements the apoxy command: the server (`apoxy server`, `apoxy dev`) and the
// client verbs, which follow kubectl conventions and reuse kubectl's own command machinery
// against the current project's API.
package cli

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// globalFlags are the flags every command shares.
type globalFlags struct {
	config    string
	project   string
	namespace string
	verbose   int
}

func (g *globalFlags) configPath() string {
	if g.config != "" {
		return g.config
	}
	if env := os.Getenv("APOXY_CONFIG"); env != "" {
		return env
	}
	return DefaultConfigPath()
}

// NewRootCommand builds the apoxy command tree writing to the given streams.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "apoxy",
		Short: "Apoxy: a self-hostable edge platform",
		Long: `Apoxy runs your edge: Gateways accept traffic, Routes send it to Backends, and everything is a
Kubernetes-style object you apply with 'apoxy apply -f'.

Start a local server with 'apoxy dev', then point the CLI at it with --config DIR/config.yaml
(or APOXY_CONFIG), or kubectl at DIR/kubeconfig. 'apoxy status' then shows the server, the
project, its Gateways and whatever needs attention; 'apoxy api-resources' every kind.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "CLI config file (default $APOXY_CONFIG or ~/.apoxy/config.yaml)")
	pf.StringVar(&g.project, "project", "", "project to act on (default: the config's currentProject)")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace of namespaced objects (default \"default\")")
	pf.IntVarP(&g.verbose, "verbose", "v", 0, "log verbosity (server: 1 = info, 2+ = debug)")

	getter := &clientGetter{g: g}
	f := cmdutil.NewFactory(getter)

	root.AddCommand(
		newServerCommand(g, streams, false),
		newServerCommand(g, streams, true),
		newStatusCommand(getter, streams),
		newApplyCommand(f, streams),
		newGetCommand(f, streams),
		newAPIResourcesCommand(f, streams),
		newDescribeCommand(f, streams),
		newEditCommand(f, streams),
		newDeleteCommand(f, streams),
		newDiffCommand(f, streams),
		newExplainCommand(getter, f, streams),
		newGatewayCommand(getter, streams),
		newEdgeFunctionCommand(getter, streams),
		newDomainCommand(getter, f, streams),
		newTunnelCommand(getter, f, streams),
		newKVCommand(getter, streams),
		newTranslateCommand(streams),
		newProjectCommand(getter, streams),
		newVersionCommand(getter, streams),
		newLogsCommand(getter, streams),
		newTopCommand(getter, streams),
	)
	return root
}
