// Package manifest loads YAML manifests into a resource.Set the way the API server would store
// them (defaults applied: Gateway API kinds through their upstream schemas), for offline
// translation (`apoxy translate`, `apoxy gateway get`) and the translator's golden tests. It is
// apart from internal/resource so the translator does not pull in the schema and CEL machinery.
package manifest

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/gwschema"
	"apoxy.dev/apoxy/internal/resource"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme, serializer.EnableStrict)
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, corev1a.AddToScheme, corev1a2.AddToScheme, corev1a3.AddToScheme, extv1a2.AddToScheme, gatewayv1.AddToScheme, policyv1a1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

// Load reads multi-document YAML (comment-only documents are skipped) into a Set, applying the
// defaults the API server applies, so offline translation sees what the server would store.
// Objects without a namespace get "default" unless cluster-scoped.
func Load(r io.Reader) (*resource.Set, error) {
	schemas, err := gwschema.Load()
	if err != nil {
		return nil, err
	}
	s := &resource.Set{}
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 1; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if probe == nil {
			continue
		}
		obj, gvk, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if gs := schemas[gvk.Kind]; gs != nil && gvk.Group == gwschema.Group {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return nil, err
			}
			gs.Default(u)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, obj); err != nil {
				return nil, err
			}
		} else {
			scheme.Default(obj)
		}
		m := obj.(metav1.Object)
		if k, ok := resource.KindOf(obj); m.GetNamespace() == "" && (!ok || k.Namespaced) {
			m.SetNamespace("default")
		}
		if err := s.Add(obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
	s.Sort()
	return s, nil
}
