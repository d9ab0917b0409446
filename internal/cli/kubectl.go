package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/apiresources"
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

// newAPIResourcesCommand is kubectl api-resources: every kind the project's API serves.
func newAPIResourcesCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := apiresources.NewCmdAPIResources(f, streams)
	c.Example = `  # Every kind the project's API serves, with short names and API versions
  apoxy api-resources

  # Only the Gateway API kinds, or only Apoxy's own
  apoxy api-resources --api-group gateway.apoxy.dev
  apoxy api-resources --api-group core.apoxy.dev -o wide`
	return c
}

// The kubectl verbs below keep kubectl's machinery and flags; their help speaks of Apoxy's
// kinds, not of pods.

func newDescribeCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := describe.NewCmdDescribe("apoxy", f, streams)
	c.Long = `Show an object in detail: its spec, its status conditions (why a Gateway or route is, or is not,
Accepted and Programmed) and related objects. Select one object by name, every object of a
kind, a name prefix, or a label selector.

Use "apoxy api-resources" for every kind the project's API serves.`
	c.Example = `  # Why is the default Gateway (not) Programmed?
  apoxy describe gateway default

  # Every HTTPRoute, or those whose names start with "api"
  apoxy describe httproutes
  apoxy describe httproutes api

  # Objects defined in a file
  apoxy describe -f route.yaml`
	return c
}

func newEditCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := edit.NewCmdEdit(f, streams)
	c.Long = `Edit an object in your editor ($APOXY_EDITOR, $KUBE_EDITOR or $EDITOR) and apply it when you save;
the server's validation errors bring you back to the file with the errors marked.

Use "apoxy api-resources" for every kind the project's API serves.`
	c.Example = `  # Edit the default Gateway
  apoxy edit gateway default

  # Edit a Backend as JSON
  apoxy edit backend api -o json`
	return c
}

func newDeleteCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := delete.NewCmdDelete(f, streams)
	c.Long = `Delete objects by file, by kind and name, or by kind and label selector. A deleted route stops
being served at once; a deleted Backend leaves the routes that name it unresolved (their status
says so).

Use "apoxy api-resources" for every kind the project's API serves.`
	c.Example = `  # Delete what a file defines
  apoxy delete -f route.yaml

  # Delete a route and a backend by name
  apoxy delete httproute api backend/api

  # Delete every EdgeFunction labelled team=web
  apoxy delete edgefunctions -l team=web`
	return c
}

func newDiffCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := diff.NewCmdDiff(f, streams)
	c.Long = `Show what 'apoxy apply -f' would change: the live objects against the file's, after the server's
defaults and validation (a server-side dry run). Exit status 0: no difference; 1: differences;
above 1: an error.`
	c.Example = `  # What would applying this change?
  apoxy diff -f route.yaml

  # A whole directory of manifests
  apoxy diff -f config/ -R`
	return c
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
	c.Long = `Explain a kind or one of its fields (the schema the server validates against), or, given a URL,
which route would serve that request, why the others would not, and its effective
TrafficPolicy.

Use "apoxy api-resources" for every kind the project's API serves.`
	c.Example = `  # A kind, a field, or every field of a kind
  apoxy explain httproute
  apoxy explain httproute.spec.rules.matches
  apoxy explain backend --recursive

  # Which route would serve this request, why the others did not, and its effective
  # TrafficPolicy with the object each block comes from
  apoxy explain http://api.example.com:8080/v1/users -H 'x-env: prod'`
	c.Flags().StringArrayVarP(&headers, "header", "H", nil, "request header NAME:VALUE (with a URL)")
	c.Flags().StringVarP(&method, "request-method", "X", "GET", "request method (with a URL)")
	return c
}
