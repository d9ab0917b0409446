package apiserver

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource describes one served kind: how it is named, scoped, validated and shown in tables.
// Every kind goes through the same strategy (strategy.go), so generation, status and validation
// rules are identical for our kinds and the re-hosted upstream ones.
type Resource struct {
	GroupVersion schema.GroupVersion
	Kind         string
	// Plural is the lower-case resource name in URLs ("backends").
	Plural     string
	ShortNames []string
	Categories []string
	Namespaced bool
	// HasStatus serves a /status subresource; main-resource writes then never change status.
	HasStatus bool
	// NoGeneration turns off metadata.generation tracking (kinds without a spec, like Secret).
	NoGeneration bool

	New     func() runtime.Object
	NewList func() runtime.Object

	// Validate, ValidateUpdate and ValidateStatus return every problem, each naming its field.
	// old is nil on create.
	Validate       func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	ValidateStatus func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// Prepare normalises an object before validation on create and update (old is nil on create).
	Prepare func(obj, old runtime.Object)

	// Columns are the extra table columns of `get` (NAME is always first, AGE always last).
	Columns []Column
}

// Column is a table column whose cell is a JSONPath into the object.
type Column struct {
	Name        string
	Type        string // string, integer, date, boolean, number
	JSONPath    string
	Description string
	// Priority 0 columns show in `get`; higher ones only in `get -o wide`.
	Priority int32
}

// GroupResource returns the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.GroupVersion.Group, Resource: r.Plural}
}

// GroupVersionKind returns the resource's kind at its served version.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion.WithKind(r.Kind)
}
