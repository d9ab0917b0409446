package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	apiopenapi "k8s.io/apiserver/pkg/endpoints/openapi"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	restclient "k8s.io/client-go/rest"
	"k8s.io/component-base/compatibility"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	openapiutil "k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"apoxy.dev/apoxy/internal/resource"
	apoxyresource "apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/version"
)

// KubernetesVersion is the Kubernetes API version our server emulates (the k8s.io/apiserver
// minor we link).
const KubernetesVersion = "1.37"

// effectiveVersion reports our build in /version instead of the unset component-base
// placeholder ("v0.0.0-master+$Format:%H$").
type effectiveVersion struct{ compatibility.EffectiveVersion }

func (v effectiveVersion) Info() *apimachineryversion.Info {
	info := v.EffectiveVersion.Info()
	info.GitVersion = "v" + KubernetesVersion + ".0+apoxy-" + version.String()
	info.GitCommit, info.GitTreeState, info.BuildDate = "", "", ""
	return info
}

// genericConfig is what one GenericAPIServer (the root, or one project) needs.
type genericConfig struct {
	name string
	// storagePrefix isolates this server's keys in the shared datastore.
	storagePrefix string
	storage       *sharedClient
	resources     []*Resource
	authn         authenticator.Request
	authz         authorizer.Authorizer
	admission     admission.Interface
	// externalAddress is host:port of the HTTPS listener; loopback is a client of this server.
	externalAddress string
	loopback        *restclient.Config
	// maxInFlight and maxMutatingInFlight bound this server's concurrent requests.
	maxInFlight, maxMutatingInFlight int
	// extra adds storage beyond the resources' own (e.g. projects/credentials), keyed by
	// version then path; it sees the built stores.
	extra func(g *genericServer) map[schema.GroupVersion]map[string]rest.Storage
	// handlers are served at non-resource paths behind the same authentication and
	// authorization; longRunning names those that stream (no request timeout).
	handlers    map[string]http.Handler
	longRunning []string
	// onCreate, if set, is told the resource of every object created (after it is stored).
	onCreate func(schema.GroupResource)
	// openAPI, if set, serves /openapi/v2 and /openapi/v3 instead of specs of this server's
	// own: every project serves the same kinds at the same paths, so one spec (built once by
	// a template server, sharedOpenAPI) serves them all, behind each project's own
	// authentication. Building the specs per project cost about a third of an idle
	// project's memory.
	openAPI http.Handler
}

// genericServer is a built, not yet started, GenericAPIServer and its stores.
type genericServer struct {
	*genericapiserver.GenericAPIServer
	stores map[schema.GroupResource]*genericregistry.Store
	kinds  map[schema.GroupKind]*genericregistry.Store
	status map[schema.GroupResource]*statusREST
}

func newGenericServer(c genericConfig) (*genericServer, error) {
	cfg := genericapiserver.NewRecommendedConfig(Codecs)
	cfg.EffectiveVersion = effectiveVersion{compatibility.NewEffectiveVersionFromString(KubernetesVersion, "", "")}
	cfg.ExternalAddress = c.externalAddress
	if host, _, err := net.SplitHostPort(c.externalAddress); err == nil {
		cfg.PublicAddress = net.ParseIP(host)
	}
	if cfg.PublicAddress == nil {
		cfg.PublicAddress = net.IPv4(127, 0, 0, 1)
	}
	cfg.LoopbackClientConfig = c.loopback
	cfg.Authentication.Authenticator = c.authn
	cfg.Authorization.Authorizer = c.authz
	cfg.AdmissionControl = c.admission
	cfg.MaxRequestsInFlight = c.maxInFlight
	cfg.MaxMutatingRequestsInFlight = c.maxMutatingInFlight
	// Health endpoints of a project are its own; the process-level /readyz is on the admin
	// listener. No etcd health checks are registered (their lifecycle leaks per project).
	namer := apiopenapi.NewDefinitionNamer(Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(definitions, namer)
	cfg.OpenAPIConfig.Info.Title = "Apoxy"
	cfg.OpenAPIConfig.Info.Version = KubernetesVersion
	cfg.OpenAPIConfig.GetDefinitionName = definitionName(namer)
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(noDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "Apoxy"
	cfg.OpenAPIV3Config.Info.Version = KubernetesVersion
	cfg.OpenAPIV3Config.GetDefinitionName = definitionName(namer)
	// Resolve every V3 $ref with our namer (the default config resolves them eagerly, with the
	// plain one, so it is given no definitions to resolve).
	cfg.OpenAPIV3Config.GetDefinitions = definitions
	cfg.OpenAPIV3Config.Definitions = definitions(func(name string) spec.Ref {
		defName, _ := cfg.OpenAPIV3Config.GetDefinitionName(name)
		return spec.MustCreateRef("#/components/schemas/" + openapicommon.EscapeJsonPointer(defName))
	})
	cfg.SkipOpenAPIInstallation = c.openAPI != nil
	getter := &restOptionsGetter{client: c.storage, prefix: c.storagePrefix}
	cfg.RESTOptionsGetter = getter
	if len(c.longRunning) > 0 {
		base := cfg.LongRunningFunc
		cfg.LongRunningFunc = func(r *http.Request, ri *apirequest.RequestInfo) bool {
			if ri != nil && !ri.IsResourceRequest && slices.Contains(c.longRunning, ri.Path) {
				return true
			}
			return base != nil && base(r, ri)
		}
	}

	s, err := cfg.Complete().New(c.name, genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("apiserver %s: %w", c.name, err)
	}
	gs := &genericServer{GenericAPIServer: s, stores: map[schema.GroupResource]*genericregistry.Store{}, kinds: map[schema.GroupKind]*genericregistry.Store{}, status: map[schema.GroupResource]*statusREST{}}

	groups := map[string]*genericapiserver.APIGroupInfo{}
	var order []string
	for _, r := range c.resources {
		store, status, err := newStores(r, getter, gs.peers)
		if err != nil {
			return nil, err
		}
		if c.onCreate != nil {
			gr := r.GroupResource()
			store.AfterCreate = func(runtime.Object, *metav1.CreateOptions) { c.onCreate(gr) }
		}
		gs.stores[r.GroupResource()] = store
		gs.kinds[r.GVK.GroupKind()] = store
		g := r.GVK.Group
		info, ok := groups[g]
		if !ok {
			i := genericapiserver.NewDefaultAPIGroupInfo(g, Scheme, ParameterCodec, Codecs)
			info = &i
			groups[g] = info
			order = append(order, g)
		}
		v := r.GVK.Version
		if info.VersionedResourcesStorageMap[v] == nil {
			info.VersionedResourcesStorageMap[v] = map[string]rest.Storage{}
		}
		info.VersionedResourcesStorageMap[v][r.Plural] = &resourceREST{Store: store, r: r}
		if status != nil {
			gs.status[r.GroupResource()] = status
			info.VersionedResourcesStorageMap[v][r.Plural+"/status"] = status
		}
	}
	if c.extra != nil {
		for gv, paths := range c.extra(gs) {
			info, ok := groups[gv.Group]
			if !ok {
				return nil, fmt.Errorf("apiserver %s: extra storage for unserved group %q", c.name, gv.Group)
			}
			for path, st := range paths {
				info.VersionedResourcesStorageMap[gv.Version][path] = st
			}
		}
	}
	var named []*genericapiserver.APIGroupInfo
	for _, g := range order {
		if g == "" {
			if err := s.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, groups[g]); err != nil {
				return nil, fmt.Errorf("apiserver %s: install core group: %w", c.name, err)
			}
			continue
		}
		named = append(named, groups[g])
	}
	if err := s.InstallAPIGroups(named...); err != nil {
		return nil, fmt.Errorf("apiserver %s: install groups: %w", c.name, err)
	}
	if c.openAPI != nil {
		s.Handler.NonGoRestfulMux.Handle("/openapi/v2", c.openAPI)
		s.Handler.NonGoRestfulMux.Handle("/openapi/v3", c.openAPI)
		s.Handler.NonGoRestfulMux.HandlePrefix("/openapi/v3/", c.openAPI)
	}
	return gs, nil
}

// waitCachesReady waits until every store's watch cache is filled, so the first requests to a
// new project are answered instead of getting 429 "storage is (re)initializing".
func (g *genericServer) waitCachesReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for gr, store := range g.stores {
		for {
			err := store.ReadinessCheck()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s cache not ready: %w", gr, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// definitionName publishes every OpenAPI model under the name the scheme gives its type, with
// the x-kubernetes-group-version-kind extension server-side apply needs. Types with an
// OpenAPIModelName method already use that name; upstream Gateway API types have none, so their
// definitions are keyed by Go import path ("sigs.k8s.io/gateway-api/apis/v1.HTTPRoute"), which
// maps to the scheme's reverse-DNS name ("io.k8s.sigs.gateway-api.apis.v1.HTTPRoute").
func noDefinitions(openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	return nil
}

const gvkExtension = "x-kubernetes-group-version-kind"

func definitionName(namer *apiopenapi.DefinitionNamer) func(string) (string, spec.Extensions) {
	return func(name string) (string, spec.Extensions) {
		if strings.Contains(name, "/") {
			name = openapiutil.ToRESTFriendlyName(name)
		}
		name, ext := namer.GetDefinitionName(name)
		// The same Go types are registered at the internal hub version; clients must only see
		// the served version.
		if gvks, ok := ext[gvkExtension].([]any); ok {
			served := make([]any, 0, len(gvks))
			for _, g := range gvks {
				if m, ok := g.(map[string]any); ok && m["version"] == runtime.APIVersionInternal {
					continue
				}
				served = append(served, g)
			}
			ext = spec.Extensions{gvkExtension: served}
		}
		return name, ext
	}
}

// peers lists the stored objects of a kind in every namespace (resource.PeersFunc).
func (g *genericServer) peers(ctx context.Context, gk schema.GroupKind) ([]runtime.Object, error) {
	store, ok := g.kinds[gk]
	if !ok {
		return nil, fmt.Errorf("%s is not served", gk)
	}
	list, err := store.List(genericapirequest.WithNamespace(ctx, metav1.NamespaceAll), &metainternalversion.ListOptions{})
	if err != nil {
		return nil, err
	}
	return meta.ExtractList(list)
}

// newStores builds the registry store of a resource and, if it has one, its status REST.
func newStores(r *Resource, getter generic.RESTOptionsGetter, peers resource.PeersFunc) (*genericregistry.Store, *statusREST, error) {
	st := newStrategy(r, peers)
	tc, err := newTableConvertor(r.Columns)
	if err != nil {
		return nil, nil, fmt.Errorf("apiserver: %s: %w", r.GVK.Kind, err)
	}
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return r.New() },
		NewListFunc:               r.NewList,
		PredicateFunc:             predicate(r.Namespaced),
		DefaultQualifiedResource:  r.GroupResource(),
		SingularQualifiedResource: schema.GroupResource{Group: r.GVK.Group, Resource: strings.ToLower(r.GVK.Kind)},
		CreateStrategy:            st,
		UpdateStrategy:            st,
		DeleteStrategy:            st,
		ResetFieldsStrategy:       st,
		TableConvertor:            tc,
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: getter, AttrFunc: attrs(r.Namespaced)}); err != nil {
		return nil, nil, fmt.Errorf("apiserver: %s store: %w", r.GVK.Kind, err)
	}
	if !r.HasStatus() {
		return store, nil, nil
	}
	statusStore := *store
	ss := statusStrategy{st}
	statusStore.UpdateStrategy = ss
	statusStore.ResetFieldsStrategy = ss
	return store, &statusREST{store: &statusStore}, nil
}

func attrs(namespaced bool) func(runtime.Object) (labels.Set, fields.Set, error) {
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, err
		}
		f := fields.Set{"metadata.name": m.GetName()}
		if namespaced {
			f["metadata.namespace"] = m.GetNamespace()
		}
		return labels.Set(m.GetLabels()), f, nil
	}
}

func predicate(namespaced bool) func(labels.Selector, fields.Selector) storage.SelectionPredicate {
	return func(l labels.Selector, f fields.Selector) storage.SelectionPredicate {
		return storage.SelectionPredicate{Label: l, Field: f, GetAttrs: attrs(namespaced)}
	}
}

// resourceREST adds short names and categories to a registry store.
type resourceREST struct {
	*genericregistry.Store
	r *Resource
}

var (
	_ rest.ShortNamesProvider = (*resourceREST)(nil)
	_ rest.CategoriesProvider = (*resourceREST)(nil)
)

func (s *resourceREST) ShortNames() []string { return s.r.ShortNames }
func (s *resourceREST) Categories() []string { return s.r.Categories }

// statusREST serves the /status subresource through a copy of the main store with the status
// strategy. It shares the main store's storage, so Destroy is a no-op.
type statusREST struct{ store *genericregistry.Store }

var (
	_ rest.Patcher              = (*statusREST)(nil)
	_ rest.ResetFieldsStrategy  = (*statusREST)(nil)
	_ rest.TableConvertor       = (*statusREST)(nil)
	_ rest.SingularNameProvider = (*statusREST)(nil)
)

func (s *statusREST) New() runtime.Object { return s.store.New() }
func (s *statusREST) Destroy()            {}
func (s *statusREST) GetSingularName() string {
	return s.store.GetSingularName()
}
func (s *statusREST) Get(ctx context.Context, name string, o *metav1.GetOptions) (runtime.Object, error) {
	return s.store.Get(ctx, name, o)
}
func (s *statusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, force bool, o *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Status writes never create the object.
	return s.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, o)
}
func (s *statusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return s.store.GetResetFields()
}
func (s *statusREST) ConvertToTable(ctx context.Context, obj, opts runtime.Object) (*metav1.Table, error) {
	return s.store.ConvertToTable(ctx, obj, opts)
}

// restOptionsGetter points every resource at the shared datastore under this server's prefix,
// encoding each object at its group's served version.
type restOptionsGetter struct {
	client *sharedClient
	prefix string
}

func (g *restOptionsGetter) GetRESTOptions(resource schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	// A group may serve kinds at different versions (core.apoxy.dev: Backend at v1alpha2,
	// DomainRecord at v1alpha3): each resource is stored at the version its kind is served at.
	var gv schema.GroupVersion
	for _, k := range apoxyresource.Kinds() {
		if k.GroupResource() == resource {
			gv = k.GVK.GroupVersion()
		}
	}
	if gv.Version == "" {
		versions := Scheme.PrioritizedVersionsForGroup(resource.Group)
		if len(versions) == 0 {
			return generic.RESTOptions{}, fmt.Errorf("apiserver: no version for group %q", resource.Group)
		}
		gv = versions[0]
	}
	cfg := storagebackend.NewDefaultConfig(g.prefix, Codecs.LegacyCodec(gv))
	cfg.EncodeVersioner = gv
	cfg.CompactionInterval = 0 // kine compacts
	resourcePrefix := "/" + resource.Resource
	if resource.Group != "" {
		resourcePrefix = "/" + resource.Group + resourcePrefix
	}
	return generic.RESTOptions{
		StorageConfig:           cfg.ForResource(resource),
		Decorator:               g.client.decorator(),
		DeleteCollectionWorkers: 1,
		ResourcePrefix:          resourcePrefix,
	}, nil
}
