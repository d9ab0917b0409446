// Package edgetest starts the whole product in-process for end-to-end tests: API server (fresh
// data directory), controllers and data plane on free loopback ports, with an injectable DNS
// resolver and upstream CA. Tests apply YAML through the real API, wait on status, and send
// real traffic.
package edgetest

import (
	"bufio"
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/grpclog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	"apoxy.dev/apoxy/internal/acme"
	"apoxy.dev/apoxy/internal/apiserver"
	"apoxy.dev/apoxy/internal/platform"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
	"apoxy.dev/apoxy/internal/proxy/upstream"
	"apoxy.dev/apoxy/internal/resource"
)

var quietLibraries sync.Once

// Options tune the environment.
type Options struct {
	// Hosts resolves FQDN endpoints (name -> IPs) instead of the system resolver.
	Hosts map[string][]string
	// RootCAs verify TLS upstreams.
	RootCAs *x509.CertPool
	// AddressPool gives each Gateway its own address (see translate.Options.AddressPool).
	AddressPool []string
	// RateLimitStore counts Global rate-limit rules (two Envs given one Redis behave as two
	// gateway processes sharing it).
	RateLimitStore ratelimit.Store
	// AccessLog receives the access log (default: discarded, or stderr with -v).
	AccessLog io.Writer
	// SessionSecret, when set (at least 32 bytes), is the server's secret the OIDC session
	// keys derive from, written to the data directory's oidc-session.key before the product
	// starts (as an operator copies the file to each replica): two Envs given the same
	// secret honour each other's logins. Default: a fresh random secret.
	SessionSecret []byte
	// DNS runs the authoritative DNS server on a free loopback port (Env.DNSAddr).
	DNS bool
	// DNSNameservers: platform.DNSOptions.Nameservers.
	DNSNameservers []string
	// ACME issues certificates (platform.Options.ACME); with Pebble set, that Pebble is the
	// last of the CAs.
	ACME   platform.ACMEOptions
	Pebble *Pebble
	// Tunnel runs the tunnel endpoint on a free loopback UDP port (Env.TunnelAddr).
	Tunnel bool
}

// StartRedis runs a real redis-server on a free loopback port for the test (skipped when it
// is not installed, unless APOXY_REQUIRE_REDIS is set, as CI does) and returns its address.
func StartRedis(t testing.TB) string {
	return StartRedisServer(t).Addr
}

// Redis is a redis-server a test runs, which it may stop and start again on the same port
// (to watch a data plane fail over and recover).
type Redis struct {
	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	// Addr is its host:port.
	Addr string
}

// StartRedisServer runs a real redis-server on a free loopback port with extra arguments (e.g.
// "--requirepass", "secret"); it is killed when the test ends.
func StartRedisServer(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not installed (apt-get install -y redis-server)")
		}
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	port := freePort(t)
	r := &Redis{t: t, bin: bin, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Start runs the server (again) and waits until it accepts connections.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", r.Addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (its data is gone).
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Env is a running product.
type Env struct {
	t        testing.TB
	P        *platform.Platform
	Client   dynamic.Interface
	HTTPAddr string // host:port of the default Gateway's HTTP listener
	TLSAddr  string // host:port of its HTTPS listener
	Hosts    *Resolver
	// DNSAddr is the DNS server's host:port (with Options.DNS).
	DNSAddr string
	// TunnelAddr is the tunnel endpoint's host:port (with Options.Tunnel).
	TunnelAddr string
}

// Start boots the product; it stops when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	httpPort, httpsPort := freePort(t), freePort(t)
	res := &Resolver{hosts: map[string][]netip.Addr{}}
	for name, ips := range opts.Hosts {
		res.Set(name, ips...)
	}
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	} else {
		quietLibraries.Do(func() {
			// The Kubernetes libraries log every server start at info level.
			klog.SetLogger(logr.Discard())
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
		})
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	dataDir := t.TempDir()
	if len(opts.SessionSecret) > 0 {
		if err := os.WriteFile(filepath.Join(dataDir, "oidc-session.key"), opts.SessionSecret, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := platform.Start(ctx, platform.Options{
		API: apiserver.Options{
			DataDir: dataDir, Addr: "127.0.0.1:0", Synchronous: "NORMAL",
			Ports: apiserver.Ports{HTTP: int32(httpPort), HTTPS: int32(httpsPort)},
		},
		BindAddress:     "127.0.0.1",
		AddressPool:     opts.AddressPool,
		BackendNetworks: upstream.AllInternal, // as apoxy dev: tests' backends listen on loopback
		Upstream:        upstream.Options{Resolver: res, RootCAs: opts.RootCAs, ResolveInterval: 200 * time.Millisecond},
		AccessLog:       cmp.Or[io.Writer](opts.AccessLog, logOut),
		RateLimitStore:  opts.RateLimitStore,
		Logger:          log,
		// Tests serve function sources (Git, npm, OCI) on loopback.
		FunctionSourcesPrivate: true,
		DNS:                    dnsOptions(opts),
		ACME:                   acmeOptions(opts),
		Tunnel:                 tunnelOptions(opts),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Close() })
	// Tests drive the API like automation would: without client-go's default 5 requests/s
	// throttle, which would otherwise dominate every timing.
	cfg := p.API.ProjectConfig(apiserver.DefaultProject)
	cfg.QPS, cfg.Burst = 1000, 2000
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, P: p, Client: client, Hosts: res,
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		TLSAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort))}
	if ap := p.DNSAddr(); ap.IsValid() {
		e.DNSAddr = ap.String()
	}
	if ap := p.TunnelAddr(); ap.IsValid() {
		e.TunnelAddr = ap.String()
	}
	e.WaitFor("data plane ready", func() error { return p.Ready() })
	return e
}

func tunnelOptions(opts Options) platform.TunnelOptions {
	if !opts.Tunnel {
		return platform.TunnelOptions{}
	}
	return platform.TunnelOptions{Addr: "127.0.0.1:0"}
}

func acmeOptions(opts Options) platform.ACMEOptions {
	a := opts.ACME
	if pb := opts.Pebble; pb != nil {
		a.CAs = append(slices.Clone(a.CAs), acme.CA{Name: "pebble", URL: pb.DirURL})
		a.Roots = pb.APIRoots
	}
	return a
}

func dnsOptions(opts Options) platform.DNSOptions {
	if !opts.DNS {
		return platform.DNSOptions{}
	}
	return platform.DNSOptions{Addr: "127.0.0.1:0", Nameservers: opts.DNSNameservers}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Resolver answers from a table the test controls.
type Resolver struct {
	mu    sync.Mutex
	hosts map[string][]netip.Addr
}

// Set replaces the addresses of a name (none: lookups fail).
func (r *Resolver) Set(name string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	r.hosts[name] = addrs
}

// LookupNetIP implements upstream's resolver.
func (r *Resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ips := r.hosts[host]; len(ips) > 0 {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Project creates a project (if needed) and returns an environment whose Apply, Get and Delete
// act in it; the data plane and listeners are shared with e.
func (e *Env) Project(name string) *Env {
	e.t.Helper()
	root, err := dynamic.NewForConfig(e.P.API.RootConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	project := resource.MustKindOf(&platformv1a1.Project{})
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": project.GVK.GroupVersion().String(), "kind": project.GVK.Kind, "metadata": map[string]any{"name": name}}}
	if _, err := root.Resource(project.GVR()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		e.t.Fatal(err)
	}
	e.WaitFor("project "+name+" served", func() error {
		if !slices.Contains(e.P.API.ProjectNames(), name) {
			return fmt.Errorf("not served yet")
		}
		return e.P.Ready()
	})
	cfg := e.P.API.ProjectConfig(name)
	cfg.QPS, cfg.Burst = 1000, 2000
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	pe := *e
	pe.Client = client
	return &pe
}

// Apply server-side-applies every document of a YAML stream to the default project, in the
// order `apoxy apply` uses (each kind's apply rank: policies before the routes they target).
func (e *Env) Apply(docs string) {
	e.t.Helper()
	if err := e.ApplyErr(docs); err != nil {
		e.t.Fatal(err)
	}
}

// ApplyErr is Apply returning the API server's refusal instead of failing the test.
func (e *Env) ApplyErr(docs string) error {
	e.t.Helper()
	yr := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(docs)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := yr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return err
		}
		if len(u.Object) != 0 {
			objs = append(objs, u)
		}
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return cmp.Compare(e.kind(a).Apply, e.kind(b).Apply) })
	for _, u := range objs {
		ns := u.GetNamespace()
		k := e.kind(u)
		if ns == "" && k.Namespaced {
			ns = "default"
		}
		if _, err := e.Client.Resource(k.GVR()).Namespace(ns).Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "edgetest", Force: true}); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// Delete removes an object.
func (e *Env) Delete(apiVersion, kind, name string) {
	e.t.Helper()
	if err := e.resource(apiVersion, kind).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete %s %s: %v", kind, name, err)
	}
}

// Get reads an object of the default namespace (or a cluster-scoped one); nil when there
// is none.
func (e *Env) Get(apiVersion, kind, name string) *unstructured.Unstructured {
	e.t.Helper()
	got, err := e.resource(apiVersion, kind).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatalf("get %s %s: %v", kind, name, err)
	}
	return got
}

// resource is the client for a kind in the default namespace (or cluster scope).
func (e *Env) resource(apiVersion, kind string) dynamic.ResourceInterface {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	k := e.kind(u)
	if k.Namespaced {
		return e.Client.Resource(k.GVR()).Namespace("default")
	}
	return e.Client.Resource(k.GVR())
}

// kind finds an object's kind in the registry, failing the test for one the server does not
// serve.
func (e *Env) kind(u *unstructured.Unstructured) *resource.Kind {
	e.t.Helper()
	k, ok := resource.Lookup(u.GroupVersionKind())
	if !ok {
		e.t.Fatalf("%s %s: not a registered kind", u.GetAPIVersion(), u.GetKind())
	}
	return k
}

// WaitFor polls cond until it returns nil, failing the test after 20 s with the last error.
func (e *Env) WaitFor(what string, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("waiting for %s: %v", what, err)
}

// RouteAccepted returns nil once an HTTPRoute has Accepted and ResolvedRefs true for its first
// parent, at its current generation.
func (e *Env) RouteAccepted(name string) func() error {
	return e.RouteKindAccepted("HTTPRoute", name)
}

// RouteKindAccepted is RouteAccepted for any route kind (GRPCRoute, ...).
func (e *Env) RouteKindAccepted(kind, name string) func() error {
	return func() error {
		r := e.Get("gateway.apoxy.dev/v1", kind, name)
		parents, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
		if len(parents) == 0 {
			return fmt.Errorf("no parent status yet")
		}
		conds, _, _ := unstructured.NestedSlice(parents[0].(map[string]any), "conditions")
		for _, want := range []string{"Accepted", "ResolvedRefs"} {
			ok := false
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == want && m["status"] == "True" && m["observedGeneration"] == r.GetGeneration() {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("%s not true at generation %d: %v", want, r.GetGeneration(), conds)
			}
		}
		return nil
	}
}
