package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	restclient "k8s.io/client-go/rest"
)

var upstreamRoutesGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// TestUpstreamGroupAlias drives the upstream Gateway API group as a client written for it would:
// discovery lists it after ours (no short names or categories, so names stay ours), an object
// created, patched and server-side applied there is the object our group serves, every answer
// (get, list, watch) names the upstream group, YAML bodies work, and the OpenAPI documents
// exist for it.
func TestUpstreamGroupAlias(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	cfg := s.clientConfig("default", s.AdminToken())

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	ours, up := indexOf(names, "gateway.apoxy.dev"), indexOf(names, "gateway.networking.k8s.io")
	if ours < 0 || up < ours {
		t.Fatalf("discovery groups %v: want gateway.networking.k8s.io listed after gateway.apoxy.dev", names)
	}
	for _, l := range lists {
		if l.GroupVersion != "gateway.networking.k8s.io/v1" {
			continue
		}
		for _, r := range l.APIResources {
			if r.Name == "httproutes" && (len(r.ShortNames) > 0 || len(r.Categories) > 0 || r.Kind != "HTTPRoute") {
				t.Errorf("upstream httproutes entry %+v: want kind HTTPRoute without short names or categories", r)
			}
		}
	}

	dyn := s.dynamic(t, "default", s.AdminToken())
	upRoutes, ourRoutes := dyn.Resource(upstreamRoutesGVR).Namespace("default"), dyn.Resource(httproutesGVR).Namespace("default")
	w, err := upRoutes.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	route := obj(t, strings.Replace(seedRoute, "gateway.apoxy.dev/v1", "gateway.networking.k8s.io/v1", 1))
	created, err := upRoutes.Create(ctx, route, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create through the upstream group: %v", err)
	}
	if created.GetAPIVersion() != "gateway.networking.k8s.io/v1" {
		t.Errorf("create answered apiVersion %q, want the upstream group", created.GetAPIVersion())
	}
	stored, err := ourRoutes.Get(ctx, "api-route", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the route is not ours: %v", err)
	}
	if stored.GetAPIVersion() != "gateway.apoxy.dev/v1" || stored.GetUID() != created.GetUID() {
		t.Errorf("our group shows %s uid %s, want gateway.apoxy.dev/v1 uid %s", stored.GetAPIVersion(), stored.GetUID(), created.GetUID())
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Object.GetObjectKind().GroupVersionKind().Group != "gateway.networking.k8s.io" {
			t.Errorf("watch event %s names %v", ev.Type, ev.Object.GetObjectKind().GroupVersionKind())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event through the upstream group")
	}

	patched, err := upRoutes.Patch(ctx, "api-route", types.MergePatchType, []byte(`{"metadata":{"labels":{"via":"upstream"}}}`), metav1.PatchOptions{})
	if err != nil || patched.GetLabels()["via"] != "upstream" {
		t.Fatalf("merge patch through the upstream group: %v %v", err, patched)
	}
	route.SetLabels(map[string]string{"applied": "yes"})
	applied, err := upRoutes.Apply(ctx, "api-route", route, metav1.ApplyOptions{FieldManager: "upstream-test", Force: true})
	if err != nil {
		t.Fatalf("server-side apply through the upstream group: %v", err)
	}
	if applied.GetLabels()["applied"] != "yes" || applied.GetAPIVersion() != "gateway.networking.k8s.io/v1" {
		t.Errorf("applied object: labels %v apiVersion %s", applied.GetLabels(), applied.GetAPIVersion())
	}
	list, err := upRoutes.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetAPIVersion() != "gateway.networking.k8s.io/v1" {
		t.Fatalf("list through the upstream group: %v %+v", err, list)
	}

	// A YAML body, as curl users send one.
	rc, err := restclient.RESTClientFor(rawConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	yamlRoute := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: yaml-route}\nspec:\n  parentRefs: [{name: default}]\n"
	res := rc.Post().AbsPath("/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes").
		SetHeader("Content-Type", "application/yaml").Body([]byte(yamlRoute)).Do(ctx)
	if err := res.Error(); err != nil {
		t.Fatalf("YAML create: %v", err)
	}
	if _, err := ourRoutes.Get(ctx, "yaml-route", metav1.GetOptions{}); err != nil {
		t.Errorf("YAML-created route: %v", err)
	}
	// A body naming another group under the upstream path is refused as the API refuses it.
	bad := strings.Replace(yamlRoute, "gateway.networking.k8s.io/v1", "core.apoxy.dev/v1alpha2", 1)
	if err := rc.Post().AbsPath("/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes").
		SetHeader("Content-Type", "application/yaml").Body([]byte(bad)).Do(ctx).Error(); err == nil {
		t.Error("a Backend apiVersion posted as an HTTPRoute was accepted")
	}

	// OpenAPI v3: the root lists the upstream group, and its document describes the upstream GVK;
	// a client's cached copy revalidates (304) against the edited document's ETag.
	var root struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	raw, err := rc.Get().AbsPath("/openapi/v3").DoRaw(ctx)
	if err != nil || json.Unmarshal(raw, &root) != nil {
		t.Fatalf("openapi root: %v", err)
	}
	u := root.Paths["apis/gateway.networking.k8s.io/v1"].ServerRelativeURL
	if u == "" {
		t.Fatalf("openapi root lacks apis/gateway.networking.k8s.io/v1")
	}
	hc, err := restclient.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(cfg.Host + u)
	if err != nil {
		t.Fatal(err)
	}
	doc := new(strings.Builder)
	_, _ = io.Copy(doc, resp.Body)
	resp.Body.Close()
	if !strings.Contains(doc.String(), `{"group":"gateway.networking.k8s.io","kind":"HTTPRoute","version":"v1"}`) {
		t.Errorf("upstream OpenAPI document does not describe gateway.networking.k8s.io/v1 HTTPRoute")
	}
	req, _ := http.NewRequest(http.MethodGet, cfg.Host+"/apis", nil)
	req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if !strings.HasSuffix(etag, `-upstream"`) {
		t.Errorf("aggregated discovery ETag %q: want the edited document's", etag)
	} else {
		req.Header.Set("If-None-Match", etag)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("revalidating /apis with its ETag: %d, want 304", resp.StatusCode)
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func rawConfig(cfg *restclient.Config) *restclient.Config {
	c := restclient.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{}
	c.NegotiatedSerializer = Codecs.WithoutConversion()
	return c
}
