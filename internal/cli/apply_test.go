package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitDocuments(t *testing.T) {
	in := `# leading comment only
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: r}
---
# just a comment
---

---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: b}
`
	ms, err := splitDocuments("in.yaml", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.source+" "+m.kind)
	}
	want := []string{"in.yaml#2 HTTPRoute", "in.yaml#5 Backend"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents mismatch (-want +got):\n%s", diff)
	}
	if _, err := splitDocuments("x.yaml", strings.NewReader("metadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "x.yaml: document 1: apiVersion and kind are required") {
		t.Errorf("kindless document: err = %v", err)
	}
	if _, err := splitDocuments("x.yaml", strings.NewReader("kind: [\n")); err == nil || !strings.Contains(err.Error(), "x.yaml: document 1") {
		t.Errorf("broken YAML: err = %v", err)
	}
}

func TestSortByDependency(t *testing.T) {
	kinds := []string{"TrafficPolicy", "HTTPRoute", "Backend", "Unknown", "AuthPolicy", "Gateway", "Secret", "Namespace", "ReferenceGrant", "GatewayClass", "HTTPRoute"}
	var ms []manifest
	for i, k := range kinds {
		ms = append(ms, manifest{kind: k, source: string(rune('a' + i))})
	}
	sortByDependency(ms)
	var got []string
	for _, m := range ms {
		got = append(got, m.kind+"/"+m.source)
	}
	want := []string{"Namespace/h", "Secret/g", "GatewayClass/j", "Gateway/f", "Backend/c", "ReferenceGrant/i", "Unknown/d", "TrafficPolicy/a", "AuthPolicy/e", "HTTPRoute/b", "HTTPRoute/k"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apply order mismatch (-want +got):\n%s", diff)
	}
}

func TestReadableErrors(t *testing.T) {
	in := `Error from server (Invalid): error when creating "/tmp/apoxy-apply-1.yaml": Backend.core.apoxy.dev "b" is invalid: [spec.endpoints[0].fqdn: Invalid value: "a b": must be lowercase, e.g. 'example.com', spec.protocol: Unsupported value: "h3": supported values: "plain", "tls", <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]
The Backend "c" is invalid: 
* spec.endpoints: Required value: list at least one endpoint`
	want := `Error from server (Invalid): Backend.core.apoxy.dev "b" is invalid:
  * spec.endpoints[0].fqdn: Invalid value: "a b": must be lowercase, e.g. 'example.com'
  * spec.protocol: Unsupported value: "h3": supported values: "plain", "tls"
  * (more rules are checked once the errors above are fixed)
The Backend "c" is invalid:
  * spec.endpoints: Required value: list at least one endpoint`
	if diff := cmp.Diff(want, readableErrors(in)); diff != "" {
		t.Errorf("readableErrors mismatch (-want +got):\n%s", diff)
	}
}

func FuzzSplitDocuments(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
		"# c\n---\n---\nkind: A\napiVersion: b/v1\n",
		`{"apiVersion":"v1","kind":"Namespace"}`,
		"a: [\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := splitDocuments("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.kind == "" || m.apiVersion == "" {
				t.Fatalf("accepted a document without kind/apiVersion: %q", m.raw)
			}
		}
		sortByDependency(ms)
	})
}

func FuzzReadableErrors(f *testing.F) {
	f.Add(`Error from server (Invalid): error when creating "x": B "b" is invalid: [spec.a: x, spec.b: y]`)
	f.Add("* spec.a: x\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := readableErrors(in)
		if strings.Contains(in, "\x00") {
			return
		}
		if strings.Contains(out, "\x00") {
			t.Fatalf("separator leaked into output: %q", out)
		}
	})
}

func TestParseAddressPool(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		"127.0.1.0/30":           {"127.0.1.0", "127.0.1.1", "127.0.1.2", "127.0.1.3"},
		"10.0.0.254-10.0.1.1":    {"10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"},
		"10.0.0.1, 10.0.0.9,::1": {"10.0.0.1", "10.0.0.9", "::1"},
	} {
		got, err := parseAddressPool(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q mismatch (-want +got):\n%s", in, diff)
		}
	}
	for _, bad := range []string{"10.0.0.5-10.0.0.1", "nope", "10.0.0.0/99"} {
		if _, err := parseAddressPool(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
