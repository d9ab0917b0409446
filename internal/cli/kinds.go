package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"apoxy.dev/apoxy/internal/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"
)

// UpstreamGatewayGroup is the Gateway API's own group. Apoxy serves the same kinds, with the
// same schemas, under gateway.apoxy.dev; `apoxy apply` takes manifests written for the
// upstream group (copied from the Gateway API docs) and applies them as ours.
const UpstreamGatewayGroup = "gateway.networking.k8s.io"

// ourGatewayGroup is where Apoxy serves the Gateway API kinds.
const ourGatewayGroup = "gateway.apoxy.dev"

// servedKinds is what the server serves: each group/version's kinds, from discovery.
type servedKinds struct {
	// byGV is "group/version" (core: "v1") → kinds.
	byGV map[string][]string
}

// loadServedKinds asks the server what it serves. A group the server could not list is left
// out (its manifests then fail in apply itself, with the server's error).
func loadServedKinds(dc discovery.DiscoveryInterface) (*servedKinds, error) {
	_, lists, err := dc.ServerGroupsAndResources()
	if len(lists) == 0 && err != nil {
		return nil, err
	}
	s := &servedKinds{byGV: map[string][]string{}}
	for _, l := range lists {
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || slices.Contains(s.byGV[l.GroupVersion], r.Kind) {
				continue // subresources
			}
			s.byGV[l.GroupVersion] = append(s.byGV[l.GroupVersion], r.Kind)
		}
	}
	return s, nil
}

func (s *servedKinds) serves(apiVersion, kind string) bool {
	return slices.Contains(s.byGV[apiVersion], kind)
}

// versionsOf lists the group/versions that serve kind, sorted.
func (s *servedKinds) versionsOf(kind string) []string {
	var out []string
	for gv, kinds := range s.byGV {
		if slices.Contains(kinds, kind) {
			out = append(out, gv)
		}
	}
	sort.Strings(out)
	return out
}

// translate is the apiVersion apply uses for a manifest's: an upstream Gateway API group
// and version becomes ours when we serve the kind there.
func (s *servedKinds) translate(apiVersion, kind string) (string, bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Group != UpstreamGatewayGroup {
		return apiVersion, false
	}
	ours := schema.GroupVersion{Group: ourGatewayGroup, Version: gv.Version}.String()
	if s.serves(ours, kind) {
		return ours, true
	}
	return apiVersion, false
}

// check says what is wrong with a manifest's apiVersion and kind, naming the nearest thing
// the server does serve; nil when it serves them.
func (s *servedKinds) check(apiVersion, kind string) error {
	if s.serves(apiVersion, kind) {
		return nil
	}
	const hint = " ('apoxy api-resources' lists every kind)"
	if vs := s.versionsOf(kind); len(vs) > 0 {
		return fmt.Errorf("kind %s is not served as %s; it is served as %s%s", kind, apiVersion, strings.Join(vs, ", "), hint)
	}
	var all []string
	for _, kinds := range s.byGV {
		all = append(all, kinds...)
	}
	if near := resource.Nearest(kind, all); near != "" {
		return fmt.Errorf("no kind %q is served: did you mean %s (%s)?%s", kind, near, strings.Join(s.versionsOf(near), ", "), hint)
	}
	if _, ok := s.byGV[apiVersion]; !ok {
		var gvs []string
		for gv := range s.byGV {
			gvs = append(gvs, gv)
		}
		if near := resource.Nearest(apiVersion, gvs); near != "" {
			return fmt.Errorf("no API %q is served: did you mean %s?%s", apiVersion, near, hint)
		}
		return fmt.Errorf("no API %q is served%s", apiVersion, hint)
	}
	return fmt.Errorf("%s serves no kind %q%s", apiVersion, kind, hint)
}

// checkManifests checks every manifest's apiVersion and kind against what the server serves
// before anything is applied (nothing is half-applied over a typo), and rewrites upstream
// Gateway API manifests to our group with a one-line notice on w.
func checkManifests(docs []manifest, served *servedKinds, w io.Writer) error {
	var errs []string
	for i := range docs {
		d := &docs[i]
		if to, ok := served.translate(d.apiVersion, d.kind); ok {
			raw, err := setAPIVersion(d.raw, to)
			if err != nil {
				return fmt.Errorf("%s: %w", d.source, err)
			}
			fmt.Fprintf(w, "note: %s: %s %s applied as %s (Apoxy serves the Gateway API's kinds, with upstream's schemas, as %s)\n", d.source, d.apiVersion, d.kind, to, ourGatewayGroup)
			d.apiVersion, d.raw = to, raw
		}
		if err := served.check(d.apiVersion, d.kind); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", d.source, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing was applied:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// setAPIVersion rewrites a document's apiVersion.
func setAPIVersion(raw []byte, apiVersion string) ([]byte, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	obj["apiVersion"] = apiVersion
	return yaml.Marshal(obj)
}
