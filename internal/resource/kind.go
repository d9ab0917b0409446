package resource

import (
	"context"
	"fmt"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"apoxy.dev/apoxy/internal/status"
)

// Object is an API object as the registry hands it around: a runtime.Object with object
// metadata (every registered Go type is one).
type Object interface {
	runtime.Object
	metav1.Object
}

// Kind is one entry of the kind registry (kinds.go): everything the rest of the program needs
// to know about an API kind, so that serving it, watching it, reading it into a Set, writing its
// status and ordering it in `apoxy apply` are all derived from this one entry.
//
// Entries are built in kinds.go only and are read-only afterwards; the slices they hold are
// shared and must not be modified.
type Kind struct {
	// GVK is the group, version and kind the kind is served at.
	GVK schema.GroupVersionKind
	// Plural is the lower-case resource name in URLs ("backends").
	Plural string
	// ShortNames and Categories are published in discovery (`apoxy get be`, `apoxy get apoxy`).
	ShortNames []string
	Categories []string
	// Namespaced kinds live in a namespace; the others are cluster (project) scoped.
	Namespaced bool
	// Root kinds are served at the server root (Project; admin only) instead of in every project.
	Root bool
	// Apply is the kind's place in `apoxy apply`'s dependency order.
	Apply ApplyOrder
	// Status says whether the kind has a /status subresource and who writes it.
	Status StatusWriter
	// NoGeneration turns off metadata.generation tracking (kinds without a spec, like Secret).
	NoGeneration bool
	// Serving holds the API-server rules an Apoxy kind brings with it (see Serving).
	Serving Serving

	goTypes goTypes
	// set is where the kind lives in a Set; nil when the translator does not read the kind.
	set *setField
	// report finds the translator's status for an object (Status == StatusByTranslator only).
	report *reportField
}

// ApplyOrder ranks kinds for `apoxy apply`: what other objects refer to is applied first, so
// one file can hold a whole edge in any order. Equal ranks keep their file order.
type ApplyOrder int

// The apply ranks, first to last. The zero value is no rank (a registry entry must pick one).
const (
	_ ApplyOrder = iota
	// ApplyNamespaces: Namespace and Project, which hold everything else.
	ApplyNamespaces
	// ApplyConfig: Secrets and ConfigMaps, which Gateways and policies reference.
	ApplyConfig
	// ApplyClasses: GatewayClass and Proxy, which Gateways name.
	ApplyClasses
	// ApplyGateways: Gateway.
	ApplyGateways
	// ApplyListenerSets: ListenerSet, which attaches to a Gateway.
	ApplyListenerSets
	// ApplyBackends: what routes point at (Backend, DirectResponse, HTTPRouteFilter).
	ApplyBackends
	// ApplyGrants: ReferenceGrant and BackendTLSPolicy, which permit or secure references.
	ApplyGrants
	// ApplyUnknown is the rank of a kind the registry does not know: after everything it might
	// need, before routes and policies that might need it.
	ApplyUnknown
	// ApplyPolicies: policies that attach to Gateways and routes (TrafficPolicy, AuthPolicy),
	// after the Secrets and Backends they reference and BEFORE the routes they target: a
	// route created with its AuthPolicy in one apply is never served without it (its policy is
	// already there, TargetNotFound for a moment, when the route appears).
	ApplyPolicies
	// ApplyRoutes: HTTPRoute, GRPCRoute, TCPRoute, UDPRoute, TLSRoute.
	ApplyRoutes
)

// StatusWriter says whether a kind has a /status subresource and who writes it. Writes through
// the main resource never change status when there is one.
type StatusWriter int

const (
	// NoStatus: no /status subresource (Secret, ConfigMap).
	NoStatus StatusWriter = iota
	// StatusByServer: the API server sets it on every write or on its own (Namespace phase,
	// Project readiness).
	StatusByServer
	// StatusByTranslator: the translator computes it (status.Report) and the controller writes
	// it when it differs from the stored one (Gateway API kinds). The entry says where in the
	// Report the kind's statuses are.
	StatusByTranslator
	// StatusByDataPlane: the controller writes it from the data plane's state (Backend's
	// resolved endpoints and health); internal/controller has one writer per such kind.
	StatusByDataPlane
	// StatusByClients: /status is served, but nothing in Apoxy writes it yet.
	StatusByClients
	// StatusByReconciler: one of the project controller's reconcilers writes it
	// (controller.Options.Reconcilers: the EdgeFunction builder writes functions' and
	// revisions' status).
	StatusByReconciler
)

// Serving is what the API server needs beyond names for one of Apoxy's own kinds: its validation,
// which lives with its Go types in api/, and the extra columns of its table. Core kinds get
// Kubernetes' rules from internal/apiserver (core.go), Gateway API kinds those of their upstream
// CRD schema (internal/gwschema), so their entries leave Serving empty. Only apimachinery types
// appear here, so the registry does not pull the API server into the translator.
type Serving struct {
	// Validate returns every problem of an object, each naming its field; old is nil on create.
	Validate func(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// Columns are the extra table columns of `get` (NAME is always first, AGE always last).
	Columns []Column
}

// Column is a table column whose cell is a JSONPath into the object, or, for a value JSONPath
// cannot build (one string from several fields of each list item), the result of Cell.
type Column struct {
	Name        string
	Type        string // string, integer, date, boolean, number
	JSONPath    string
	Description string
	// Priority 0 columns show in `get`; higher ones only in `get -o wide`.
	Priority int32
	// Cell computes the cell from the typed object when set; JSONPath is then left empty. It
	// returns nil for an empty cell.
	Cell func(obj runtime.Object) any
}

// New returns a new, empty object of the kind.
func (k *Kind) New() Object { return k.goTypes.new() }

// NewList returns a new, empty list of the kind.
func (k *Kind) NewList() runtime.Object { return k.goTypes.newList() }

// GVR returns the kind's group, version and resource (plural).
func (k *Kind) GVR() schema.GroupVersionResource { return k.GVK.GroupVersion().WithResource(k.Plural) }

// GroupResource returns the kind's group and plural name.
func (k *Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GVK.Group, Resource: k.Plural}
}

// HasStatus reports whether the kind serves a /status subresource.
func (k *Kind) HasStatus() bool { return k.Status != NoStatus }

// InSet reports whether the translator reads the kind (it has a list in Set).
func (k *Kind) InSet() bool { return k.set != nil }

// ReportedStatus returns obj's stored status and the status the translator reported for it, both
// pointers to the kind's status type, so they can be compared and the second one written. ok is
// false when the report has nothing for obj or the kind's status is not the translator's.
func (k *Kind) ReportedStatus(r *status.Report, obj Object) (current, next any, ok bool) {
	if k.report == nil {
		return nil, nil, false
	}
	return k.report.get(r, obj)
}

// String names the kind as kubectl does ("HTTPRoute.gateway.apoxy.dev").
func (k *Kind) String() string { return k.GVK.GroupKind().String() }

// goTypes are a kind's Go types: the object's pointer type and constructors.
type goTypes struct {
	typ     reflect.Type
	new     func() Object
	newList func() runtime.Object
}

// objectPtr is satisfied by *T when *T is an API object.
type objectPtr[T any] interface {
	*T
	Object
}

// listPtr is satisfied by *L when *L is a runtime.Object (a list kind).
type listPtr[L any] interface {
	*L
	runtime.Object
}

// typesOf returns the Go types of a kind whose object is T and whose list is L.
func typesOf[T, L any, PT objectPtr[T], PL listPtr[L]]() goTypes {
	return goTypes{
		typ:     reflect.TypeFor[PT](),
		new:     func() Object { return PT(new(T)) },
		newList: func() runtime.Object { return PL(new(L)) },
	}
}

// setField is a kind's list in Set, seen without its type.
type setField struct {
	typ  reflect.Type   // the element type (*T)
	ptr  func(*Set) any // the field's address, so tests can tell fields apart
	add  func(*Set, runtime.Object) bool
	sort func(*Set)
	list func(*Set) []Object
}

// inSet says that the translator reads a kind from the Set field that field returns.
func inSet[T any, PT objectPtr[T]](field func(*Set) *[]PT) *setField {
	return &setField{
		typ: reflect.TypeFor[PT](),
		ptr: func(s *Set) any { return field(s) },
		add: func(s *Set, obj runtime.Object) bool {
			o, ok := obj.(PT)
			if ok {
				*field(s) = append(*field(s), o)
			}
			return ok
		},
		sort: func(s *Set) { sortObjs(*field(s)) },
		list: func(s *Set) []Object {
			l := *field(s)
			out := make([]Object, len(l))
			for i, o := range l {
				out[i] = o
			}
			return out
		},
	}
}

// reportField is where a kind's statuses are in a status.Report.
type reportField struct {
	typ reflect.Type // the object type (*T)
	get func(*status.Report, Object) (current, next any, ok bool)
}

// inReport says that the translator reports a kind's statuses in the Report map that report
// returns; current returns an object's own status.
func inReport[T any, S any](report func(*status.Report) map[status.Key]*S, current func(*T) *S) *reportField {
	return &reportField{
		typ: reflect.TypeFor[*T](),
		get: func(r *status.Report, obj Object) (any, any, bool) {
			o, ok := any(obj).(*T)
			if !ok {
				return nil, nil, false
			}
			next, ok := report(r)[status.KeyOf(obj.GetNamespace(), obj.GetName())]
			if !ok {
				return nil, nil, false
			}
			return current(o), next, true
		},
	}
}

// validated adapts the validation function of an Apoxy kind's API package to Serving.Validate.
func validated[PT runtime.Object](validate func(PT) field.ErrorList) func(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
		return validate(obj.(PT))
	}
}

// validatedUpdate adapts a typed validation that also checks an update against the stored
// object (old is the zero value, nil, on create): immutable fields.
func validatedUpdate[PT runtime.Object](validate func(obj, old PT) field.ErrorList) func(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return func(_ context.Context, obj, old runtime.Object) field.ErrorList {
		var o PT
		if old != nil {
			o = old.(PT)
		}
		return validate(obj.(PT), o)
	}
}

var (
	byType = map[reflect.Type]*Kind{}
	byGVK  = map[schema.GroupVersionKind]*Kind{}
	byName = map[string]*Kind{}
)

func init() {
	for _, k := range registry {
		byType[k.goTypes.typ] = k
		byGVK[k.GVK] = k
		byName[k.GVK.Kind] = k
	}
}

// Kinds returns every registered kind, in registry order (the order of kinds.go). The slice and
// the entries are shared: do not modify them.
func Kinds() []*Kind { return registry }

// Lookup returns the kind served at gvk.
func Lookup(gvk schema.GroupVersionKind) (*Kind, bool) {
	k, ok := byGVK[gvk]
	return k, ok
}

// KindOf returns the kind of an object by its Go type (its TypeMeta is not consulted).
func KindOf(obj runtime.Object) (*Kind, bool) {
	k, ok := byType[reflect.TypeOf(obj)]
	return k, ok
}

// MustKindOf is KindOf for a Go type known to be registered (a programming error otherwise).
func MustKindOf(obj runtime.Object) *Kind {
	k, ok := KindOf(obj)
	if !ok {
		panic(fmt.Sprintf("resource: %T is not a registered kind", obj))
	}
	return k
}

// ApplyOrderOf returns the apply rank of a kind by name alone (kind names are unique in the
// registry, and a manifest may spell the group differently), ApplyUnknown for other names.
func ApplyOrderOf(kind string) ApplyOrder {
	if k, ok := byName[kind]; ok {
		return k.Apply
	}
	return ApplyUnknown
}

// Check returns every problem of the registry: a missing name, rank or Go type, a list type of
// another kind, a duplicate, a translator-read kind without its Set list, a translator status without its place in the
// Report, a Set list no kind fills. Tests call it; a new entry that lacks what it needs fails
// them before anything serves it.
func Check() []error { return check(registry) }

func check(reg []*Kind) []error {
	var errs []error
	bad := func(k *Kind, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	names, gvks, types, resources, shorts := map[string]bool{}, map[schema.GroupVersionKind]bool{}, map[reflect.Type]bool{}, map[schema.GroupResource]bool{}, map[string]bool{}
	fields := map[any]*Kind{}
	var probe Set
	for _, k := range reg {
		if k.GVK.Kind == "" || k.GVK.Version == "" || k.Plural == "" {
			bad(k, "group/version/kind and plural are required")
		}
		if names[k.GVK.Kind] || gvks[k.GVK] || resources[k.GroupResource()] {
			bad(k, "registered twice (kind names, GVKs and plurals are unique)")
		}
		names[k.GVK.Kind], gvks[k.GVK], resources[k.GroupResource()] = true, true, true
		for _, s := range k.ShortNames {
			if shorts[s] {
				bad(k, "short name %q is taken", s)
			}
			shorts[s] = true
		}
		if k.Apply <= 0 || k.Apply > ApplyRoutes || k.Apply == ApplyUnknown { // ApplyRoutes is the last rank
			bad(k, "no apply order")
		}
		if k.goTypes.typ == nil {
			bad(k, "no Go types")
			continue
		}
		if types[k.goTypes.typ] {
			bad(k, "Go type %v registered twice", k.goTypes.typ)
		}
		types[k.goTypes.typ] = true
		if items, ok := reflect.TypeOf(k.NewList()).Elem().FieldByName("Items"); !ok || items.Type != reflect.SliceOf(k.goTypes.typ.Elem()) {
			bad(k, "its list type %T does not hold %v items", k.NewList(), k.goTypes.typ.Elem())
		}
		if _, hasStatus := k.goTypes.typ.Elem().FieldByName("Status"); hasStatus && k.Status == NoStatus {
			bad(k, "the Go type has a status but the entry says NoStatus")
		}
		if k.Root && k.set != nil {
			bad(k, "a root kind is not part of any project's Set")
		}
		if k.set != nil {
			if k.set.typ != k.goTypes.typ {
				bad(k, "Set list holds %v, the kind is %v", k.set.typ, k.goTypes.typ)
			}
			if other := fields[k.set.ptr(&probe)]; other != nil {
				bad(k, "Set list already belongs to %s", other)
			}
			fields[k.set.ptr(&probe)] = k
		}
		switch {
		case k.Status == StatusByTranslator && k.report == nil:
			bad(k, "its status is the translator's but the entry does not say where it is in status.Report")
		case k.Status == StatusByTranslator && k.set == nil:
			bad(k, "its status is the translator's but the translator does not read it (no Set list)")
		case k.Status != StatusByTranslator && k.report != nil:
			bad(k, "a place in status.Report but its status is not the translator's")
		case k.report != nil && k.report.typ != k.goTypes.typ:
			bad(k, "status.Report accessor is for %v, the kind is %v", k.report.typ, k.goTypes.typ)
		}
	}
	// Every list of Set is filled by exactly one kind.
	sv := reflect.ValueOf(&probe).Elem()
	for i := range sv.NumField() {
		f := sv.Field(i)
		if fields[f.Addr().Interface()] == nil {
			errs = append(errs, fmt.Errorf("resource.Set.%s: no registered kind fills it", sv.Type().Field(i).Name))
		}
	}
	return errs
}

// validatedWithPeers is validatedUpdate followed, when the object is otherwise valid, by a
// rule across the project's stored objects of the same kind (resource.Peers).
func validatedWithPeers[PT runtime.Object](validate func(obj, old PT) field.ErrorList, peers func(obj PT, others []PT) field.ErrorList) func(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	single := validatedUpdate(validate)
	return func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
		if errs := single(ctx, obj, old); len(errs) > 0 {
			return errs
		}
		k, ok := byType[reflect.TypeOf(obj)]
		if !ok {
			return nil
		}
		stored, err := Peers(ctx, k.GVK.GroupKind())
		if err != nil {
			return field.ErrorList{field.InternalError(nil, fmt.Errorf("listing %s: %w", k.Plural, err))}
		}
		others := make([]PT, 0, len(stored))
		for _, o := range stored {
			if p, ok := o.(PT); ok {
				others = append(others, p)
			}
		}
		return peers(obj.(PT), others)
	}
}
