package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	return o.syncServiceRefs(ctx)
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
		if env["UDP_ECHO_SERVER"] != "" {
			if err := srv.ListenUDPEcho(net.JoinHostPort(ip.String(), or(env["UDP_PORT"], "8080"))); err != nil {
				srv.Close()
				return err
			}
		}
		coreDNS := strings.Contains(c.Image, "coredns")
		if coreDNS {
			if err := srv.ListenDNS(net.JoinHostPort(ip.String(), "53")); err != nil {
				srv.Close()
				return err
			}
		}
		if env["TCP_ECHO_SERVER"] != "" {
			port := or(env["TCP_PORT"], "3000")
			if _, err := srv.Listen(net.JoinHostPort(ip.String(), port), echo.ListenOptions{TCP: true}); err != nil {
				srv.Close()
				return err
			}
			pd.ports[toInt32(port)] = echo.ListenOptions{TCP: true}
			if env["TLS_SERVER_CERT"] != "" {
				opts, err := o.tlsOptions(ctx, d, c, env)
				if err != nil {
					srv.Close()
					return err
				}
				opts.TCP = true
				tlsPort := or(env["TLS_PORT"], "8443")
				if _, err := srv.Listen(net.JoinHostPort(ip.String(), tlsPort), opts); err != nil {
					srv.Close()
					return err
				}
				pd.ports[toInt32(tlsPort)] = opts
			}
		}
		if env["GRPC_ECHO_SERVER"] != "" {
			port := or(env["HTTP_PORT"], "3000")
			if _, err := srv.Listen(net.JoinHostPort(ip.String(), port), echo.ListenOptions{GRPC: true}); err != nil {
				srv.Close()
				return err
			}
			pd.ports[toInt32(port)] = echo.ListenOptions{GRPC: true}
		}
		if env["GRPC_ECHO_SERVER"] == "" && env["TCP_ECHO_SERVER"] == "" && env["UDP_ECHO_SERVER"] == "" && !coreDNS {
			listeners := map[string]echo.ListenOptions{httpPort: {}, or(env["H2C_PORT"], "3001"): {H2COnly: true}}
			if env["TLS_SERVER_CERT"] != "" && env["TLS_SERVER_PRIVKEY"] != "" {
				opts, err := o.tlsOptions(ctx, d, c, env)
				if err != nil {
					srv.Close()
					return err
				}
				listeners[or(env["HTTPS_PORT"], "8443")] = opts
			}
			for port, opts := range listeners {
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

// tlsOptions builds an HTTPS listener's options the way echo-basic reads them: the server
// certificate and key (TLS_SERVER_CERT, TLS_SERVER_PRIVKEY) and optional client CAs
// (TLS_CLIENT_CACERTS), each a file in a Secret or ConfigMap volume of the pod template.
func (o *orchestrator) tlsOptions(ctx context.Context, d *appsv1.Deployment, c corev1.Container, env map[string]string) (echo.ListenOptions, error) {
	var files [3][]byte
	for i, name := range []string{"TLS_SERVER_CERT", "TLS_SERVER_PRIVKEY", "TLS_CLIENT_CACERTS"} {
		path := env[name]
		if name == "TLS_SERVER_PRIVKEY" && path == "" {
			path = env["TLS_SERVER_PRIV_KEY"] // the TCP echo server's spelling
		}
		if path == "" {
			continue
		}
		b, err := o.volumeFile(ctx, d, c, path)
		if err != nil {
			return echo.ListenOptions{}, fmt.Errorf("%s: %w", name, err)
		}
		files[i] = b
	}
	cert, err := tls.X509KeyPair(files[0], files[1])
	if err != nil {
		return echo.ListenOptions{}, err
	}
	opts := echo.ListenOptions{Cert: &cert}
	if len(files[2]) > 0 {
		opts.ClientCAs = x509.NewCertPool()
		opts.ClientCAs.AppendCertsFromPEM(files[2])
	}
	return opts, nil
}

// volumeFile reads the file at path as kubelet would mount it: the container's volume mount
// holding path, then the Secret or ConfigMap key projected to the rest of the path.
func (o *orchestrator) volumeFile(ctx context.Context, d *appsv1.Deployment, c corev1.Container, path string) ([]byte, error) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			key := func(items []corev1.KeyToPath) string {
				for _, it := range items {
					if it.Path == rel {
						return it.Key
					}
				}
				return rel
			}
			nn := client.ObjectKey{Namespace: d.Namespace}
			switch {
			case v.Secret != nil:
				nn.Name = v.Secret.SecretName
				var sec corev1.Secret
				if err := o.store.Get(ctx, nn, &sec); err != nil {
					return nil, err
				}
				return sec.Data[key(v.Secret.Items)], nil
			case v.ConfigMap != nil:
				nn.Name = v.ConfigMap.Name
				var cm corev1.ConfigMap
				if err := o.store.Get(ctx, nn, &cm); err != nil {
					return nil, err
				}
				return []byte(cm.Data[key(v.ConfigMap.Items)]), nil
			}
		}
	}
	return nil, fmt.Errorf("no Secret or ConfigMap volume mounted at %s", path)
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

// backendName is the Backend standing for a Service port, "<service>-p<port>". It does not
// depend on the Service existing, so a route created before its Service (manifests are
// applied in file order) still names the right Backend.
func backendName(service string, port int32) string {
	if port == 0 {
		return service // no port: a Backend that does not exist, as with a real Service ref
	}
	return fmt.Sprintf("%s-p%d", service, port)
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
		name := backendName(svc.Name, sp.Port)
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

// rewriteBackendRefs turns Service backendRefs (the suite's) into refs to the Backend the
// orchestrator keeps for that Service port, and BackendTLSPolicy targets and ReferenceGrant
// "to" entries naming Services into refs to those Backends.
func (o *orchestrator) rewriteBackendRefs(u *unstructured.Unstructured) {
	eachBackendRef(u.Object, rewriteRef)
	o.rewriteServiceRefs(context.Background(), u)
}

// eachBackendRef calls fn on every backendRef (or mirror backendRef) anywhere in v.
func eachBackendRef(v any, fn func(ref map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if k == "backendRefs" || k == "backendRef" {
				switch refs := child.(type) {
				case []any:
					for _, r := range refs {
						if m, ok := r.(map[string]any); ok {
							fn(m)
						}
					}
				case map[string]any:
					fn(refs)
				}
			}
			eachBackendRef(child, fn)
		}
	case []any:
		for _, c := range t {
			eachBackendRef(c, fn)
		}
	}
}

// rewriteRef turns a backendRef to a Service port into one to the Backend standing for it.
func rewriteRef(ref map[string]any) {
	group, _ := ref["group"].(string)
	kind, _ := ref["kind"].(string)
	if group != "" || (kind != "" && kind != "Service") {
		return
	}
	name, _ := ref["name"].(string)
	ref["group"], ref["kind"] = "core.apoxy.dev", "Backend"
	ref["name"] = backendName(name, toInt32(ref["port"]))
}

// serviceRefsAnnotation keeps the original Service references of a BackendTLSPolicy
// (spec.targetRefs) or ReferenceGrant (spec.to). A Service stands for one Backend per port, and
// its ports are known only once it exists (manifests are applied in file order), so reconcile
// recomputes the Backend refs from this until they settle.
const serviceRefsAnnotation = "conformance.apoxy.dev/service-refs"

// serviceRefFields says where each kind keeps references that may name Services.
var serviceRefFields = map[string][]string{
	"BackendTLSPolicy": {"spec", "targetRefs"},
	"ReferenceGrant":   {"spec", "to"},
}

// rewriteServiceRefs turns a policy's or grant's references to Services into references to the
// Backends standing for their ports. It reports whether the object changed.
func (o *orchestrator) rewriteServiceRefs(ctx context.Context, u *unstructured.Unstructured) bool {
	path, ok := serviceRefFields[u.GetKind()]
	if !ok {
		return false
	}
	ann := u.GetAnnotations()
	var orig []any
	if raw, ok := ann[serviceRefsAnnotation]; ok {
		if err := json.Unmarshal([]byte(raw), &orig); err != nil {
			return false
		}
	} else {
		orig, _, _ = unstructured.NestedSlice(u.Object, path...)
		if ann == nil {
			ann = map[string]string{}
		}
		ann[serviceRefsAnnotation] = string(mustJSON(orig))
		u.SetAnnotations(ann)
	}
	var out []any
	for _, r := range orig {
		out = append(out, o.serviceBackends(ctx, u.GetNamespace(), r.(map[string]any))...)
	}
	cur, _, _ := unstructured.NestedSlice(u.Object, path...)
	if string(mustJSON(cur)) == string(mustJSON(out)) {
		return false
	}
	_ = unstructured.SetNestedSlice(u.Object, out, path...)
	return true
}

// serviceBackends expands one reference to a Service into references to its ports' Backends:
// every port's, or only the port named by sectionName (kept, so a policy naming it stays the
// more specific one). A reference without a name (a grant to every Service) becomes one to
// every Backend; other references are returned unchanged.
func (o *orchestrator) serviceBackends(ctx context.Context, ns string, ref map[string]any) []any {
	group, _ := ref["group"].(string)
	if group != "" || ref["kind"] != "Service" {
		return []any{ref}
	}
	name, _ := ref["name"].(string)
	section, _ := ref["sectionName"].(string)
	backend := func(n string) any {
		t := map[string]any{"group": "core.apoxy.dev", "kind": "Backend"}
		if n != "" {
			t["name"] = n
		}
		if section != "" {
			t["sectionName"] = section
		}
		return t
	}
	if name == "" {
		return []any{backend("")}
	}
	var svc corev1.Service
	if err := o.store.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		return []any{backend(name)} // not there yet: a Backend that does not exist
	}
	var out []any
	for _, p := range svc.Spec.Ports {
		if section == "" || p.Name == section {
			out = append(out, backend(backendName(svc.Name, p.Port)))
		}
	}
	if len(out) == 0 {
		out = append(out, backend(name)) // no such port: a Backend that does not exist
	}
	return out
}

// syncServiceRefs redoes rewriteServiceRefs for stored policies and grants, for Services
// created after them.
func (o *orchestrator) syncServiceRefs(ctx context.Context) error {
	for _, plural := range []string{"backendtlspolicies", "referencegrants"} {
		res := o.ours.Resource(schema.GroupVersionResource{Group: ourGroup, Version: "v1", Resource: plural})
		list, err := res.List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range list.Items {
			u := &list.Items[i]
			if _, ok := u.GetAnnotations()[serviceRefsAnnotation]; !ok || !o.rewriteServiceRefs(ctx, u) {
				continue
			}
			if _, err := res.Namespace(u.GetNamespace()).Update(ctx, u, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
				return err
			}
		}
	}
	return nil
}

// restoreServiceRefs undoes rewriteBackendRefs: Backend refs named "<service>-p<port>" on
// that port become Service refs again, and policy targets and grant entries get their original
// Service references back from the annotation (which is dropped).
func restoreServiceRefs(u *unstructured.Unstructured) {
	eachBackendRef(u.Object, restoreRef)
	ann := u.GetAnnotations()
	raw, ok := ann[serviceRefsAnnotation]
	path, known := serviceRefFields[u.GetKind()]
	if !ok || !known {
		return
	}
	var orig []any
	if json.Unmarshal([]byte(raw), &orig) == nil {
		_ = unstructured.SetNestedSlice(u.Object, orig, path...)
	}
	delete(ann, serviceRefsAnnotation)
	u.SetAnnotations(ann)
}

func restoreRef(ref map[string]any) {
	if ref["group"] != "core.apoxy.dev" || ref["kind"] != "Backend" {
		return
	}
	name, _ := ref["name"].(string)
	port := toInt32(ref["port"])
	if svc, ok := strings.CutSuffix(name, fmt.Sprintf("-p%d", port)); ok && port != 0 {
		ref["group"], ref["kind"], ref["name"] = "", "Service", svc
	}
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
