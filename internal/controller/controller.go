// Package controller watches one project's API, turns what it reads into a resource.Set,
// runs the translator, hands the snapshot to the data plane and writes the resulting status
// back. Every change to anything the translator reads (including Secrets, ConfigMaps and Backends) causes
// a new translation; bursts of changes are coalesced.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/claims"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
	"apoxy.dev/apoxy/internal/translate"
)

// Applier is the data plane as the controller sees it.
type Applier interface {
	Apply(source string, snap *ir.Snapshot) error
	// Endpoints reports a backend's resolved addresses and health (ok false: not in use).
	Endpoints(backend string) ([]proxy.EndpointState, bool)
	// BindError says why a socket ("address:port") could not be bound, or nil.
	BindError(listener string) error
	// Denied lists a backend's addresses the destination policy refused, with reasons.
	Denied(backend string) []string
	// RateLimitStoreHealth reports a global rate-limit store's health ("" the data plane's
	// own; ok false: no such store).
	RateLimitStoreHealth(ctx context.Context, name string) (proxy.StoreHealth, bool)
	// AuthPolicyHealth reports the runtime dependencies of an AuthPolicy's blocks (by
	// ir.AuthBlock.ID): each one's last error (ok false: none served).
	AuthPolicyHealth(id string) (map[string]error, bool)
	// SinkStatus reports a telemetry sink's export state (collector: an ir.Collector Name;
	// ok false: the data plane runs no such sink).
	SinkStatus(collector, sink string) (proxy.SinkStatus, bool)
}

// Reconciler is a part of the project controller that acts on the project's objects beyond
// translating them (the EdgeFunction builder): called after every change with the objects,
// it writes through the project's API (the change comes back as another pass) and may ask
// for a pass with kick. Its errors are logged and retried; they never hold up translation.
type Reconciler interface {
	Reconcile(ctx context.Context, set *resource.Set, api dynamic.Interface, kick func()) error
}

// Amender is a Reconciler that also adds to the snapshot what is not in the objects: the
// domain reconciler adds the certificates it obtained from ACME and the HTTP-01 answers a CA
// is about to fetch. Amend runs after translation and before the claims registry settles
// hostnames, so what it adds is arbitrated like any route; the controller re-versions and
// validates the snapshot afterwards. scope is the translation's Options.Scope.
type Amender interface {
	Amend(set *resource.Set, snap *ir.Snapshot, report *status.Report, scope string)
}

// Options configure a project controller.
type Options struct {
	Project   string
	Config    *rest.Config
	Data      Applier
	Translate translate.Options
	// Debounce coalesces bursts of changes (default 20 ms).
	Debounce time.Duration
	Logger   *slog.Logger
	// Now returns the time stamped on conditions (default time.Now).
	Now func() time.Time
	// Claims arbitrates sockets and hostnames between projects (nil: this project is alone,
	// as in tests). Its denials are removed from the snapshot and reported in status.
	Claims *claims.Registry
	// Reconcilers run on every pass, before translation (their status writes are what the
	// kinds with resource.StatusByReconciler show).
	Reconcilers []Reconciler
}

// watched returns the kinds the translator reads: the controller watches them, builds each
// resource.Set from them and LoadSet lists them.
func watched() []*resource.Kind {
	var out []*resource.Kind
	for _, k := range resource.Kinds() {
		if k.InSet() {
			out = append(out, k)
		}
	}
	return out
}

// dataPlaneStatus are the status writers of the kinds whose status comes from the data plane's
// state (resource.StatusByDataPlane), keyed by kind; the controller runs them every second.
// TestStatusWriters fails when a registered kind has none.
var dataPlaneStatus = map[schema.GroupKind]func(c *Controller, ctx context.Context, k *resource.Kind) error{
	resource.MustKindOf(&corev1a2.Backend{}).GVK.GroupKind():                    (*Controller).writeBackendStatus,
	resource.MustKindOf(&corev1a2.CloudMonitoringIntegration{}).GVK.GroupKind(): (*Controller).writeIntegrationStatus,
}

// Controller reconciles one project.
type Controller struct {
	opts      Options
	log       *slog.Logger
	client    dynamic.Interface
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	trigger   chan struct{}
	// policyStores are the last reconcile's report.PolicyStores (read by the status loop,
	// which runs on the same goroutine).
	policyStores map[status.Key]map[int]string
	// authRuntime are the last reconcile's report.AuthRuntime (read by the status loop).
	authRuntime map[status.Key]status.AuthRuntime
	// integrations are the last reconcile's report.Integrations (read by the status loop).
	integrations map[status.Key]status.Integration

	// wanted are kinds an object was created of (Want), for Run to start watching; wantSig
	// wakes it.
	wantMu  sync.Mutex
	wanted  map[schema.GroupResource]bool
	wantSig chan struct{}

	mu      sync.Mutex
	applied string // snapshot version last applied
	lastErr error
	// decision is what the claims registry granted at the last reconcile.
	decision *claims.Decision
}

// Kick asks for a reconcile (e.g. another project released a hostname this one waits for).
func (c *Controller) Kick() { c.kick() }

// New builds a controller; Run starts it.
func New(opts Options) (*Controller, error) {
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Translate.Scope = opts.Project
	// The project's translations remember the last good version of each auth Secret.
	opts.Translate.Memory = &translate.Memory{}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = 200, 400
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Controller{opts: opts, log: opts.Logger.With("project", opts.Project), client: client, trigger: make(chan struct{}, 1),
		wanted: map[schema.GroupResource]bool{}, wantSig: make(chan struct{}, 1)}, nil
}

// Run watches until ctx ends. It returns after the informers synced and the first snapshot
// was applied is not guaranteed; use Synced.
func (c *Controller) Run(ctx context.Context) {
	defer forgetProjectMetrics(c.opts.Project)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.client, 0)
	c.informers = map[schema.GroupVersionResource]cache.SharedIndexInformer{}
	// A kind is watched once the project has an object of it: a watch costs the project's API
	// server and this controller goroutines and memory, and most projects use few kinds. Kinds
	// without objects now wait for Want (the API server calls it on every create).
	lazy := map[schema.GroupResource]*resource.Kind{}
	for _, k := range watched() {
		if c.hasObjects(ctx, k) {
			c.watch(factory, k)
		} else {
			lazy[k.GVR().GroupResource()] = k
		}
	}
	if !c.startWatches(ctx, factory) {
		return
	}
	c.kick()
	// Backend health changes in the data plane, not the API: poll it for status.
	health := time.NewTicker(time.Second)
	defer health.Stop()
	for {
		select {
		case <-ctx.Done():
			factory.Shutdown()
			return
		case <-c.wantSig:
			if !c.watchWanted(ctx, factory, lazy) {
				factory.Shutdown()
				return
			}
			continue
		case <-health.C:
			if err := c.writeDataPlaneStatus(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("data plane status", "err", err)
			}
			if err := c.writePolicyHealth(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("policy health status", "err", err)
			}
			if err := c.writeAuthPolicyHealth(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("auth policy health status", "err", err)
			}
			continue
		case <-c.trigger:
		}
		// Coalesce a burst.
		t := time.NewTimer(c.opts.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			factory.Shutdown()
			return
		case <-t.C:
		}
		select {
		case <-c.trigger:
		default:
		}
		if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("reconcile", "err", err)
			time.AfterFunc(time.Second, c.kick)
		}
	}
}

// Want tells the controller an object of gr was created, so it watches that kind from now on
// (see Run). Cheap and non-blocking: the API server calls it on every create.
func (c *Controller) Want(gr schema.GroupResource) {
	c.wantMu.Lock()
	if c.wanted[gr] {
		c.wantMu.Unlock()
		return
	}
	c.wanted[gr] = true
	c.wantMu.Unlock()
	select {
	case c.wantSig <- struct{}{}:
	default:
	}
}

// hasObjects reports whether the project has an object of kind k (true when it cannot tell).
func (c *Controller) hasObjects(ctx context.Context, k *resource.Kind) bool {
	l, err := c.client.Resource(k.GVR()).List(ctx, metav1.ListOptions{Limit: 1})
	return err != nil || len(l.Items) > 0
}

// watch adds kind k's informer to the factory (started by startWatches).
func (c *Controller) watch(factory dynamicinformer.DynamicSharedInformerFactory, k *resource.Kind) {
	inf := factory.ForResource(k.GVR()).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.kick() },
		UpdateFunc: func(any, any) { c.kick() },
		DeleteFunc: func(any) { c.kick() },
	}); err != nil {
		c.log.Error("informer", "resource", k.Plural, "err", err)
	}
	c.informers[k.GVR()] = inf
}

// startWatches starts the informers added since the last call and waits until they synced
// (false: ctx ended first).
func (c *Controller) startWatches(ctx context.Context, factory dynamicinformer.DynamicSharedInformerFactory) bool {
	factory.Start(ctx.Done())
	for gvr, inf := range c.informers {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			c.log.Warn("cache not synced", "resource", gvr.Resource)
			return false
		}
	}
	return true
}

// watchWanted starts watching the kinds Want asked for that are not watched yet, then
// reconciles (false: ctx ended).
func (c *Controller) watchWanted(ctx context.Context, factory dynamicinformer.DynamicSharedInformerFactory, lazy map[schema.GroupResource]*resource.Kind) bool {
	c.wantMu.Lock()
	var add []*resource.Kind
	for gr := range c.wanted {
		if k, ok := lazy[gr]; ok {
			add = append(add, k)
			delete(lazy, gr)
		}
	}
	c.wantMu.Unlock()
	if len(add) == 0 {
		return true
	}
	for _, k := range add {
		c.watch(factory, k)
	}
	if !c.startWatches(ctx, factory) {
		return false
	}
	c.kick()
	return true
}

func (c *Controller) kick() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Applied returns the version of the last snapshot the data plane accepted, and the last
// apply error.
func (c *Controller) Applied() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied, c.lastErr
}

func (c *Controller) reconcile(ctx context.Context) error {
	began := time.Now()
	set, err := c.snapshotSet()
	if err != nil {
		return err
	}
	for _, r := range c.opts.Reconcilers {
		if err := r.Reconcile(ctx, set, c.client, c.kick); err != nil && ctx.Err() == nil {
			c.log.Error("reconcile", "reconciler", fmt.Sprintf("%T", r), "err", err)
			time.AfterFunc(time.Second, c.kick)
		}
	}
	topts := c.opts.Translate
	topts.Now = c.opts.Now()
	snap, report := translate.Translate(set, topts)
	c.amend(set, snap, report, topts.Scope)
	var decision *claims.Decision
	if c.opts.Claims != nil {
		full := snap
		snap, decision = c.opts.Claims.Settle(c.opts.Project, snap)
		markDeniedHostnames(full, decision, report, topts.Now)
	}
	c.mu.Lock()
	c.decision = decision
	c.mu.Unlock()
	applyErr := c.opts.Data.Apply(c.opts.Project, snap)
	observeApply(c.opts.Project, snap.Version, time.Since(began), applyErr)
	c.mu.Lock()
	c.lastErr = applyErr
	if applyErr == nil {
		c.applied = snap.Version
	}
	c.mu.Unlock()
	if applyErr != nil {
		c.log.Error("data plane rejected the configuration; the previous one keeps serving", "err", applyErr)
		for _, st := range report.Gateways {
			status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionProgrammed), false, string(gwapiv1.GatewayReasonInvalid),
				"the data plane rejected the configuration: "+applyErr.Error(), 0, topts.Now))
		}
	}
	if c.markUnboundListeners(set, report, topts) {
		// Retry binding while a port is taken: the Apply below the next tick rebinds.
		time.AfterFunc(2*time.Second, c.kick)
	}
	if err := c.writeStatus(ctx, set, report); err != nil {
		return err
	}
	c.policyStores = report.PolicyStores
	c.authRuntime = report.AuthRuntime
	c.integrations = report.Integrations
	return c.writeDataPlaneStatus(ctx)
}

// amend lets the Amenders among the reconcilers add to the snapshot. A snapshot they leave
// invalid is a bug; it is logged and the data plane refuses it (the previous one serves).
func (c *Controller) amend(set *resource.Set, snap *ir.Snapshot, report *status.Report, scope string) {
	amended := false
	for _, r := range c.opts.Reconcilers {
		if a, ok := r.(Amender); ok {
			a.Amend(set, snap, report, scope)
			amended = true
		}
	}
	if !amended {
		return
	}
	snap.SetVersion()
	if err := snap.Validate(); err != nil {
		c.log.Error("a reconciler left the snapshot invalid", "err", err)
	}
}

// writeDataPlaneStatus runs the status writer of every kind whose status comes from the data
// plane.
func (c *Controller) writeDataPlaneStatus(ctx context.Context) error {
	var firstErr error
	for _, k := range resource.Kinds() {
		if k.Status != resource.StatusByDataPlane {
			continue
		}
		write, ok := dataPlaneStatus[k.GVK.GroupKind()]
		if !ok {
			return fmt.Errorf("no status writer for %s", k)
		}
		if err := write(c, ctx, k); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// markUnboundListeners turns data-plane bind failures into listener conditions (Accepted=False,
// reason PortUnavailable) and reports whether any exists.
func (c *Controller) markUnboundListeners(set *resource.Set, report *status.Report, opts translate.Options) bool {
	retry := false
	for _, gw := range set.Gateways {
		st, ok := report.Gateways[status.KeyOf(gw.Namespace, gw.Name)]
		if !ok {
			continue
		}
		addrs := report.GatewayBinds[status.KeyOf(gw.Namespace, gw.Name)]
		serving, unbound := 0, false
		for i := range st.Listeners {
			ls := &st.Listeners[i]
			var spec *gwapiv1.Listener
			for j := range gw.Spec.Listeners {
				if gw.Spec.Listeners[j].Name == ls.Name {
					spec = &gw.Spec.Listeners[j]
				}
			}
			if spec == nil {
				continue
			}
			if marked, bindErr := c.markPortUnavailable(&ls.Conditions, addrs, spec, gw.Generation, opts); marked {
				unbound = true
				retry = retry || bindErr
			} else if p := status.Find(ls.Conditions, string(gwapiv1.ListenerConditionProgrammed)); p != nil && p.Status == metav1.ConditionTrue {
				serving++
			}
		}
		if unbound && serving == 0 {
			status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionProgrammed), false, string(gwapiv1.GatewayReasonInvalid), "no listener could be bound", gw.Generation, opts.Now))
		}
		if c.markUnusableAddresses(gw, addrs, st, opts) {
			retry = true
		}
	}
	// ListenerSet listeners bind on their parent Gateway's addresses.
	for _, ls := range set.ListenerSets {
		st, ok := report.ListenerSets[status.KeyOf(ls.Namespace, ls.Name)]
		if !ok {
			continue
		}
		parentNS := ls.Namespace
		if ls.Spec.ParentRef.Namespace != nil {
			parentNS = string(*ls.Spec.ParentRef.Namespace)
		}
		addrs := report.GatewayBinds[status.KeyOf(parentNS, string(ls.Spec.ParentRef.Name))]
		for i := range st.Listeners {
			for _, e := range ls.Spec.Listeners {
				if e.Name != st.Listeners[i].Name {
					continue
				}
				if _, bindErr := c.markPortUnavailable(&st.Listeners[i].Conditions, addrs, listenerOf(e), ls.Generation, opts); bindErr {
					retry = true
				}
			}
		}
	}
	return retry
}

// listenerOf views a ListenerSet entry as a Gateway listener (the fields that pick a socket).
func listenerOf(e gwapiv1.ListenerEntry) *gwapiv1.Listener {
	return &gwapiv1.Listener{Name: e.Name, Hostname: e.Hostname, Port: e.Port, Protocol: e.Protocol}
}

// markPortUnavailable sets a listener's conditions when it cannot serve on one of addrs:
// Conflicted when the claims registry gave its socket or hostname to another project, and
// PortUnavailable when the data plane could not bind the port. It reports whether it marked
// the listener, and whether for a bind error (retried) rather than a conflict (the registry
// notifies when the other project lets go).
func (c *Controller) markPortUnavailable(conds *[]metav1.Condition, addrs []string, l *gwapiv1.Listener, gen int64, opts translate.Options) (marked, bindFailed bool) {
	sockProto := ir.ProtocolTCP // every protocol but UDP binds a TCP socket
	if l.Protocol == gwapiv1.UDPProtocolType {
		sockProto = ir.ProtocolUDP
	}
	c.mu.Lock()
	decision := c.decision
	c.mu.Unlock()
	hostname := ""
	if l.Hostname != nil {
		hostname = string(*l.Hostname)
	}
	for _, a := range addrs {
		sock := ir.SocketName(sockProto, a, int32(l.Port))
		d, denied := decision.Socket(sock)
		if !denied && hostname != "" {
			d, denied = decision.Name(sock, hostname)
		}
		if !denied {
			continue
		}
		reason, accepted := gwapiv1.ListenerReasonProtocolConflict, gwapiv1.ListenerReasonPortUnavailable
		if d.Name != "" {
			reason, accepted = gwapiv1.ListenerReasonHostnameConflict, gwapiv1.ListenerConditionReason(gwapiv1.ListenerReasonHostnameConflict)
		}
		status.Set(conds, status.Condition(string(gwapiv1.ListenerConditionConflicted), true, string(reason), d.Message, gen, opts.Now))
		status.Set(conds, status.Condition(string(gwapiv1.ListenerConditionAccepted), false, string(accepted), d.Message, gen, opts.Now))
		status.Set(conds, status.Condition(string(gwapiv1.ListenerConditionProgrammed), false, string(gwapiv1.ListenerReasonInvalid), d.Message, gen, opts.Now))
		return true, false
	}
	var bindErr error
	for _, a := range addrs {
		if err := c.opts.Data.BindError(ir.SocketName(sockProto, a, int32(l.Port))); err != nil {
			bindErr = err
		}
	}
	if bindErr == nil {
		return false, false
	}
	msg := "the address is not available: " + bindErr.Error()
	status.Set(conds, status.Condition(string(gwapiv1.ListenerConditionAccepted), false, string(gwapiv1.ListenerReasonPortUnavailable), msg, gen, opts.Now))
	status.Set(conds, status.Condition(string(gwapiv1.ListenerConditionProgrammed), false, string(gwapiv1.ListenerReasonInvalid), msg, gen, opts.Now))
	return true, true
}

// markUnusableAddresses handles addresses this machine does not have (the kernel refuses
// to bind them): the Gateway is Programmed=False with reason AddressNotUsable, and
// status.addresses lists only the addresses that serve.
func (c *Controller) markUnusableAddresses(gw *gwapiv1.Gateway, addrs []string, st *gwapiv1.GatewayStatus, opts translate.Options) bool {
	var unusable []string
	for _, a := range addrs {
		for _, l := range gw.Spec.Listeners {
			if err := c.opts.Data.BindError(net.JoinHostPort(a, strconv.Itoa(int(l.Port)))); errors.Is(err, syscall.EADDRNOTAVAIL) {
				unusable = append(unusable, a)
				break
			}
		}
	}
	if len(unusable) == 0 {
		return false
	}
	st.Addresses = slices.DeleteFunc(st.Addresses, func(a gwapiv1.GatewayStatusAddress) bool { return slices.Contains(unusable, a.Value) })
	msg := fmt.Sprintf("address %s is not assigned to this machine; remove it from spec.addresses or add it to a network interface", strings.Join(unusable, ", "))
	status.Set(&st.Conditions, status.Condition(string(gwapiv1.GatewayConditionProgrammed), false, string(gwapiv1.GatewayReasonAddressNotUsable), msg, gw.Generation, opts.Now))
	return true
}

// writeBackendStatus reports each Backend's resolved endpoints and health as the data plane
// sees them.
func (c *Controller) writeBackendStatus(ctx context.Context, k *resource.Kind) error {
	gvr := k.GVR()
	now := metav1.NewTime(c.opts.Now())
	var firstErr error
	inf := c.informers[gvr]
	if inf == nil {
		return nil
	}
	for _, o := range inf.GetStore().List() {
		u := o.(*unstructured.Unstructured)
		var b corev1a2.Backend
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			continue
		}
		next := corev1a2.BackendStatus{ObservedGeneration: b.Generation}
		cond := func(typ string, st metav1.ConditionStatus, reason, msg string) {
			status.Set(&next.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: b.Generation, LastTransitionTime: now})
		}
		cond("Accepted", metav1.ConditionTrue, "Accepted", "Backend is valid")
		name := c.opts.Project + "/" + b.Namespace + "/" + b.Name
		states, used := c.opts.Data.Endpoints(name)
		denied := ""
		if d := c.opts.Data.Denied(name); len(d) > 0 {
			denied = strings.Join(d, "; ")
		}
		healthy := 0
		for _, s := range states {
			next.Endpoints = append(next.Endpoints, corev1a2.BackendEndpointStatus{Address: s.Address, Healthy: s.Healthy})
			if s.Healthy {
				healthy++
			}
		}
		switch {
		case !used:
			cond("ResolvedEndpoints", metav1.ConditionUnknown, "NotReferenced", "no route sends traffic to this Backend")
			cond("Healthy", metav1.ConditionUnknown, "NotReferenced", "no route sends traffic to this Backend")
		case len(states) == 0 && denied != "":
			cond("ResolvedEndpoints", metav1.ConditionFalse, "DestinationDenied", denied)
			cond("Healthy", metav1.ConditionFalse, "NoHealthyEndpoints", "no endpoint address the gateway may connect to")
		case len(states) == 0:
			cond("ResolvedEndpoints", metav1.ConditionFalse, "NoAddresses", "no endpoint resolved to an address")
			cond("Healthy", metav1.ConditionFalse, "NoHealthyEndpoints", "no endpoint address to send traffic to")
		default:
			msg := fmt.Sprintf("%d endpoint addresses", len(states))
			if denied != "" {
				msg += "; refused: " + denied
			}
			cond("ResolvedEndpoints", metav1.ConditionTrue, "Resolved", msg)
			if healthy > 0 {
				cond("Healthy", metav1.ConditionTrue, "Healthy", fmt.Sprintf("%d/%d endpoint addresses healthy", healthy, len(states)))
			} else {
				cond("Healthy", metav1.ConditionFalse, "NoHealthyEndpoints", fmt.Sprintf("0/%d endpoint addresses healthy", len(states)))
			}
		}
		status.KeepTransitionTimes(next.Conditions, b.Status.Conditions)
		if apiequality.Semantic.DeepEqual(b.Status, next) {
			continue
		}
		if err := c.updateStatus(ctx, k, &b.ObjectMeta, &next); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// updateStatus writes an object's status (a conflict or a deleted object is not an error:
// the next pass writes it again).
func (c *Controller) updateStatus(ctx context.Context, k *resource.Kind, m *metav1.ObjectMeta, status any) error {
	gvr := k.GVR()
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return err
	}
	up := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": k.GVK.Kind,
		"metadata": map[string]any{"name": m.Name, "namespace": m.Namespace, "resourceVersion": m.ResourceVersion},
		"status":   st,
	}}
	if _, err := c.client.Resource(gvr).Namespace(m.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: "apoxy-controller"}); err != nil &&
		!apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// snapshotSet converts every cached object to its Go type.
func (c *Controller) snapshotSet() (*resource.Set, error) {
	set := &resource.Set{}
	for _, k := range watched() {
		inf := c.informers[k.GVR()]
		if inf == nil {
			continue // no object of the kind yet (Run)
		}
		for _, o := range inf.GetStore().List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			obj := k.New()
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
				return nil, fmt.Errorf("decode %s %s: %w", k.Plural, u.GetName(), err)
			}
			if err := set.Add(obj); err != nil {
				return nil, err
			}
		}
	}
	set.Sort()
	return set, nil
}

// writeStatus updates the status of every object whose status the translator reported
// (resource.StatusByTranslator) and whose stored status differs from it. Conflicts are retried
// by the next reconcile (the informer sees the newer object).
func (c *Controller) writeStatus(ctx context.Context, set *resource.Set, report *status.Report) error {
	var firstErr error
	for _, k := range resource.Kinds() {
		if k.Status != resource.StatusByTranslator {
			continue
		}
		gvr := k.GVR()
		for _, obj := range set.Objects(k) {
			current, next, ok := k.ReportedStatus(report, obj)
			if !ok || apiequality.Semantic.DeepEqual(current, next) {
				continue
			}
			st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(next)
			if err != nil {
				firstErr = err
				continue
			}
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": gvr.GroupVersion().String(),
				"metadata":   map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace(), "resourceVersion": obj.GetResourceVersion()},
				"status":     st,
			}}
			_, err = c.client.Resource(gvr).Namespace(obj.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "apoxy-controller"})
			if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && firstErr == nil {
				firstErr = fmt.Errorf("update status of %s %s/%s: %w", gvr.Resource, obj.GetNamespace(), obj.GetName(), err)
			}
			if apierrors.IsConflict(err) {
				c.kick()
			}
		}
	}
	return firstErr
}

// LoadSet lists every kind the translator reads from a project's API (for one-off uses such as
// `apoxy explain`; the controller itself reads from its informers).
func LoadSet(ctx context.Context, client dynamic.Interface) (*resource.Set, error) {
	set := &resource.Set{}
	for _, k := range watched() {
		list, err := client.Resource(k.GVR()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", k.Plural, err)
		}
		for i := range list.Items {
			obj := k.New()
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, obj); err != nil {
				return nil, err
			}
			if err := set.Add(obj); err != nil {
				return nil, err
			}
		}
	}
	set.Sort()
	return set, nil
}
