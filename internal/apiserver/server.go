// Package apiserver serves the Apoxy API: one genuine Kubernetes GenericAPIServer per project,
// mounted at /projects/<name> on one HTTPS listener, plus a root server (admin only) for the
// Project kind. All of them share one datastore, each project under its own key prefix.
package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/admission"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/registry/rest"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	restclient "k8s.io/client-go/rest"

	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	"apoxy.dev/apoxy/internal/pki"
	"apoxy.dev/apoxy/internal/storage"
)

// DefaultProject is created on first start.
const DefaultProject = "default"

// Options configure the API server.
type Options struct {
	// DataDir holds the database, the PKI and the server secret.
	DataDir string
	// Addr is the HTTPS listen address, e.g. "127.0.0.1:6443"; port 0 picks a free port.
	Addr string
	// Ports are the data-plane ports new projects' default Gateways listen on.
	Ports Ports
	// Hosts are extra names or IPs for the serving certificate.
	Hosts []string
	// MaxMutatingInFlight bounds concurrent writes across all projects (default 64).
	MaxMutatingInFlight int
	// Synchronous is the SQLite synchronous mode (default FULL).
	Synchronous string
	Logger      *slog.Logger
	// OnProjectsChanged, if set, is called (from one goroutine at a time) after a project starts
	// or is removed, e.g. to rewrite kubeconfig files.
	OnProjectsChanged func()
	// OnProjectStopping, if set, is called before a project stops being served (it was
	// deleted), so whatever watches its API (its controller) can stop first instead of seeing
	// its watches fail.
	OnProjectStopping func(name string)
	// ProjectHandlers, if set, returns handlers a project's API serves at non-resource paths
	// (behind its authentication: the project's key or the admin's), e.g. its live access
	// log. LongRunningPaths are those that stream.
	ProjectHandlers  func(project string) map[string]http.Handler
	LongRunningPaths []string
	// Pages, if set, are served on the API's listener beside the API at paths below prefixes
	// (e.g. "/console/": the web console), with their own authentication.
	Pages map[string]http.Handler
	// OnObjectCreated, if set, is told (synchronously: keep it quick) each time an object of a
	// resource is created in a project, after it is stored: a controller then watches kinds
	// only once they have objects.
	OnObjectCreated func(project string, gr schema.GroupResource)
	// ValidateCollectorConfig, if set, checks an OpenTelemetry Collector configuration as the
	// data plane will, so that a Proxy's otelCollectorConfig the data plane would refuse is
	// refused when stored (collectorConfigs).
	ValidateCollectorConfig func(yaml []byte) error
}

// Server is the running API server. Create it with New, then Start.
type Server struct {
	opts  Options
	log   *slog.Logger
	keys  *Keyring
	ca    *pki.CA
	cert  tls.Certificate
	store *storage.Store
	// client is the etcd3 client every server shares (see sharedClient).
	client *sharedClient
	root   *genericServer
	authn  *tokenAuthenticator
	ln     net.Listener
	http   *http.Server
	url    string
	ctx    context.Context

	// openAPI is the OpenAPI handler every project server shares (sharedOpenAPI).
	openAPIOnce sync.Once
	openAPI     http.Handler
	openAPIErr  error

	mu       sync.RWMutex
	projects map[string]*project
	ready    atomic.Bool
	shutdown sync.Once
	done     chan struct{}
}

type project struct {
	name    string
	created time.Time
	spec    platformv1a1.ProjectSpec
	key     projectKey
	server  *genericServer
	handler http.Handler
	cancel  context.CancelFunc
}

var disableRangeStream sync.Once

// New validates options; nothing is started.
func New(opts Options) (*Server, error) {
	var gateErr error
	disableRangeStream.Do(func() {
		// kine v0.17.5's streaming list (RangeStream) has a data race (sqllog.ListStream reads
		// the revision its row-scanning goroutine writes); plain Range lists are race-free.
		gateErr = utilfeature.DefaultMutableFeatureGate.SetFromMap(map[string]bool{string(features.EtcdRangeStream): false})
	})
	if gateErr != nil {
		return nil, fmt.Errorf("apiserver: feature gates: %w", gateErr)
	}
	if opts.DataDir == "" {
		return nil, errors.New("apiserver: a data directory is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:6443"
	}
	if opts.MaxMutatingInFlight <= 0 {
		opts.MaxMutatingInFlight = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts, log: opts.Logger, projects: map[string]*project{}, done: make(chan struct{})}, nil
}

// Start opens storage, binds the listener, starts the root server and every existing project,
// and serves. It returns once the API answers; ctx cancellation shuts everything down.
func (s *Server) Start(ctx context.Context) error {
	s.ctx = ctx
	if err := os.MkdirAll(s.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	pkiDir := filepath.Join(s.opts.DataDir, "pki")
	var err error
	if s.keys, err = LoadOrCreateKeyring(filepath.Join(pkiDir, "secret.key")); err != nil {
		return err
	}
	if s.ca, err = pki.LoadOrCreateCA(pkiDir, "apoxy-ca"); err != nil {
		return err
	}
	if s.ln, err = net.Listen("tcp", s.opts.Addr); err != nil {
		return fmt.Errorf("apiserver: listen %s: %w", s.opts.Addr, err)
	}
	hosts, urlHost := s.certHosts()
	if s.cert, err = s.ca.ServingCert(pkiDir, "apiserver", hosts); err != nil {
		s.ln.Close()
		return fmt.Errorf("apiserver: serving certificate: %w", err)
	}
	s.url = "https://" + urlHost
	// Storage outlives ctx: Shutdown closes it after every server using it has stopped.
	if s.store, err = storage.Start(context.WithoutCancel(ctx), storage.Options{Dir: s.opts.DataDir, Synchronous: s.opts.Synchronous}); err != nil {
		s.ln.Close()
		return err
	}
	if s.client, err = newSharedClient(s.store.Endpoint); err != nil {
		s.shutdownStorage()
		return err
	}
	s.authn = &tokenAuthenticator{keys: s.keys, lookup: s.lookupProject}
	if err := s.startRoot(ctx); err != nil {
		s.shutdownStorage()
		return err
	}
	s.http = &http.Server{
		Handler:           newMutatingLimiter(s.opts.MaxMutatingInFlight, 5*time.Second, s),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	tlsLn := tls.NewListener(s.ln, &tls.Config{Certificates: []tls.Certificate{s.cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	go func() {
		if err := s.http.Serve(tlsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api listener failed", "err", err)
		}
	}()
	if err := s.startProjects(ctx); err != nil {
		s.Shutdown()
		return err
	}
	s.ready.Store(true)
	s.log.Info("api server ready", "url", s.url, "projects", s.ProjectNames())
	go func() {
		<-ctx.Done()
		s.Shutdown()
	}()
	return nil
}

// certHosts returns the serving certificate's names and the host:port for URLs.
func (s *Server) certHosts() ([]string, string) {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	urlHost := net.JoinHostPort(host, port)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		urlHost = net.JoinHostPort("127.0.0.1", port)
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					hosts = append(hosts, n.IP.String())
				}
			}
		}
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
	} else if host != "" {
		hosts = append(hosts, host)
	}
	hosts = append(hosts, s.opts.Hosts...)
	slices.Sort(hosts)
	return slices.Compact(hosts), urlHost
}

func (s *Server) loopback(path string) *restclient.Config {
	return &restclient.Config{
		Host:            s.url + path,
		BearerToken:     s.keys.AdminToken(),
		TLSClientConfig: restclient.TLSClientConfig{CAData: s.ca.CertPEM},
	}
}

func (s *Server) startRoot(ctx context.Context) error {
	resources, err := RootResources()
	if err != nil {
		return err
	}
	root, err := newGenericServer(genericConfig{
		name:            "apoxy-root",
		storagePrefix:   "/root/registry",
		storage:         s.client,
		resources:       resources,
		authn:           s.authn.requestAuthenticator(),
		authz:           adminAuthorizer(),
		externalAddress: strings.TrimPrefix(s.url, "https://"),
		loopback:        s.loopback(""),
		maxInFlight:     400, maxMutatingInFlight: 200,
		extra: func(g *genericServer) map[schema.GroupVersion]map[string]rest.Storage {
			creds := &credentialsREST{projects: g.stores[projectsGR], keys: s.keys}
			return map[schema.GroupVersion]map[string]rest.Storage{platformv1a1.SchemeGroupVersion: {"projects/credentials": creds}}
		},
	})
	if err != nil {
		return err
	}
	if _, _, err := root.PrepareRun().NonBlockingRunWithContext(ctx, 0); err != nil {
		return fmt.Errorf("apiserver: start root: %w", err)
	}
	s.root = root
	return root.waitCachesReady(ctx)
}

var projectsGR = schema.GroupResource{Group: platformv1a1.GroupName, Resource: "projects"}

// startProjects creates the default project on first start, starts every stored project, then
// follows Project changes: a new Project is served within moments, a deleted one is stopped and
// its data removed.
func (s *Server) startProjects(ctx context.Context) error {
	store := s.root.stores[projectsGR]
	ctx = genericapirequest.WithNamespace(ctx, "")
	marker := filepath.Join(s.opts.DataDir, "initialized")
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		p := &platformv1a1.Project{ObjectMeta: metav1.ObjectMeta{Name: DefaultProject}}
		if _, err := store.Create(ctx, p, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apiserver: create default project: %w", err)
		}
		if err := pki.WriteFileAtomic(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return err
		}
	}
	rv, err := s.syncProjects(ctx)
	if err != nil {
		return err
	}
	go s.followProjects(ctx, rv)
	return nil
}

// syncProjects makes the served set equal the stored set: it starts missing projects and removes
// served ones whose Project is gone. It returns the list's resourceVersion to watch from.
func (s *Server) syncProjects(ctx context.Context) (string, error) {
	var list runtime.Object
	err := retryWhileInitializing(ctx, func() (err error) {
		list, err = s.root.stores[projectsGR].List(genericapirequest.WithNamespace(ctx, ""), &metainternalversion.ListOptions{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("apiserver: list projects: %w", err)
	}
	pl := list.(*platformv1a1.ProjectList)
	stored := map[string]string{}
	for i := range pl.Items {
		p := &pl.Items[i]
		stored[p.Name] = string(p.UID)
		if p.DeletionTimestamp != nil {
			continue
		}
		if err := s.ensureProject(ctx, p); err != nil {
			return "", err
		}
	}
	s.mu.RLock()
	var gone []*project
	for name, p := range s.projects {
		if stored[name] != p.key.uid {
			gone = append(gone, p)
		}
	}
	s.mu.RUnlock()
	for _, p := range gone {
		s.removeProject(p.name, p.key.uid)
	}
	return pl.ResourceVersion, nil
}

// followProjects applies Project events as they happen; after any watch interruption it
// re-syncs from a fresh list, so no create or delete is missed.
func (s *Server) followProjects(ctx context.Context, rv string) {
	store := s.root.stores[projectsGR]
	ctx = genericapirequest.WithNamespace(ctx, "")
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = s.syncProjects(ctx); err != nil {
				s.log.Error("sync projects", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
		}
		w, err := store.Watch(ctx, &metainternalversion.ListOptions{ResourceVersion: rv, Watch: true})
		if err != nil {
			s.log.Error("watch projects", "err", err)
			rv = ""
			sleepCtx(ctx, time.Second)
			continue
		}
		rv = s.consumeProjectEvents(ctx, w)
		w.Stop()
	}
}

// consumeProjectEvents handles events until the watch ends; it returns the resourceVersion to
// resume from, or "" to re-sync.
func (s *Server) consumeProjectEvents(ctx context.Context, w watch.Interface) string {
	rv := ""
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*platformv1a1.Project)
		if !ok || ev.Type == watch.Error {
			return ""
		}
		rv = p.ResourceVersion
		switch ev.Type {
		case watch.Added, watch.Modified:
			if p.DeletionTimestamp != nil {
				continue
			}
			if err := s.ensureProject(ctx, p); err != nil {
				s.log.Error("start project", "project", p.Name, "err", err)
				return ""
			}
		case watch.Deleted:
			s.removeProject(p.Name, string(p.UID))
		}
	}
	return rv
}

// retryWhileInitializing retries f while the watch caches are still filling (the API answers 429
// "storage is (re)initializing" for a moment after a server starts).
func retryWhileInitializing(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if !apierrors.IsTooManyRequests(err) || time.Now().After(deadline) {
			return err
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ensureProject starts a project that is not running, or refreshes its key parameters.
func (s *Server) ensureProject(ctx context.Context, p *platformv1a1.Project) error {
	key := projectKey{uid: string(p.UID), revision: p.Spec.KeyRevision}
	s.mu.Lock()
	if cur, ok := s.projects[p.Name]; ok {
		if cur.key.uid == key.uid {
			cur.key = key
			changed := !slices.Equal(cur.spec.Hostnames, p.Spec.Hostnames) || !slices.Equal(cur.spec.BackendNetworks, p.Spec.BackendNetworks)
			cur.spec = *p.Spec.DeepCopy()
			s.mu.Unlock()
			if changed {
				s.projectsChanged()
			}
			return s.markReady(ctx, p)
		}
		// Same name, new object: the old one was deleted while we were not watching.
		s.mu.Unlock()
		s.removeProject(p.Name, cur.key.uid)
	} else {
		s.mu.Unlock()
	}
	start := time.Now()
	pr, err := s.startProject(ctx, p.Name, key)
	if err != nil {
		return err
	}
	pr.created = p.CreationTimestamp.Time
	pr.spec = *p.Spec.DeepCopy()
	s.mu.Lock()
	s.projects[p.Name] = pr
	s.mu.Unlock()
	s.log.Info("project serving", "project", p.Name, "path", projectPath(p.Name), "took", time.Since(start).Round(time.Millisecond))
	s.projectsChanged()
	return s.markReady(ctx, p)
}

func projectPath(name string) string { return "/projects/" + name }

// sharedOpenAPI builds, once, a project server that is never served nor started, only so that
// its OpenAPI handlers (installed by PrepareRun) describe what every project serves; project
// servers hand /openapi/* to them behind their own authentication and authorization.
func (s *Server) sharedOpenAPI(resources []*Resource) (http.Handler, error) {
	s.openAPIOnce.Do(func() {
		gs, err := newGenericServer(genericConfig{
			name:            "apoxy-openapi",
			storagePrefix:   "/openapi-template/registry",
			storage:         s.client,
			resources:       resources,
			authn:           s.authn.requestAuthenticator(),
			authz:           projectAuthorizer("openapi-template"),
			admission:       admission.NewChainHandler(),
			externalAddress: strings.TrimPrefix(s.url, "https://"),
			loopback:        s.loopback("/openapi-template"),
			maxInFlight:     1, maxMutatingInFlight: 1,
		})
		if err != nil {
			s.openAPIErr = fmt.Errorf("apiserver: OpenAPI template: %w", err)
			return
		}
		gs.PrepareRun()
		s.openAPI = gs.Handler.NonGoRestfulMux
	})
	return s.openAPI, s.openAPIErr
}

func (s *Server) startProject(ctx context.Context, name string, key projectKey) (*project, error) {
	resources, err := ProjectResources()
	if err != nil {
		return nil, err
	}
	openAPI, err := s.sharedOpenAPI(resources)
	if err != nil {
		return nil, err
	}
	lifecycle := &namespaceLifecycle{}
	collectorCfgs := &collectorConfigs{validate: s.opts.ValidateCollectorConfig}
	gs, err := newGenericServer(genericConfig{
		openAPI:         openAPI,
		name:            "apoxy-project-" + name,
		storagePrefix:   projectPath(name) + "/registry",
		storage:         s.client,
		resources:       resources,
		authn:           s.authn.requestAuthenticator(),
		authz:           projectAuthorizer(name),
		admission:       admission.NewChainHandler(lifecycle, collectorCfgs),
		externalAddress: strings.TrimPrefix(s.url, "https://"),
		loopback:        s.loopback(projectPath(name)),
		maxInFlight:     400, maxMutatingInFlight: 200,
		longRunning: s.opts.LongRunningPaths,
		onCreate: func(gr schema.GroupResource) {
			if s.opts.OnObjectCreated != nil {
				s.opts.OnObjectCreated(name, gr)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if s.opts.ProjectHandlers != nil {
		for path, h := range s.opts.ProjectHandlers(name) {
			gs.Handler.NonGoRestfulMux.Handle(path, h)
		}
	}
	lifecycle.namespaces = gs.stores[namespacesGR]
	collectorCfgs.configMaps, collectorCfgs.proxies = gs.stores[configMapsGR], gs.stores[proxiesGR]
	gs.stores[namespacesGR].AfterDelete = func(obj runtime.Object, _ *metav1.DeleteOptions) {
		go gs.deleteNamespaceContents(context.WithoutCancel(ctx), obj.(*corev1.Namespace).Name, s.log)
	}
	pctx, cancel := context.WithCancel(ctx)
	if _, _, err := gs.PrepareRun().NonBlockingRunWithContext(pctx, 0); err != nil {
		cancel()
		gs.Destroy()
		return nil, fmt.Errorf("apiserver: start project %s: %w", name, err)
	}
	objs, err := bootstrapObjects(name, s.opts.Ports)
	if err == nil {
		err = gs.bootstrap(pctx, objs)
	}
	if err == nil {
		err = gs.replaceServerKey(pctx, name, s.cert)
	}
	if err == nil {
		err = gs.waitCachesReady(pctx)
	}
	if err != nil {
		cancel()
		gs.Destroy()
		return nil, fmt.Errorf("apiserver: project %s: %w", name, err)
	}
	return &project{name: name, key: key, server: gs, handler: http.StripPrefix(projectPath(name), upstreamAlias(gs.Handler)), cancel: cancel}, nil
}

// removeProject stops serving a project and deletes its data, unless a newer object with the
// same name (different uid) has taken its place.
func (s *Server) removeProject(name, uid string) {
	s.mu.Lock()
	p, ok := s.projects[name]
	if !ok || p.key.uid != uid {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if s.opts.OnProjectStopping != nil {
		s.opts.OnProjectStopping(name)
	}
	s.mu.Lock()
	if s.projects[name] != p {
		s.mu.Unlock()
		return
	}
	delete(s.projects, name)
	s.mu.Unlock()
	p.cancel()
	p.server.Destroy()
	s.projectsChanged()
	n, err := s.store.DeletePrefix(context.WithoutCancel(s.ctx), projectPath(name)+"/")
	if err != nil {
		s.log.Error("delete project data", "project", name, "err", err)
		return
	}
	s.log.Info("project deleted", "project", name, "objects", n)
}

func (s *Server) projectsChanged() {
	if s.opts.OnProjectsChanged != nil && s.ready.Load() {
		s.opts.OnProjectsChanged()
	}
}

func (s *Server) markReady(ctx context.Context, p *platformv1a1.Project) error {
	path := projectPath(p.Name)
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" && c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.Generation && p.Status.APIPath == path {
			return nil
		}
	}
	upd := p.DeepCopy()
	upd.Status.ObservedGeneration = p.Generation
	upd.Status.APIPath = path
	setCondition(&upd.Status.Conditions, metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "Serving", ObservedGeneration: p.Generation,
		Message: "the project's API is served at " + path,
	})
	_, _, err := s.root.status[projectsGR].Update(genericapirequest.WithNamespace(ctx, ""), p.Name, rest.DefaultUpdatedObjectInfo(upd), nil, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version will come through the watch
	}
	return err
}

func setCondition(conds *[]metav1.Condition, c metav1.Condition) {
	c.LastTransitionTime = metav1.Now()
	for i := range *conds {
		if (*conds)[i].Type == c.Type {
			if (*conds)[i].Status == c.Status {
				c.LastTransitionTime = (*conds)[i].LastTransitionTime
			}
			(*conds)[i] = c
			return
		}
	}
	*conds = append(*conds, c)
}

// deleteNamespaceContents removes every namespaced object of a deleted namespace.
func (g *genericServer) deleteNamespaceContents(ctx context.Context, ns string, log *slog.Logger) {
	ctx = genericapirequest.WithNamespace(ctx, ns)
	for gr, store := range g.stores {
		if !store.NamespaceScoped() {
			continue
		}
		if _, err := store.DeleteCollection(ctx, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}, &metainternalversion.ListOptions{}); err != nil && ctx.Err() == nil {
			log.Error("delete namespace contents", "namespace", ns, "resource", gr.String(), "err", err)
		}
	}
}

func (s *Server) lookupProject(name string) (projectKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.projects[name]
	if !ok {
		return projectKey{}, false
	}
	return p.key, true
}

// ServeHTTP routes /projects/<name>/... to that project's server and everything else to the
// root server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for prefix, h := range s.opts.Pages {
		if strings.HasPrefix(r.URL.Path, prefix) {
			h.ServeHTTP(w, r)
			return
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/projects/")
	if !ok {
		s.root.Handler.ServeHTTP(w, r)
		return
	}
	name, _, _ := strings.Cut(rest, "/")
	s.mu.RLock()
	p := s.projects[name]
	s.mu.RUnlock()
	// Keys are checked here first, so that a project key gets the same answer for another
	// project whether it exists or not (no existence oracle): 401 without valid credentials,
	// 403 for another project's key, 404 only for the admin.
	probe := *r // the bearer-token authenticator removes the header it consumed
	probe.Header = r.Header.Clone()
	resp, ok, _ := s.authn.requestAuthenticator().AuthenticateRequest(&probe)
	if !ok || resp == nil {
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
		return
	}
	groups := resp.User.GetGroups()
	if !slices.Contains(groups, AdminGroup) && !slices.Contains(groups, projectGroupPrefix+name) {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, projectForbidden(name))
		return
	}
	if p == nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("project %q not found", name))
		return
	}
	p.handler.ServeHTTP(w, r)
}

// projectForbidden is the refusal of a key for another project.
func projectForbidden(name string) string {
	return fmt.Sprintf("this key does not grant access to project %q", name)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

// Ready reports whether the API serves every known project.
func (s *Server) Ready() bool { return s.ready.Load() }

// URL is the server's base URL (https://host:port).
func (s *Server) URL() string { return s.url }

// ServingCertificate is the API server's own certificate (tests check that it never leaves
// the server).
func (s *Server) ServingCertificate() *x509.Certificate {
	leaf, err := x509.ParseCertificate(s.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// ServingCert issues (or reuses, from the data directory) a certificate of the server's CA
// for another listener of the process (the tunnel endpoint), for hosts. Valid after Start.
func (s *Server) ServingCert(name string, hosts []string) (tls.Certificate, error) {
	if s.ca == nil {
		return tls.Certificate{}, fmt.Errorf("apiserver: not started")
	}
	return s.ca.ServingCert(filepath.Join(s.opts.DataDir, "pki"), name, hosts)
}

// CACertPEM is the CA that signed the serving certificate.
func (s *Server) CACertPEM() []byte { return s.ca.CertPEM }

// AdminToken is the bearer token of the server admin.
func (s *Server) AdminToken() string { return s.keys.AdminToken() }

// ProjectToken returns the current key of a running project.
func (s *Server) ProjectToken(name string) (string, error) {
	k, ok := s.lookupProject(name)
	if !ok {
		return "", fmt.Errorf("project %q is not served", name)
	}
	return s.keys.ProjectToken(name, k.uid, k.revision), nil
}

// ProjectNames lists the served projects, sorted.
func (s *Server) ProjectNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.projects))
	for n := range s.projects {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ProjectSpec returns a served project's spec (hostnames and networks the admin gave it).
func (s *Server) ProjectSpec(name string) (platformv1a1.ProjectSpec, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.projects[name]
	if !ok {
		return platformv1a1.ProjectSpec{}, false
	}
	return *p.spec.DeepCopy(), true
}

// ProjectsCreated returns the served projects with their creation times.
func (s *Server) ProjectsCreated() map[string]time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]time.Time, len(s.projects))
	for n, p := range s.projects {
		out[n] = p.created
	}
	return out
}

// Done is closed once Shutdown has finished.
func (s *Server) Done() <-chan struct{} { return s.done }

// Shutdown stops accepting requests, stops every project and closes storage. It is safe to
// call more than once and from several goroutines; every call returns once shutdown is done.
func (s *Server) Shutdown() {
	s.shutdown.Do(s.shutdownNow)
	<-s.done
}

func (s *Server) shutdownNow() {
	defer close(s.done)
	s.ready.Store(false)
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
	}
	s.mu.Lock()
	projects := s.projects
	s.projects = map[string]*project{}
	s.mu.Unlock()
	for _, p := range projects {
		p.cancel()
		p.server.Destroy()
	}
	if s.root != nil {
		s.root.Destroy()
	}
	s.shutdownStorage()
}

func (s *Server) shutdownStorage() {
	if s.client != nil {
		s.client.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
}

// RootConfig returns an admin client config for the server root (Projects), for in-process
// tools and tests.
func (s *Server) RootConfig() *restclient.Config { return s.loopback("") }

// ProjectConfig returns an admin client config for a project's API (for in-process
// controllers).
func (s *Server) ProjectConfig(name string) *restclient.Config {
	return s.loopback(projectPath(name))
}
