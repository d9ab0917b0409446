package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/delete"
	"k8s.io/kubectl/pkg/cmd/describe"
	"k8s.io/kubectl/pkg/cmd/diff"
	"k8s.io/kubectl/pkg/cmd/edit"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/get"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// The read and edit verbs are kubectl's own commands bound to the current project, so flags,
// output formats (-o yaml|json|wide|name, -w) and error messages match what users know.

func newGetCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := get.NewCmdGet("apoxy", f, streams)
	c.Example = `  # List backends in the current project
  apoxy get backends

  # Show the default gateway as YAML, and watch routes change
  apoxy get gateway default -o yaml
  apoxy get httproutes -w`
	return c
}

func newDescribeCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return describe.NewCmdDescribe("apoxy", f, streams)
}

func newEditCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return edit.NewCmdEdit(f, streams)
}

func newDeleteCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return delete.NewCmdDelete(f, streams)
}

func newDiffCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return diff.NewCmdDiff(f, streams)
}

// newExplainCommand is kubectl's explain for kinds and fields, and, given a URL, explains
// which route serves that request and its effective TrafficPolicy
// (`apoxy explain http://api.example.com/v1 -H 'x-env: prod'`).
func newExplainCommand(getter *clientGetter, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := explain.NewCmdExplain("apoxy", f, streams)
	var headers []string
	var method string
	run := c.Run
	c.Run = nil
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 && (strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://")) {
			return explainURL(cmd.Context(), getter, streams.Out, args[0], method, headers)
		}
		run(cmd, args)
		return nil
	}
	c.Use = "explain (TYPE[.FIELD] | URL)"
	c.Example += `

  # Which route would serve this request, why the others did not, and its effective
  # TrafficPolicy with the object each block comes from
  apoxy explain http://api.example.com:8080/v1/users -H 'x-env: prod'`
	c.Flags().StringArrayVarP(&headers, "header", "H", nil, "request header NAME:VALUE (with a URL)")
	c.Flags().StringVarP(&method, "request-method", "X", "GET", "request method (with a URL)")
	return c
}
