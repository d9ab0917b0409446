package apiserver

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	"apoxy.dev/apoxy/internal/gwschema"
)

var (
	resourcesOnce sync.Once
	projectKinds  []*Resource
	resourcesErr  error
)

// ProjectResources returns every kind a project serves. The first call loads the Gateway API
// schemas and registers their defaulting functions in Scheme.
func ProjectResources() ([]*Resource, error) {
	resourcesOnce.Do(func() { projectKinds, resourcesErr = buildProjectResources() })
	return projectKinds, resourcesErr
}

func buildProjectResources() ([]*Resource, error) {
	apoxy := []string{"apoxy"}
	rs := []*Resource{
		{
			GroupVersion: coreGV, Kind: "Namespace", Plural: "namespaces", ShortNames: []string{"ns"},
			HasStatus: true,
			New:       func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			Prepare: prepareNamespace,
			Columns: []Column{{Name: "Status", Type: "string", JSONPath: ".status.phase", Description: "Lifecycle phase"}},
		},
		{
			GroupVersion: coreGV, Kind: "Secret", Plural: "secrets", Namespaced: true, NoGeneration: true,
			New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
			Prepare:  prepareSecret,
			Validate: validateSecret,
			Columns:  []Column{{Name: "Type", Type: "string", JSONPath: ".type", Description: "Secret type"}},
		},
		{
			GroupVersion: coreGV, Kind: "ConfigMap", Plural: "configmaps", ShortNames: []string{"cm"}, Namespaced: true, NoGeneration: true,
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
			Validate: validateConfigMap,
		},
		{
			GroupVersion: corev1a2.SchemeGroupVersion, Kind: "Backend", Plural: "backends", ShortNames: []string{"be"},
			Categories: apoxy, Namespaced: true, HasStatus: true,
			New: func() runtime.Object { return &corev1a2.Backend{} }, NewList: func() runtime.Object { return &corev1a2.BackendList{} },
			Validate: typed(corev1a2.ValidateBackend),
			Columns: []Column{
				{Name: "Protocol", Type: "string", JSONPath: ".spec.protocol", Description: "Protocol spoken to the endpoints"},
				{Name: "Endpoints", Type: "string", JSONPath: ".spec.endpoints[*]['fqdn','ip']", Description: "Endpoint addresses"},
				{Name: "Health-Check", Type: "string", JSONPath: ".spec.healthCheck.interval", Description: "Health check interval", Priority: 1},
			},
		},
		{
			GroupVersion: corev1a2.SchemeGroupVersion, Kind: "Proxy", Plural: "proxies", ShortNames: []string{"px"},
			Categories: apoxy, Namespaced: true, HasStatus: true,
			New: func() runtime.Object { return &corev1a2.Proxy{} }, NewList: func() runtime.Object { return &corev1a2.ProxyList{} },
			Validate: typed(corev1a2.ValidateProxy),
			Columns: []Column{
				{Name: "Provider", Type: "string", JSONPath: ".spec.provider", Description: "Who runs the data plane"},
				{Name: "Addresses", Type: "string", JSONPath: ".status.addresses[*]", Description: "Addresses the data plane serves on"},
			},
		},
		{
			GroupVersion: extv1a2.SchemeGroupVersion, Kind: "DirectResponse", Plural: "directresponses",
			Categories: apoxy, Namespaced: true, HasStatus: true,
			New: func() runtime.Object { return &extv1a2.DirectResponse{} }, NewList: func() runtime.Object { return &extv1a2.DirectResponseList{} },
			Validate: typed(extv1a2.ValidateDirectResponse),
			Columns: []Column{
				{Name: "Status-Code", Type: "integer", JSONPath: ".spec.statusCode", Description: "HTTP status sent"},
				{Name: "Content-Type", Type: "string", JSONPath: ".spec.contentType", Description: "Content type sent"},
			},
		},
		{
			GroupVersion: extv1a2.SchemeGroupVersion, Kind: "HTTPRouteFilter", Plural: "httproutefilters",
			Categories: apoxy, Namespaced: true, HasStatus: true,
			New: func() runtime.Object { return &extv1a2.HTTPRouteFilter{} }, NewList: func() runtime.Object { return &extv1a2.HTTPRouteFilterList{} },
			Validate: typed(extv1a2.ValidateHTTPRouteFilter),
			Columns: []Column{
				{Name: "Compression-Disabled", Type: "boolean", JSONPath: ".spec.compressor.disabled", Description: "Compression turned off"},
				{Name: "Algorithms", Type: "string", JSONPath: ".spec.compressor.algorithms[*]", Description: "Algorithms offered"},
			},
		},
	}
	gw, err := gatewayResources()
	if err != nil {
		return nil, err
	}
	return append(rs, gw...), nil
}

// gatewayResources serves every kind of the pinned Gateway API module under gateway.apoxy.dev,
// validated and defaulted by the upstream CRD schemas.
func gatewayResources() ([]*Resource, error) {
	schemas, err := gwschema.Load()
	if err != nil {
		return nil, err
	}
	var out []*Resource
	for gvk := range Scheme.AllKnownTypes() {
		if gvk.GroupVersion() != gatewayv1.SchemeGroupVersion || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		s, ok := schemas[gvk.Kind]
		if !ok {
			continue // option types (ListOptions...) share the group/version
		}
		kind := gvk.Kind
		newObj := func() runtime.Object { o, _ := Scheme.New(gvk); return o }
		listGVK := gvk.GroupVersion().WithKind(kind + "List")
		r := &Resource{
			GroupVersion: gatewayv1.SchemeGroupVersion, Kind: kind, Plural: s.Plural,
			ShortNames: extraShortNames(kind, s.ShortNames), Categories: s.Categories,
			Namespaced: s.Namespaced, HasStatus: true,
			New: newObj, NewList: func() runtime.Object { o, _ := Scheme.New(listGVK); return o },
			Validate: func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
				u, ou, err := unstructuredPair(obj, old)
				if err != nil {
					return field.ErrorList{field.InternalError(nil, err)}
				}
				return s.Validate(ctx, u, ou)
			},
			ValidateStatus: func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
				u, ou, err := unstructuredPair(obj, old)
				if err != nil {
					return field.ErrorList{field.InternalError(nil, err)}
				}
				return s.ValidateStatus(ctx, u, ou)
			},
		}
		for _, c := range s.Columns {
			if c.JSONPath == ".metadata.creationTimestamp" {
				continue // every table ends with AGE
			}
			r.Columns = append(r.Columns, Column{Name: c.Name, Type: c.Type, JSONPath: c.JSONPath, Description: c.Description, Priority: c.Priority})
		}
		Scheme.AddTypeDefaultingFunc(newObj(), func(o any) {
			obj := o.(runtime.Object)
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return
			}
			s.Default(u)
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(u, obj)
		})
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	if len(out) != len(schemas) {
		return nil, fmt.Errorf("apiserver: %d Gateway API schemas but %d registered kinds", len(schemas), len(out))
	}
	return out, nil
}

// extraShortNames adds the short names Apoxy users know from the original CLI.
func extraShortNames(kind string, upstream []string) []string {
	if kind == "Gateway" {
		return append([]string{"gw"}, upstream...)
	}
	return upstream
}

func unstructuredPair(obj, old runtime.Object) (map[string]any, map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil || old == nil {
		return u, nil, err
	}
	ou, err := runtime.DefaultUnstructuredConverter.ToUnstructured(old)
	return u, ou, err
}

// typed adapts a Go validation function of one kind to a Resource's Validate.
func typed[T runtime.Object](validate func(T) field.ErrorList) func(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
		return validate(obj.(T))
	}
}

// RootResources returns the kinds served at the server root (admin only).
func RootResources() []*Resource {
	return []*Resource{{
		GroupVersion: platformv1a1.SchemeGroupVersion, Kind: "Project", Plural: "projects", ShortNames: []string{"proj"},
		HasStatus: true,
		New:       func() runtime.Object { return &platformv1a1.Project{} }, NewList: func() runtime.Object { return &platformv1a1.ProjectList{} },
		Validate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			p := obj.(*platformv1a1.Project)
			var errs field.ErrorList
			for _, msg := range apivalidation.NameIsDNSLabel(p.Name, false) {
				errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), p.Name, msg))
			}
			if p.Spec.KeyRevision < 0 {
				errs = append(errs, field.Invalid(field.NewPath("spec", "keyRevision"), p.Spec.KeyRevision, "must not be negative"))
			}
			for i, h := range p.Spec.Hostnames {
				name := strings.TrimPrefix(h, "*.")
				if msgs := utilvalidation.IsDNS1123Subdomain(name); len(msgs) > 0 || h == "" || strings.Contains(name, "*") {
					errs = append(errs, field.Invalid(field.NewPath("spec", "hostnames").Index(i), h,
						"must be a lower-case hostname (shop.example.com) or a wildcard (*.example.com)"))
				}
			}
			for i, c := range p.Spec.BackendNetworks {
				if _, err := netip.ParsePrefix(c); err != nil {
					errs = append(errs, field.Invalid(field.NewPath("spec", "backendNetworks").Index(i), c,
						"must be a CIDR such as 10.0.0.0/8 or fd00::/8"))
				}
			}
			return errs
		},
		Columns: []Column{
			{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`, Description: "Whether the project's API is served"},
			{Name: "API-Path", Type: "string", JSONPath: ".status.apiPath", Description: "Path of the project's API"},
		},
	}}
}
