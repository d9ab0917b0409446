package apiserver

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"apoxy.dev/apoxy/internal/resource"
)

// Resource is one served kind: its registry entry (names, scope, status subresource, Go types;
// internal/resource/kinds.go) and the rules it is served with, resolved from one source per
// kind: the entry's own Serving (Apoxy's kinds), Kubernetes' rules in core.go (core kinds) or
// the upstream CRD schema (Gateway API kinds). Every kind goes through the same strategy
// (strategy.go), so generation, status and validation rules are identical for our kinds and the
// re-hosted upstream ones.
type Resource struct {
	*resource.Kind

	// Validate and ValidateStatus return every problem, each naming its field. old is nil on
	// create.
	Validate       func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	ValidateStatus func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// Prepare normalises an object before validation on create and update (old is nil on create).
	Prepare func(obj, old runtime.Object)

	// Columns are the extra table columns of `get` (NAME is always first, AGE always last).
	Columns []resource.Column
}
