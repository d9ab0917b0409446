// Package deptest enforces the dependency rules of docs/architecture.md: the data plane and
// its IR never import Kubernetes, the API types, the translator or the API server, so it can
// run in its own process and stay small; the translator stays pure.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestStandardLibraryOnly: the IR and the hostname rules are leaves every layer shares (the
// translator, the data plane, the claims registry, remote replicas later); they import only
// the standard library and each other (hostname imports nothing of ours). The access-log
// formatter is a leaf of the data plane and the API's validation alike.
func TestStandardLibraryOnly(t *testing.T) {
	for _, pkg := range []string{"apoxy.dev/apoxy/internal/ir", "apoxy.dev/apoxy/internal/hostname", "apoxy.dev/apoxy/internal/accesslog"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, d := range strings.Fields(string(out)) {
			if d != pkg {
				t.Errorf("%s imports %s: it may import only the standard library", pkg, d)
			}
		}
	}
}

func TestDependencyRules(t *testing.T) {
	dataPlaneBad := map[string]string{
		"k8s.io/":                            "the data plane must not depend on Kubernetes libraries",
		"sigs.k8s.io/":                       "the data plane must not depend on Kubernetes libraries",
		"apoxy.dev/apoxy/api/":               "the data plane reads only the IR, never API types",
		"apoxy.dev/apoxy/internal/translate": "the translator feeds the data plane, not the other way",
		"apoxy.dev/apoxy/internal/apiserver": "the data plane must run without the API server",
	}
	rules := map[string]map[string]string{
		"apoxy.dev/apoxy/internal/ir":        dataPlaneBad,
		"apoxy.dev/apoxy/internal/proxy/...": dataPlaneBad,
		"apoxy.dev/apoxy/internal/translate": {
			"apoxy.dev/apoxy/internal/apiserver": "the translator is pure: no API server",
			"apoxy.dev/apoxy/internal/storage":   "the translator is pure: no storage",
			"k8s.io/client-go":                   "the translator is pure: no API clients",
			"k8s.io/apiserver/":                  "the translator is pure: no API server machinery (CEL, admission)",
			"k8s.io/apiextensions-apiserver/":    "the translator is pure: schema defaulting belongs to the API server and internal/resource/manifest",
		},
	}
	for pkg, bad := range rules {
		for _, d := range deps(t, pkg) {
			for prefix, why := range bad {
				if d == prefix || strings.HasPrefix(d, prefix) {
					t.Errorf("%s imports %s: %s", pkg, d, why)
				}
			}
		}
	}
}

// TestKindRegistryImports: the kind registry (internal/resource) is shared by the translator,
// the controller, the API server and the CLI, so it holds only what all of them may import: API
// types, apimachinery and internal/status (the Report its entries point into). The API server's
// own rules stay in internal/apiserver and reach the registry only as function values.
func TestKindRegistryImports(t *testing.T) {
	const pkg = "apoxy.dev/apoxy/internal/resource"
	bad := map[string]string{
		"k8s.io/client-go":                "the registry names kinds, it does not talk to a server",
		"k8s.io/apiserver/":               "API server machinery stays in internal/apiserver",
		"k8s.io/apiextensions-apiserver/": "CRD schemas stay in internal/gwschema",
	}
	for _, d := range deps(t, pkg) {
		for prefix, why := range bad {
			if d == prefix || strings.HasPrefix(d, prefix) {
				t.Errorf("%s imports %s: %s", pkg, d, why)
			}
		}
		if strings.HasPrefix(d, "apoxy.dev/apoxy/") && d != pkg && d != "apoxy.dev/apoxy/internal/status" && !strings.HasPrefix(d, "apoxy.dev/apoxy/api/") {
			t.Errorf("%s imports %s: it may import only API types and internal/status", pkg, d)
		}
	}
}

// TestTestSupportNotInBinary: the packages that exist for tests (the in-process product, the
// OpenID provider, the OTLP backend) are never linked into the apoxy binary.
func TestTestSupportNotInBinary(t *testing.T) {
	const pkg = "apoxy.dev/apoxy/cmd/apoxy"
	for _, d := range deps(t, pkg) {
		switch d {
		case "apoxy.dev/apoxy/internal/auth/oidc/oidctest", "apoxy.dev/apoxy/internal/edgetest", "github.com/zitadel/oidc/v3/pkg/op",
			// (The collector's own service imports its consumertest and the other *test
			// packages for its builders; those are upstream's, and linked by any collector.)
			"apoxy.dev/apoxy/internal/telemetry/collector/collectortest":
			t.Errorf("%s imports %s: test support only", pkg, d)
		}
	}
}
