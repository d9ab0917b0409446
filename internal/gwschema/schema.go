// Package gwschema validates and defaults Gateway API objects with the upstream CRD schemas
// (OpenAPI constraints, defaults and CEL rules) of the pinned gateway-api module, through the
// same k8s.io/apiextensions-apiserver functions kube-apiserver runs for CRDs. Errors, field paths
// and defaults are therefore the ones users see on a real cluster.
//
// The only difference is the group: defaults that name gateway.networking.k8s.io are rewritten
// to gateway.apoxy.dev once at load, and explicit references to the upstream group are
// canonicalised to ours before validation.
package gwschema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"sigs.k8s.io/yaml"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
)

// UpstreamGroup is the Gateway API group as published; Group is where we serve it.
const (
	UpstreamGroup = gatewayv1.UpstreamGroupName
	Group         = gatewayv1.GroupName
	// Version is the only version served for every kind in the pinned module.
	Version = "v1"
)

//go:embed crds/*.yaml
var crdFiles embed.FS

// Schema is the loaded schema of one kind at Version. It is immutable and safe for concurrent use.
type Schema struct {
	Kind       string
	Plural     string
	ShortNames []string
	Categories []string
	Namespaced bool
	// Columns are the CRD's additionalPrinterColumns.
	Columns []apiextensionsv1.CustomResourceColumnDefinition

	structural      *structuralschema.Structural
	validator       validation.SchemaValidator
	statusValidator validation.SchemaValidator
	cel             *cel.Validator
}

var (
	loadOnce sync.Once
	loaded   map[string]*Schema
	loadErr  error
)

// Load returns the schemas of every embedded kind, keyed by kind. The first call parses and
// compiles them (about 100 ms); later calls return the same map.
func Load() (map[string]*Schema, error) {
	loadOnce.Do(func() { loaded, loadErr = load() })
	return loaded, loadErr
}

func load() (map[string]*Schema, error) {
	out := map[string]*Schema{}
	err := fs.WalkDir(crdFiles, "crds", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := crdFiles.ReadFile(path)
		if err != nil {
			return err
		}
		s, err := parseCRD(data)
		if err != nil {
			return fmt.Errorf("gwschema: %s: %w", path, err)
		}
		out[s.Kind] = s
		return nil
	})
	return out, err
}

func parseCRD(data []byte) (*Schema, error) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return nil, err
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&crd)
	var version *apiextensionsv1.CustomResourceDefinitionVersion
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == Version {
			version = &crd.Spec.Versions[i]
		}
	}
	if version == nil || version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("no %s schema", Version)
	}
	var props apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(version.Schema.OpenAPIV3Schema, &props, nil); err != nil {
		return nil, err
	}
	rewriteGroupDefaults(&props)

	s := &Schema{
		Kind:       crd.Spec.Names.Kind,
		Plural:     crd.Spec.Names.Plural,
		ShortNames: crd.Spec.Names.ShortNames,
		Categories: crd.Spec.Names.Categories,
		Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		Columns:    version.AdditionalPrinterColumns,
	}
	st, err := structuralschema.NewStructural(&props)
	if err != nil {
		return nil, err
	}
	s.structural = st
	if s.validator, _, err = validation.NewSchemaValidator(&props); err != nil {
		return nil, err
	}
	if status, ok := props.Properties["status"]; ok {
		if s.statusValidator, _, err = validation.NewSchemaValidator(&status); err != nil {
			return nil, err
		}
	}
	s.cel = cel.NewValidator(st, true, celconfig.PerCallLimit)
	return s, nil
}

// rewriteGroupDefaults replaces every default of "gateway.networking.k8s.io" by our group, so
// defaulting yields references to gateway.apoxy.dev objects directly.
func rewriteGroupDefaults(p *apiextensions.JSONSchemaProps) {
	if p == nil {
		return
	}
	if p.Default != nil {
		if v, ok := (*p.Default).(string); ok && v == UpstreamGroup {
			var d apiextensions.JSON = Group
			p.Default = &d
		}
	}
	for k, child := range p.Properties {
		rewriteGroupDefaults(&child)
		p.Properties[k] = child
	}
	if p.Items != nil {
		rewriteGroupDefaults(p.Items.Schema)
		for i := range p.Items.JSONSchemas {
			rewriteGroupDefaults(&p.Items.JSONSchemas[i])
		}
	}
	if p.AdditionalProperties != nil {
		rewriteGroupDefaults(p.AdditionalProperties.Schema)
	}
}

// Default applies the schema's defaults to an object in unstructured form (numbers as int64),
// then canonicalises references to the upstream group.
func (s *Schema) Default(obj map[string]any) {
	defaulting.PruneNonNullableNullsWithoutDefaults(obj, s.structural)
	defaulting.Default(obj, s.structural)
	canonicaliseGroups(obj)
}

// canonicaliseGroups rewrites every string field named "group" whose value is the upstream
// group: parentRefs, RouteGroupKinds, ReferenceGrant from/to, extensionRefs, targetRefs.
func canonicaliseGroups(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if k == "group" {
				if g, ok := child.(string); ok && g == UpstreamGroup {
					t[k] = Group
				}
				continue
			}
			canonicaliseGroups(child)
		}
	case []any:
		for _, child := range t {
			canonicaliseGroups(child)
		}
	}
}

// Validate checks an object (without its status) on create (old == nil) or update, with
// ratcheting on update: a field that was already invalid and did not change is not an error.
func (s *Schema) Validate(ctx context.Context, obj, old map[string]any) field.ErrorList {
	obj, old = withoutStatus(obj), withoutStatus(old)
	var errs field.ErrorList
	var celOpts []cel.Option
	if old == nil {
		errs = validation.ValidateCustomResource(nil, obj, s.validator)
		errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	} else {
		corr := common.NewCorrelatedObject(obj, old, &model.Structural{Structural: s.structural})
		errs = validation.ValidateCustomResourceUpdate(nil, obj, old, s.validator, validation.WithRatcheting(corr))
		if len(listtype.ValidateListSetsAndMaps(nil, s.structural, old)) == 0 {
			errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
		}
		celOpts = append(celOpts, cel.WithRatcheting(corr))
	}
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, obj, s.structural, false)...)
	return append(errs, s.validateCEL(ctx, errs, obj, old, celOpts)...)
}

// ValidateStatus checks a status write against the status schema and the whole-object rules.
func (s *Schema) ValidateStatus(ctx context.Context, obj, old map[string]any) field.ErrorList {
	if s.statusValidator == nil {
		return nil
	}
	corr := common.NewCorrelatedObject(obj, old, &model.Structural{Structural: s.structural})
	var errs field.ErrorList
	if status, ok := obj["status"]; ok {
		var oldStatus any
		if old != nil {
			oldStatus = old["status"]
		}
		errs = validation.ValidateCustomResourceUpdate(field.NewPath("status"), status, oldStatus, s.statusValidator, validation.WithRatcheting(corr.Key("status")))
	}
	if newErrs := listtype.ValidateListSetsAndMaps(nil, s.structural, obj); len(newErrs) > 0 {
		if old == nil || len(listtype.ValidateListSetsAndMaps(nil, s.structural, old)) == 0 {
			errs = append(errs, newErrs...)
		}
	}
	return append(errs, s.validateCEL(ctx, errs, obj, old, []cel.Option{cel.WithRatcheting(corr)})...)
}

// validateCEL runs the x-kubernetes-validations rules unless an earlier error makes their cost
// estimates unsafe, exactly as the CRD strategy does.
func (s *Schema) validateCEL(ctx context.Context, prior field.ErrorList, obj, old map[string]any, opts []cel.Option) field.ErrorList {
	if s.cel == nil {
		return nil
	}
	for _, e := range prior {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return field.ErrorList{field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")}
		}
	}
	var oldObj any
	if old != nil {
		oldObj = old
	}
	errs, _ := s.cel.Validate(ctx, nil, s.structural, obj, oldObj, celconfig.RuntimeCELCostBudget, opts...)
	return errs
}

func withoutStatus(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	if _, ok := obj["status"]; !ok {
		return obj
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "status" {
			out[k] = v
		}
	}
	return out
}

// ToUnstructured converts a typed object to the map form the schema functions take, with
// numbers as int64 (CEL rejects float64 integers).
func ToUnstructured(obj runtime.Object) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
}

// String describes the schema for logs.
func (s *Schema) String() string {
	return fmt.Sprintf("%s.%s/%s (%s)", strings.ToLower(s.Plural), Group, Version, s.Kind)
}
