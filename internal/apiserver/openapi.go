package apiserver

import (
	"strings"
	"sync"

	"k8s.io/kube-openapi/pkg/common"

	"apoxy.dev/apoxy/api/openapi"
)

// coreModelPrefix names the k8s.io/api/core/v1 models. openapi-gen emits the whole package
// (hundreds of types) though we serve only Namespace, Secret and ConfigMap.
const coreModelPrefix = "io.k8s.api.core.v1."

var (
	reachableOnce sync.Once
	reachable     []string
)

// definitions returns the generated OpenAPI definitions that served kinds can reach. Every
// project server keeps its own copy for its lifetime, so dropping the unused core/v1 models
// keeps an idle project small.
func definitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	all := openapi.GetOpenAPIDefinitions(ref)
	reachableOnce.Do(func() { reachable = closure(all) })
	out := make(map[string]common.OpenAPIDefinition, len(reachable))
	for _, name := range reachable {
		out[name] = all[name]
	}
	return out
}

func closure(all map[string]common.OpenAPIDefinition) []string {
	keep := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if keep[name] {
			return
		}
		keep[name] = true
		for _, dep := range all[name].Dependencies {
			visit(dep)
		}
	}
	for name := range all {
		if !strings.HasPrefix(name, coreModelPrefix) {
			visit(name)
		}
	}
	for _, kind := range []string{"Namespace", "NamespaceList", "Secret", "SecretList", "ConfigMap", "ConfigMapList"} {
		visit(coreModelPrefix + kind)
	}
	names := make([]string, 0, len(keep))
	for name := range keep {
		if _, ok := all[name]; ok {
			names = append(names, name)
		}
	}
	return names
}
