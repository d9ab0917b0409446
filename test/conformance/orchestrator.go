package conformance

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"apoxy.dev/apoxy/test/conformance/echo"
)

var backendsGVR = schema.GroupVersionResource{Group: "core.apoxy.dev", Version: "v1alpha2", Resource: "backends"}

// orchestrator plays kubelet and endpoints controller for the fake store: every Deployment
// replica becomes an in-process echo server on its own loopback IP with a Ready Pod, and every
// Service port becomes a Backend in our API listing the ready Pods' IPs.
type orchestrator struct {
	store client.Client // the fake store (not the facade)
	ours  dynamic.Interface
	log   *slog.Logger

	mu       sync.Mutex
	nextIP   netip.Addr
	pods     map[string][]*pod // by namespace/deployment
	backends map[string]string // last applied Backend spec, by namespace/name
}

type pod struct {
	name string
	ip   string
	srv  *echo.Server
	// ports the pod listens on; Service ports are added beside the container ports, so route
	// backendRefs keep the Service port and still reach the pod.
	ports   map[int32]echo.ListenOptions
	h2cPort int32
}

// listen adds a listener on port behaving like the one on target (if not already there).
func (p *pod) listen(port, target int32) error {
	if _, ok := p.ports[port]; ok {
		return nil
	}
	opts, ok := p.ports[target]
	if !ok {
		return nil
	}
	if _, err := p.srv.Listen(net.JoinHostPort(p.ip, strconv.Itoa(int(port))), opts); err != nil {
		return err
	}
	p.ports[port] = opts
	return nil
}

func newOrchestrator(store client.Client, ours dynamic.Interface, log *slog.Logger) *orchestrator {
	return &orchestrator{store: store, ours: ours, log: log, nextIP: netip.MustParseAddr("127.0.100.1"),
		pods: map[string][]*pod{}, backends: map[string]string{}}
}

// run reconciles until ctx ends.
func (o *orchestrator) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if err := o.reconcile(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("orchestrator", "err", err)
		}
		select {
		case <-ctx.Done():
			o.stopAll()
			return
		case <-t.C:
		}
	}
}

func (o *orchestrator) stopAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ps := range o.pods {
		for _, p := range ps {
			p.srv.Close()
		}
	}
}

func randSuffix(n int) string {
	const chars = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rand.IntN(len(chars))]
	}
	return string(b)
}

func (o *orchestrator) reconcile(ctx context.Context) error {
	var deps appsv1.DeploymentList
	if err := o.store.List(ctx, &deps); err != nil {
		return err
	}
	live := map[string]bool{}
	for i := range deps.Items {
		d := &deps.Items[i]
		key := d.Namespace + "/" + d.Name
		live[key] = true
		if err := o.ensurePods(ctx, d); err != nil {
			return err
		}
	}
	o.mu.Lock()
	for key, ps := range o.pods {
		if !live[key] {
			for _, p := range ps {
				p.srv.Close()
				ns, _, _ := strings.Cut(key, "/")
				_ = o.store.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: p.name}})
			}
			delete(o.pods, key)
		}
	}
	o.mu.Unlock()
	var svcs corev1.ServiceList
	if err := o.store.List(ctx, &svcs); err != nil {
		return err
	}
	for i := range svcs.Items {
		if err := o.ensureBackends(ctx, &svcs.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

func (o *orchestrator) ensurePods(ctx context.Context, d *appsv1.Deployment) error {
	key := d.Namespace + "/" + d.Name
	o.mu.Lock()
	have := len(o.pods[key])
	o.mu.Unlock()
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	if have >= want || len(d.Spec.Template.Spec.Containers) == 0 {
		return nil
	}
	env := map[string]string{}
	c := d.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for i := have; i < want; i++ {
		o.mu.Lock()
		ip := o.nextIP
		o.nextIP = ip.Next()
		o.mu.Unlock()
		name := fmt.Sprintf("%s-%s-%s", d.Name, randSuffix(10), randSuffix(5))
		httpPort := or(env["HTTP_PORT"], "3000")
		srv := echo.New(echo.Identity{Namespace: d.Namespace, Pod: name, Service: env["SERVICE_NAME"], Ingress: env["INGRESS_NAME"], HTTPPort: httpPort})
		pd := &pod{name: name, ip: ip.String(), srv: srv, ports: map[int32]echo.ListenOptions{}}
		if env["GRPC_ECHO_SERVER"] == "" && env["TCP_ECHO_SERVER"] == "" && env["UDP_ECHO_SERVER"] == "" {
			for port, opts := range map[string]echo.ListenOptions{httpPort: {}, or(env["H2C_PORT"], "3001"): {H2COnly: true}} {
				if _, err := srv.Listen(net.JoinHostPort(ip.String(), port), opts); err != nil {
					return err
				}
				pd.ports[toInt32(port)] = opts
			}
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			},
		}
		if err := o.store.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
			srv.Close()
			return err
		}
		o.mu.Lock()
		o.pods[key] = append(o.pods[key], pd)
		o.mu.Unlock()
	}
	return nil
}

// podLogs serves GET /api/v1/namespaces/{ns}/pods/{pod}/log from the echo pods' logs, so the
// suite's clientset can read them (the mirror tests grep them).
func (o *orchestrator) podLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 7 || parts[0] != "api" || parts[2] != "namespaces" || parts[4] != "pods" || parts[6] != "log" {
		http.NotFound(w, r)
		return
	}
	ns, name := parts[3], parts[5]
	var since time.Time
	if v := r.URL.Query().Get("sinceTime"); v != "" {
		since, _ = time.Parse(time.RFC3339, v)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, ps := range o.pods {
		if !strings.HasPrefix(key, ns+"/") {
			continue
		}
		for _, p := range ps {
			if p.name == name {
				w.Header().Set("Content-Type", "text/plain")
				w.Write(p.srv.LogSince(since))
				return
			}
		}
	}
	http.NotFound(w, r)
}

// backendName is the Backend standing for a Service port: the Service's name for its first
// port, "<name>-p<port>" for the others.
func backendName(svc *corev1.Service, port int32) string {
	if len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].Port == port {
		return svc.Name
	}
	return fmt.Sprintf("%s-p%d", svc.Name, port)
}

func (o *orchestrator) ensureBackends(ctx context.Context, svc *corev1.Service) error {
	var eps []any
	if len(svc.Spec.Selector) == 0 {
		// A Service without selector: its EndpointSlices name the addresses.
		var slices discoveryv1.EndpointSliceList
		if err := o.store.List(ctx, &slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
			return err
		}
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					eps = append(eps, map[string]any{"ip": a})
				}
			}
		}
	} else {
		var pods corev1.PodList
		if err := o.store.List(ctx, &pods, client.InNamespace(svc.Namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(svc.Spec.Selector)}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Status.PodIP != "" {
				eps = append(eps, map[string]any{"ip": p.Status.PodIP})
			}
		}
	}
	// Pods answer on the Service ports too (backendRefs name the Service port).
	o.mu.Lock()
	for _, e := range eps {
		ip := e.(map[string]any)["ip"].(string)
		for _, ps := range o.pods {
			for _, p := range ps {
				if p.ip != ip {
					continue
				}
				for _, sp := range svc.Spec.Ports {
					target := int32(sp.TargetPort.IntValue())
					if target == 0 {
						target = sp.Port
					}
					if err := p.listen(sp.Port, target); err != nil {
						o.log.Warn("listen on service port", "pod", p.name, "port", sp.Port, "err", err)
					}
				}
			}
		}
	}
	o.mu.Unlock()
	for _, sp := range svc.Spec.Ports {
		proto := ""
		if sp.AppProtocol != nil && *sp.AppProtocol == "kubernetes.io/h2c" {
			proto = "h2c"
		}
		name := backendName(svc, sp.Port)
		spec := map[string]any{"endpoints": eps, "protocol": proto}
		if len(eps) == 0 {
			spec["endpoints"] = []any{map[string]any{"ip": "127.255.255.254"}} // nothing ready yet
		}
		sig := string(mustJSON(spec))
		key := svc.Namespace + "/" + name
		o.mu.Lock()
		same := o.backends[key] == sig
		o.mu.Unlock()
		if same {
			continue
		}
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "core.apoxy.dev/v1alpha2", "kind": "Backend",
			"metadata": map[string]any{"name": name, "namespace": svc.Namespace}, "spec": spec,
		}}
		cur, err := o.ours.Resource(backendsGVR).Namespace(svc.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = o.ours.Resource(backendsGVR).Namespace(svc.Namespace).Create(ctx, u, metav1.CreateOptions{})
		case err == nil:
			u.SetResourceVersion(cur.GetResourceVersion())
			_, err = o.ours.Resource(backendsGVR).Namespace(svc.Namespace).Update(ctx, u, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("backend %s: %w", key, err)
		}
		o.mu.Lock()
		o.backends[key] = sig
		o.mu.Unlock()
	}
	return nil
}

// rewriteBackendRefs turns Service backendRefs (the suite's) into refs to the Backends the
// orchestrator keeps, with the Service port mapped to the target port, and ReferenceGrants to
// Services into grants to those Backends.
func (o *orchestrator) rewriteBackendRefs(u *unstructured.Unstructured) {
	ns := u.GetNamespace()
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, child := range t {
				if k == "backendRefs" || k == "backendRef" {
					switch refs := child.(type) {
					case []any:
						for _, r := range refs {
							if m, ok := r.(map[string]any); ok {
								o.rewriteRef(ns, m)
							}
						}
					case map[string]any:
						o.rewriteRef(ns, refs)
					}
				}
				walk(child)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(u.Object)
	if u.GetKind() == "ReferenceGrant" {
		tos, _, _ := unstructured.NestedSlice(u.Object, "spec", "to")
		for _, to := range tos {
			m := to.(map[string]any)
			if g, _ := m["group"].(string); g == "" && m["kind"] == "Service" {
				m["group"], m["kind"] = "core.apoxy.dev", "Backend"
			}
		}
		_ = unstructured.SetNestedSlice(u.Object, tos, "spec", "to")
	}
}

func (o *orchestrator) rewriteRef(routeNS string, ref map[string]any) {
	group, _ := ref["group"].(string)
	kind, _ := ref["kind"].(string)
	if group != "" || (kind != "" && kind != "Service") {
		return
	}
	ns := routeNS
	if n, ok := ref["namespace"].(string); ok && n != "" {
		ns = n
	}
	name, _ := ref["name"].(string)
	ref["group"], ref["kind"] = "core.apoxy.dev", "Backend"
	var svc corev1.Service
	if err := o.store.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		return // no such Service: the Backend will not exist either (BackendNotFound)
	}
	ref["name"] = backendName(&svc, toInt32(ref["port"]))
}

func toInt32(v any) int32 {
	switch n := v.(type) {
	case int64:
		return int32(n)
	case float64:
		return int32(n)
	case int32:
		return n
	case int:
		return int32(n)
	case string:
		i, _ := strconv.Atoi(n)
		return int32(i)
	}
	return 0
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
