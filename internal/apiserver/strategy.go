package apiserver

import (
	"context"
	"reflect"

	"apoxy.dev/apoxy/internal/resource"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// strategy implements the create/update/delete strategies of one Resource.
//
// Generation: bumped only when the spec changes (Kubernetes semantics), so controllers can tell a
// spec change from a status or metadata write through status.observedGeneration.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	r *Resource
	// peers lists the project's objects for validation rules that span objects.
	peers resource.PeersFunc
}

var (
	_ rest.RESTCreateStrategy = strategy{}
	_ rest.RESTUpdateStrategy = strategy{}
	_ rest.RESTDeleteStrategy = strategy{}
)

func newStrategy(r *Resource, peers resource.PeersFunc) strategy {
	return strategy{ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, r: r, peers: peers}
}

func (s strategy) validationContext(ctx context.Context) context.Context {
	if s.peers == nil {
		return ctx
	}
	return resource.WithPeers(ctx, s.peers)
}

func (s strategy) NamespaceScoped() bool { return s.r.Namespaced }

func (s strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.r.HasStatus() {
		resetField(obj, "Status")
	}
	if m, err := meta.Accessor(obj); err == nil && !s.r.NoGeneration {
		m.SetGeneration(1)
	}
	if s.r.Prepare != nil {
		s.r.Prepare(obj, nil)
	}
}

func (s strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.r.HasStatus() {
		copyField(obj, old, "Status")
	}
	if s.r.Prepare != nil {
		s.r.Prepare(obj, old)
	}
	if s.r.NoGeneration {
		return
	}
	nm, err1 := meta.Accessor(obj)
	om, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return
	}
	gen := om.GetGeneration()
	if !apiequality.Semantic.DeepEqual(specOf(obj), specOf(old)) {
		gen++
	}
	nm.SetGeneration(gen)
}

func (s strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	errs := s.validateName(obj)
	if s.r.Validate != nil {
		errs = append(errs, s.r.Validate(s.validationContext(ctx), obj, nil)...)
	}
	return errs
}

func (s strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.r.Validate == nil {
		return nil
	}
	return s.r.Validate(s.validationContext(ctx), obj, old)
}

// validateName applies the DNS-subdomain rule Kubernetes applies to CRD objects (DNS label for
// namespaces), which the generic registry alone does not enforce.
func (s strategy) validateName(obj runtime.Object) field.ErrorList {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetName() == "" {
		return nil // the generic registry reports a missing name
	}
	validate := apimachineryvalidation.NameIsDNSSubdomain
	if s.r.GVK.Kind == "Namespace" {
		validate = apimachineryvalidation.ValidateNamespaceName
	}
	var errs field.ErrorList
	for _, msg := range validate(m.GetName(), false) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), m.GetName(), msg))
	}
	return errs
}

func (strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
func (strategy) AllowCreateOnUpdate(context.Context) bool      { return false }
func (strategy) AllowUnconditionalUpdate(context.Context) bool { return true }
func (strategy) Canonicalize(runtime.Object)                   {}

// GetResetFields tells server-side apply which fields a main-resource write may not own.
func (s strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	if !s.r.HasStatus() {
		return nil
	}
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(s.r.GVK.GroupVersion().String()): fieldpath.NewSet(fieldpath.MakePathOrDie("status")),
	}
}

// statusStrategy serves the /status subresource: only status changes, and the generation never
// moves.
type statusStrategy struct{ strategy }

func (s statusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	// Keep everything of the stored object but its status and the metadata a status writer may
	// legitimately touch (resourceVersion for concurrency, managedFields for SSA).
	nm, _ := meta.Accessor(obj)
	om, _ := meta.Accessor(old)
	copyField(obj, old, "Spec")
	if nm != nil && om != nil {
		nm.SetGeneration(om.GetGeneration())
		nm.SetLabels(om.GetLabels())
		nm.SetAnnotations(om.GetAnnotations())
		nm.SetFinalizers(om.GetFinalizers())
		nm.SetOwnerReferences(om.GetOwnerReferences())
		nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	}
}

func (s statusStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.r.ValidateStatus == nil {
		return nil
	}
	return s.r.ValidateStatus(ctx, obj, old)
}

func (s statusStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(s.r.GVK.GroupVersion().String()): fieldpath.NewSet(
			fieldpath.MakePathOrDie("spec"),
			fieldpath.MakePathOrDie("metadata", "labels"),
			fieldpath.MakePathOrDie("metadata", "annotations"),
		),
	}
}

// specOf returns the Spec field of a typed object, or the whole object minus metadata and status
// for kinds without a spec, so that "the spec changed" has one meaning for every kind.
func specOf(obj runtime.Object) any {
	v := reflect.ValueOf(obj).Elem()
	if f := v.FieldByName("Spec"); f.IsValid() {
		return f.Interface()
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	for _, name := range []string{"ObjectMeta", "TypeMeta", "Status"} {
		if f := c.FieldByName(name); f.IsValid() {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return c.Interface()
}

func resetField(obj runtime.Object, name string) {
	if f := reflect.ValueOf(obj).Elem().FieldByName(name); f.IsValid() {
		f.Set(reflect.Zero(f.Type()))
	}
}

func copyField(dst, src runtime.Object, name string) {
	d := reflect.ValueOf(dst).Elem().FieldByName(name)
	s := reflect.ValueOf(src).Elem().FieldByName(name)
	if d.IsValid() && s.IsValid() {
		d.Set(s)
	}
}
