package cli

import (
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

func newExplainCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return explain.NewCmdExplain("apoxy", f, streams)
}
