package translate

import (
	"maps"
	"net/http"
	"slices"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/status"
)

// edgeFunction resolves a route's reference to an EdgeFunction (an ExtensionRef filter, or a
// backendRef) to the revision that serves: the function's status.liveRevision, which its
// builder sets to the newest revision that built (or the one spec.liveRevision pins), so a
// failed build never reaches the data plane. The reference must use the function in the mode
// its template declares. A function with no live revision yet, or one used in the wrong
// mode, is a reference error and the rule (or that backend's share) answers 500, as Gateway
// API requires for what cannot be applied.
func (t *translator) edgeFunction(rc *routeCtx, name string, mode extv1a2.EdgeFunctionMode) (*ir.Function, *ir.DirectResponse) {
	fail := &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
	key := status.KeyOf(rc.namespace, name)
	ef, ok := t.functions[key]
	if !ok {
		rc.refError(string(gwapiv1.RouteReasonBackendNotFound), "EdgeFunction %s not found", key)
		return nil, fail
	}
	if m := functionMode(ef.Spec.Template.Mode); m != mode {
		how := "an ExtensionRef filter runs a function in mode filter"
		if mode == extv1a2.EdgeFunctionModeBackend {
			how = "a backendRef runs a function in mode backend"
		}
		rc.refError(string(gwapiv1.RouteReasonIncompatibleFilters), "EdgeFunction %s is in mode %s; %s (set spec.template.mode, or refer to it the other way)", key, m, how)
		return nil, fail
	}
	live := ef.Status.LiveRevision
	rev := t.revisions[status.KeyOf(rc.namespace, live)]
	if live == "" || rev == nil || rev.Status.Phase != extv1a2.RevisionReady || rev.Status.Artifact == nil {
		rc.refError(string(gwapiv1.RouteReasonBackendNotFound), "EdgeFunction %s has no live revision yet (its revision is building, or its build failed: see `apoxy get edgefunction %s -o yaml`)", key, name)
		return nil, fail
	}
	spec := &rev.Spec
	f := &ir.Function{
		Name: string(key), Revision: rev.Name, Scope: t.opts.Scope,
		Digest: rev.Status.Artifact.Digest, Runtime: rev.Status.Artifact.Runtime, Mode: string(mode),
		Fetch: true, KV: true,
	}
	if len(t.snap.RateLimitStores) > 0 {
		// KV lives in the Redis the project's Proxy names (spec.rateLimit.redis), which
		// every replica of that Proxy shares; with several such Proxies, the first by name.
		f.KVStore = slices.Sorted(maps.Keys(t.snap.RateLimitStores))[0]
	}
	for _, e := range spec.Env {
		if f.Env == nil {
			f.Env = map[string]string{}
		}
		f.Env[e.Name] = e.Value
	}
	if r := spec.Runtime; r != nil {
		if r.Timeout != nil {
			f.Timeout = ir.Duration(r.Timeout.Duration)
		}
		if c := r.Capabilities; c != nil {
			f.Fetch, f.KV = deref(c.FetchAPI, true), deref(c.KV, true)
		}
	}
	if f.Timeout == 0 {
		f.Timeout = ir.Duration(30 * time.Second)
	}
	if g := spec.Code.GoPluginSource; g != nil {
		f.Config = g.PluginConfig
	}
	if ef.Spec.DynamicPluginConfig != "" {
		f.Config = ef.Spec.DynamicPluginConfig
	}
	return f, nil
}

// functionMode is a template's mode with its default (backend).
func functionMode(m extv1a2.EdgeFunctionMode) extv1a2.EdgeFunctionMode {
	if m == "" {
		return extv1a2.EdgeFunctionModeBackend
	}
	return m
}

// isEdgeFunctionRef: does a backendRef name an EdgeFunction (group extensions.apoxy.dev)?
func isEdgeFunctionRef(ref gwapiv1.BackendObjectReference) bool {
	return ref.Kind != nil && *ref.Kind == "EdgeFunction" && ref.Group != nil && string(*ref.Group) == extensionsGroup
}
