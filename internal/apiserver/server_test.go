package apiserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	restclient "k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var (
	backendsGVR   = schema.GroupVersionResource{Group: "core.apoxy.dev", Version: "v1alpha2", Resource: "backends"}
	httproutesGVR = schema.GroupVersionResource{Group: "gateway.apoxy.dev", Version: "v1", Resource: "httproutes"}
	gatewaysGVR   = schema.GroupVersionResource{Group: "gateway.apoxy.dev", Version: "v1", Resource: "gateways"}
	projectsGVR   = schema.GroupVersionResource{Group: "platform.apoxy.dev", Version: "v1alpha1", Resource: "projects"}
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// startServer runs a server on a free loopback port with dataDir (a fresh one if empty).
func startServer(t testing.TB, dataDir string) *Server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s, err := New(Options{DataDir: dataDir, Addr: "127.0.0.1:0", Ports: Ports{HTTP: 8080, HTTPS: 8443},
		Synchronous: "NORMAL", Logger: slog.New(slog.NewTextHandler(testLogOutput(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Shutdown() })
	return s
}

func (s *Server) clientConfig(project, token string) *restclient.Config {
	path := ""
	if project != "" {
		path = projectPath(project)
	}
	return &restclient.Config{Host: s.URL() + path, BearerToken: token, TLSClientConfig: restclient.TLSClientConfig{CAData: s.CACertPEM()}, QPS: 1000, Burst: 1000}
}

func (s *Server) dynamic(t testing.TB, project, token string) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(s.clientConfig(project, token))
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func obj(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

const seedBackend = `
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata:
  name: api-backend
spec:
  endpoints:
  - fqdn: api.internal.example.com
  protocol: h2
`

const seedRoute = `
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata:
  name: api-route
spec:
  parentRefs:
  - kind: Gateway
    name: default
  hostnames:
  - api.example.com
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /v1
    backendRefs:
    - kind: Backend
      name: api-backend
      port: 8080
`

func TestProjectBornWithDefaults(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	dc := s.dynamic(t, "default", s.AdminToken())
	ctx := context.Background()
	gw, err := dc.Resource(gatewaysGVR).Namespace("default").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("default gateway: %v", err)
	}
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	var got []string
	for _, l := range listeners {
		m := l.(map[string]any)
		from, _, _ := unstructured.NestedString(m, "allowedRoutes", "namespaces", "from")
		got = append(got, fmt.Sprintf("%s/%v/%s", m["protocol"], m["port"], from))
	}
	if want := "HTTP/8080/All,HTTPS/8443/All"; strings.Join(got, ",") != want {
		t.Errorf("default gateway listeners = %v, want %s", got, want)
	}
	for _, c := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{namespacesGVR, "", "default"},
		{schema.GroupVersionResource{Group: "gateway.apoxy.dev", Version: "v1", Resource: "gatewayclasses"}, "", "apoxy"},
		{schema.GroupVersionResource{Group: "core.apoxy.dev", Version: "v1alpha2", Resource: "proxies"}, "default", "default"},
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "default", "default-tls"},
	} {
		if _, err := dc.Resource(c.gvr).Namespace(c.ns).Get(ctx, c.name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s %s: %v", c.gvr.Resource, c.name, err)
		}
	}
}

func TestGenerationStatusAndConcurrency(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	rc := s.dynamic(t, "default", s.AdminToken()).Resource(backendsGVR).Namespace("default")

	created, err := rc.Create(ctx, obj(t, seedBackend), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := created.GetGeneration(); g != 1 {
		t.Fatalf("generation after create = %d, want 1", g)
	}

	// Metadata-only change: generation stays.
	created.SetLabels(map[string]string{"team": "edge"})
	labeled, err := rc.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := labeled.GetGeneration(); g != 1 {
		t.Errorf("generation after label change = %d, want 1", g)
	}

	// Spec change: generation bumps.
	_ = unstructured.SetNestedField(labeled.Object, "h2c", "spec", "protocol")
	changed, err := rc.Update(ctx, labeled, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := changed.GetGeneration(); g != 2 {
		t.Errorf("generation after spec change = %d, want 2", g)
	}

	// A write with a stale resourceVersion conflicts.
	if _, err := rc.Update(ctx, labeled, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update with stale resourceVersion: err = %v, want 409 Conflict", err)
	}

	// Status through the main resource is ignored; through /status it lands and the spec and
	// generation do not move.
	withStatus := changed.DeepCopy()
	_ = unstructured.SetNestedField(withStatus.Object, int64(7), "status", "observedGeneration")
	mainWrite, err := rc.Update(ctx, withStatus, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedInt64(mainWrite.Object, "status", "observedGeneration"); found {
		t.Errorf("main resource write changed status: %v", mainWrite.Object["status"])
	}
	st := mainWrite.DeepCopy()
	_ = unstructured.SetNestedField(st.Object, int64(2), "status", "observedGeneration")
	_ = unstructured.SetNestedField(st.Object, "plain", "spec", "protocol")
	statusWrite, err := rc.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if og, _, _ := unstructured.NestedInt64(statusWrite.Object, "status", "observedGeneration"); og != 2 {
		t.Errorf("status.observedGeneration = %d, want 2", og)
	}
	if p, _, _ := unstructured.NestedString(statusWrite.Object, "spec", "protocol"); p != "h2c" {
		t.Errorf("status write changed spec.protocol to %q", p)
	}
	if g := statusWrite.GetGeneration(); g != 2 {
		t.Errorf("generation after status write = %d, want 2", g)
	}
}

func TestServerSideApplyRecordsManagedFields(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	dc := s.dynamic(t, "default", s.AdminToken())
	route := obj(t, seedRoute)
	got, err := dc.Resource(httproutesGVR).Namespace("default").Apply(ctx, "api-route", route, metav1.ApplyOptions{FieldManager: "test", Force: true})
	if err != nil {
		t.Fatalf("server-side apply: %v", err)
	}
	mf := got.GetManagedFields()
	if len(mf) != 1 || mf[0].Manager != "test" || mf[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managedFields = %+v, want one Apply entry by manager test", mf)
	}
	// Upstream CRD defaults were applied, with our group for the parent.
	refs, _, _ := unstructured.NestedSlice(got.Object, "spec", "parentRefs")
	if g := refs[0].(map[string]any)["group"]; g != "gateway.apoxy.dev" {
		t.Errorf("parentRefs[0].group = %v, want gateway.apoxy.dev", g)
	}
	rules, _, _ := unstructured.NestedSlice(got.Object, "spec", "rules")
	be := rules[0].(map[string]any)["backendRefs"].([]any)[0].(map[string]any)
	if be["weight"] != int64(1) {
		t.Errorf("backendRefs[0].weight = %v, want defaulted 1", be["weight"])
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	admin := s.dynamic(t, "", s.AdminToken())
	if _, err := admin.Resource(projectsGVR).Create(ctx, obj(t, "apiVersion: platform.apoxy.dev/v1alpha1\nkind: Project\nmetadata: {name: other}"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitProject(t, s, "other")
	defaultKey, _ := s.ProjectToken("default")
	otherKey, _ := s.ProjectToken("other")

	tests := []struct {
		name    string
		project string
		token   string
		check   func(error) bool
		want    string
	}{
		{"no key", "default", "", apierrors.IsUnauthorized, "401"},
		{"garbage key", "default", "apoxy_p_default_0_deadbeef", apierrors.IsUnauthorized, "401"},
		{"own key", "default", defaultKey, func(err error) bool { return err == nil }, "ok"},
		{"other project's key", "default", otherKey, apierrors.IsForbidden, "403"},
		{"other project's key on its own project", "other", otherKey, func(err error) bool { return err == nil }, "ok"},
		{"admin key", "other", s.AdminToken(), func(err error) bool { return err == nil }, "ok"},
		{"project key on the root API", "", defaultKey, apierrors.IsForbidden, "403"},
		{"unknown project", "nope", defaultKey, apierrors.IsForbidden, "403, as for a project that exists"},
		{"unknown project, admin key", "nope", s.AdminToken(), apierrors.IsNotFound, "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gvr := backendsGVR
			ns := "default"
			if tc.project == "" {
				gvr, ns = projectsGVR, ""
			}
			_, err := s.dynamic(t, tc.project, tc.token).Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if !tc.check(err) {
				t.Errorf("list: err = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestNoProjectOracleNoImpersonation: a project key cannot tell whether another project exists
// (same status and message for an existing and a missing one), and cannot impersonate users or
// groups, not even inside its own project (findings W6, W7).
func TestNoProjectOracleNoImpersonation(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	createProject(t, s, "other")
	defaultKey, _ := s.ProjectToken("default")
	msg := func(project string) string {
		_, err := s.dynamic(t, project, defaultKey).Resource(backendsGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("project %s: err = %v, want 403", project, err)
		}
		return strings.ReplaceAll(err.Error(), project, "P")
	}
	if a, b := msg("other"), msg("missing"); a != b {
		t.Fatalf("existing and missing projects answer differently:\n%s\n%s", a, b)
	}
	cfg := s.clientConfig("default", defaultKey)
	cfg.Impersonate = restclient.ImpersonationConfig{UserName: "apoxy:admin", Groups: []string{"system:masters", AdminGroup}}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Resource(backendsGVR).Namespace("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("impersonation with a project key: err = %v, want 403", err)
	}
}

// waitProject waits until a project is served.
func waitProject(t testing.TB, s *Server, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.ProjectToken(name); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("project %q not served after 20s", name)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testLogOutput() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}
