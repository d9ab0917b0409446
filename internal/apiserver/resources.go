package apiserver

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	"apoxy.dev/apoxy/internal/gwschema"
	"apoxy.dev/apoxy/internal/resource"
)

var (
	resourcesOnce sync.Once
	projectKinds  []*Resource
	resourcesErr  error
)

// ProjectResources returns every kind a project serves: the registry's kinds that are not served
// at the root, in registry order. The first call loads the Gateway API schemas and registers
// their defaulting functions in Scheme.
func ProjectResources() ([]*Resource, error) {
	resourcesOnce.Do(func() { projectKinds, resourcesErr = buildProjectResources() })
	return projectKinds, resourcesErr
}

func buildProjectResources() ([]*Resource, error) {
	schemas, err := gwschema.Load()
	if err != nil {
		return nil, err
	}
	var out []*Resource
	for _, k := range resource.Kinds() {
		if k.Root {
			continue
		}
		r, err := serve(k, schemas)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	for kind := range schemas {
		if _, ok := resource.Lookup(gatewayv1.SchemeGroupVersion.WithKind(kind)); !ok {
			return nil, fmt.Errorf("apiserver: Gateway API kind %s has a schema but no registry entry (internal/resource/kinds.go)", kind)
		}
	}
	return out, nil
}

// RootResources returns the kinds served at the server root (admin only).
func RootResources() ([]*Resource, error) {
	var out []*Resource
	for _, k := range resource.Kinds() {
		if !k.Root {
			continue
		}
		r, err := serve(k, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// serve resolves the rules a registered kind is served with, from exactly one source: Kubernetes'
// rules for core kinds (core.go), the upstream CRD schema for Gateway API kinds, and the entry's
// own Serving for Apoxy's kinds.
func serve(k *resource.Kind, schemas map[string]*gwschema.Schema) (*Resource, error) {
	if !Scheme.Recognizes(k.GVK) {
		return nil, fmt.Errorf("apiserver: %s is registered but not in Scheme (add its group's AddToScheme in scheme.go)", k)
	}
	r := &Resource{Kind: k}
	switch k.GVK.Group {
	case coreGV.Group:
		rules, ok := coreRules[k.GVK.Kind]
		if !ok || k.Serving.Validate != nil || k.Serving.Columns != nil {
			return nil, fmt.Errorf("apiserver: core kind %s is served with Kubernetes' rules, which belong in core.go (coreRules), not in its registry entry", k)
		}
		r.Validate, r.Prepare, r.Columns = rules.Validate, rules.Prepare, rules.Columns
	case gatewayv1.GroupName:
		s, ok := schemas[k.GVK.Kind]
		if !ok || k.Serving.Validate != nil || k.Serving.Columns != nil {
			return nil, fmt.Errorf("apiserver: Gateway API kind %s is served with its upstream CRD schema (internal/gwschema/crds), not rules in its registry entry", k)
		}
		if err := servedAsCRD(k, s); err != nil {
			return nil, err
		}
		servedBySchema(r, s)
	default:
		if k.Serving.Validate == nil {
			return nil, fmt.Errorf("apiserver: %s has no validation: its registry entry must name its API package's Validate function", k)
		}
		r.Validate, r.Columns = k.Serving.Validate, k.Serving.Columns
	}
	return r, nil
}

// servedAsCRD checks that a Gateway API entry serves the kind as its upstream CRD declares it:
// same plural, scope and categories, and every upstream short name (ours may add some).
func servedAsCRD(k *resource.Kind, s *gwschema.Schema) error {
	for _, short := range s.ShortNames {
		if !slices.Contains(k.ShortNames, short) {
			return fmt.Errorf("apiserver: %s: registry entry lacks the upstream short name %q", k, short)
		}
	}
	if k.Plural != s.Plural || k.Namespaced != s.Namespaced || !slices.Equal(k.Categories, s.Categories) {
		return fmt.Errorf("apiserver: %s: registry entry (plural %s, namespaced %v, categories %v) differs from the upstream CRD (plural %s, namespaced %v, categories %v)",
			k, k.Plural, k.Namespaced, k.Categories, s.Plural, s.Namespaced, s.Categories)
	}
	return nil
}

// servedBySchema makes a Gateway API kind validated and defaulted by its upstream CRD schema,
// with the CRD's printer columns.
func servedBySchema(r *Resource, s *gwschema.Schema) {
	r.Validate = func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
		u, ou, err := unstructuredPair(obj, old)
		if err != nil {
			return field.ErrorList{field.InternalError(nil, err)}
		}
		return s.Validate(ctx, u, ou)
	}
	r.ValidateStatus = func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
		u, ou, err := unstructuredPair(obj, old)
		if err != nil {
			return field.ErrorList{field.InternalError(nil, err)}
		}
		return s.ValidateStatus(ctx, u, ou)
	}
	for _, c := range s.Columns {
		if c.JSONPath == ".metadata.creationTimestamp" {
			continue // every table ends with AGE
		}
		r.Columns = append(r.Columns, resource.Column{Name: c.Name, Type: c.Type, JSONPath: c.JSONPath, Description: c.Description, Priority: c.Priority})
	}
	Scheme.AddTypeDefaultingFunc(r.New(), func(o any) {
		obj := o.(runtime.Object)
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return
		}
		s.Default(u)
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(u, obj)
	})
}

func unstructuredPair(obj, old runtime.Object) (map[string]any, map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil || old == nil {
		return u, nil, err
	}
	ou, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	return u, ou, err
}
