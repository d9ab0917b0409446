package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	"apoxy.dev/apoxy/internal/resource"
)

var projectKind = resource.MustKindOf(&platformv1a1.Project{})

func newProjectCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{
		Use:     "project",
		Aliases: []string{"projects", "proj"},
		Short:   "List, create, switch and delete projects",
		Long: `A project is an isolated tenant with its own API at SERVER/projects/NAME, its own storage
and keys. Listing every project, creating and deleting them needs the admin key; 'use' switches
the CLI's current project.`,
	}
	c.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List projects", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return listProjects(cmd.Context(), getter, streams) },
		},
		&cobra.Command{
			Use: "create NAME", Short: "Create a project and store its key in the CLI config", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return createProject(cmd.Context(), getter, streams, args[0])
			},
		},
		&cobra.Command{
			Use: "use NAME", Short: "Make NAME the current project", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return useProject(cmd.Context(), getter, streams, args[0])
			},
		},
		&cobra.Command{
			Use: "delete NAME", Short: "Delete a project and everything in it", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return deleteProject(cmd.Context(), getter, streams, args[0])
			},
		},
	)
	return c
}

func adminClient(getter *clientGetter) (dynamic.ResourceInterface, error) {
	rc, err := getter.adminRESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return dc.Resource(projectKind.GVR()), nil
}

func listProjects(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams) error {
	cfg, err := getter.load()
	if err != nil {
		return err
	}
	current, _ := getter.project()
	w := tabwriter.NewWriter(streams.Out, 0, 8, 3, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "CURRENT\tNAME\tREADY\tAGE")
	mark := func(name string) string {
		if name == current {
			return "*"
		}
		return ""
	}
	if cfg.AdminToken == "" {
		// Without the admin key, list the projects this config holds keys for.
		for _, p := range cfg.Projects {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", mark(p.Name), p.Name, "?", "?")
		}
		return nil
	}
	client, err := adminClient(getter)
	if err != nil {
		return err
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range list.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", mark(p.GetName()), p.GetName(), readyStatus(&p), age(p.GetCreationTimestamp().Time))
	}
	return nil
}

func readyStatus(p *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			return fmt.Sprint(m["status"])
		}
	}
	return "Unknown"
}

func age(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// fetchToken reads a project's key from the server (admin only).
func fetchToken(ctx context.Context, getter *clientGetter, name string) (string, error) {
	client, err := adminClient(getter)
	if err != nil {
		return "", err
	}
	creds, err := client.Get(ctx, name, metav1.GetOptions{}, "credentials")
	if err != nil {
		return "", err
	}
	token, _, _ := unstructured.NestedString(creds.Object, "token")
	if token == "" {
		return "", fmt.Errorf("server returned no key for project %q", name)
	}
	return token, nil
}

func createProject(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, name string) error {
	client, err := adminClient(getter)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": projectKind.GVK.GroupVersion().String(), "kind": projectKind.GVK.Kind,
		"metadata": map[string]any{"name": name},
	}}
	if _, err := client.Create(ctx, obj, metav1.CreateOptions{FieldManager: "apoxy-cli"}); err != nil {
		return err
	}
	// The project's API starts within moments of the create; wait for it before handing out a key.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := client.Get(ctx, name, metav1.GetOptions{})
		if err == nil && readyStatus(p) == "True" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("project %q was created but its API is not ready after 30s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	token, err := fetchToken(ctx, getter, name)
	if err != nil {
		return err
	}
	getter.cfg.SetProject(name, token)
	if err := getter.cfg.Save(""); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "project.platform.apoxy.dev/%s created\n", name)
	return nil
}

func useProject(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, name string) error {
	cfg, err := getter.load()
	if err != nil {
		return err
	}
	if p := cfg.Project(name); p == nil || p.Token == "" {
		if cfg.AdminToken == "" {
			return fmt.Errorf("no key for project %q in %s: ask an admin for one", name, cfg.path)
		}
		token, err := fetchToken(ctx, getter, name)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("project %q does not exist; create it with `apoxy project create %s`", name, name)
		}
		if err != nil {
			return err
		}
		cfg.SetProject(name, token)
	}
	cfg.CurrentProject = name
	if err := cfg.Save(""); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "Switched to project %q.\n", name)
	return nil
}

func deleteProject(ctx context.Context, getter *clientGetter, streams genericiooptions.IOStreams, name string) error {
	client, err := adminClient(getter)
	if err != nil {
		return err
	}
	if err := client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	cfg := getter.cfg
	cfg.RemoveProject(name)
	if cfg.CurrentProject == name {
		cfg.CurrentProject = "default"
	}
	if err := cfg.Save(""); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "project.platform.apoxy.dev/%s deleted\n", name)
	return nil
}
