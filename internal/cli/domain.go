package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/kubectl/pkg/cmd/get"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	"apoxy.dev/apoxy/internal/acme"
)

var (
	domainRecordsGVR = corev1a3.SchemeGroupVersion.WithResource("domainrecords")
	domainZonesGVR   = corev1a3.SchemeGroupVersion.WithResource("domainzones")
)

// domainKind is what `apoxy domain` and `apoxy domain zone` act on: a kind whose objects may
// also be named by the DNS name they stand for.
type domainKind struct {
	gvr      schema.GroupVersionResource
	singular string
	// fqdn is the DNS name an object stands for.
	fqdn func(u *unstructured.Unstructured) string
}

var (
	recordKind = domainKind{domainRecordsGVR, "DomainRecord", func(u *unstructured.Unstructured) string {
		s, _, _ := unstructured.NestedString(u.Object, "spec", "name")
		return s
	}}
	zoneKind = domainKind{domainZonesGVR, "DomainZone", func(u *unstructured.Unstructured) string {
		if s, _, _ := unstructured.NestedString(u.Object, "spec", "domainName"); s != "" {
			return s
		}
		return u.GetName()
	}}
)

func canonicalName(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

// resolve finds the objects an argument names: the object of that name, else every object
// that stands for that DNS name (a name has one DomainRecord per record type).
func (k domainKind) resolve(ctx context.Context, dc dynamic.Interface, arg string) ([]string, error) {
	res := dc.Resource(k.gvr)
	if _, err := res.Get(ctx, arg, metav1.GetOptions{}); err == nil {
		return []string{arg}, nil
	}
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for i := range list.Items {
		if canonicalName(k.fqdn(&list.Items[i])) == canonicalName(arg) {
			names = append(names, list.Items[i].GetName())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no %s is named %q or stands for that DNS name (apoxy domain list shows them)", k.singular, arg)
	}
	return names, nil
}

// newDomainCommand is `apoxy domain`: DomainRecords (and `apoxy domain zone`: DomainZones),
// each named by its object name or by the DNS name it stands for.
func newDomainCommand(getter *clientGetter, f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{
		Use: "domain", Aliases: []string{"d", "domains", "domainrecord", "domainrecords", "dr"},
		Short: "List, show and delete DomainRecords by object name or FQDN; 'apoxy domain zone' for DomainZones",
		Long: `DomainRecords give names DNS data, or point them at a Gateway (which then gets a certificate).
A record is named here by its object name or by its FQDN (api.example.com): a name with several
record types is several DomainRecords, and the FQDN selects them all. Create and change them with
'apoxy apply -f'.`,
	}
	c.AddCommand(domainVerbs(getter, f, streams, recordKind, true)...)
	zone := &cobra.Command{Use: "zone", Aliases: []string{"zones", "dz"}, Short: "List, show and delete DomainZones by object name or DNS name"}
	zone.AddCommand(domainVerbs(getter, f, streams, zoneKind, false)...)
	c.AddCommand(zone)
	return c
}

// domainVerbs are list, get and delete for one kind; list filters records by --zone.
func domainVerbs(getter *clientGetter, f cmdutil.Factory, streams genericiooptions.IOStreams, k domainKind, records bool) []*cobra.Command {
	var output, zone string
	show := func(ctx context.Context, names []string) error {
		g := get.NewCmdGet("apoxy", f, streams)
		args := append([]string{k.gvr.Resource + "." + k.gvr.Group}, names...)
		if output != "" {
			args = append(args, "-o", output)
		}
		g.SetArgs(args)
		g.SilenceUsage = true
		return g.ExecuteContext(ctx)
	}
	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List " + k.singular + "s", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if zone == "" {
				return show(cmd.Context(), nil)
			}
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			zoneNames, err := zoneKind.resolve(cmd.Context(), dc, zone)
			if err != nil {
				return err
			}
			all, err := dc.Resource(k.gvr).List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			var names []string
			for _, u := range all.Items {
				z, _, _ := unstructured.NestedString(u.Object, "spec", "zone")
				for _, zn := range zoneNames {
					if z == zn {
						names = append(names, u.GetName())
					}
				}
			}
			if len(names) == 0 {
				fmt.Fprintf(streams.ErrOut, "No DomainRecords in zone %s.\n", zone)
				return nil
			}
			return show(cmd.Context(), names)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name")
	if records {
		list.Flags().StringVar(&zone, "zone", "", "only the records of this DomainZone (object name or DNS name)")
	}
	getCmd := &cobra.Command{
		Use: "get NAME|FQDN", Short: "Show " + k.singular + "s by object name or DNS name", Args: cobra.ExactArgs(1),
		Example: "  apoxy domain get api.example.com -o yaml\n  apoxy domain zone get example.com",
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			names, err := k.resolve(cmd.Context(), dc, args[0])
			if err != nil {
				return err
			}
			return show(cmd.Context(), names)
		},
	}
	getCmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name")
	del := &cobra.Command{
		Use: "delete NAME|FQDN", Aliases: []string{"rm"}, Short: "Delete " + k.singular + "s by object name or DNS name", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			names, err := k.resolve(cmd.Context(), dc, args[0])
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := dc.Resource(k.gvr).Delete(cmd.Context(), n, metav1.DeleteOptions{}); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "%s.%s %q deleted\n", strings.ToLower(k.singular), k.gvr.Group, n)
			}
			return nil
		},
	}
	if !records {
		return []*cobra.Command{list, getCmd, del}
	}
	renew := &cobra.Command{
		Use: "renew NAME|FQDN", Short: "Replace a DomainRecord's certificate now (the current one serves until the new one is issued)", Args: cobra.ExactArgs(1),
		Example: "  apoxy domain renew api.example.com\n  apoxy domain get api.example.com -o wide   # TLS and Cert-Expiry",
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := getter.dynamicClient()
			if err != nil {
				return err
			}
			names, err := k.resolve(cmd.Context(), dc, args[0])
			if err != nil {
				return err
			}
			stamp := time.Now().UTC().Format(time.RFC3339Nano)
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{acme.AnnRenew: stamp}}})
			for _, n := range names {
				if _, err := dc.Resource(k.gvr).Patch(cmd.Context(), n, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "domainrecord.%s %q: renewal requested\n", k.gvr.Group, n)
			}
			return nil
		},
	}
	return []*cobra.Command{list, getCmd, del, renew}
}
