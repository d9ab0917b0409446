package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

var authPolicyKind = resource.MustKindOf(&policyv1a1.AuthPolicy{})

// writeAuthPolicyHealth sets the Healthy condition of each AuthPolicy whose blocks depend on
// something at run time, on every ancestor it is accepted under (design §3.2): Healthy, or
// JWKSFetchFailed / ExtAuthUnavailable from the data plane's view, with the failure mode in
// force in the message. It is written only on a transition; the translator keeps it across
// its own status writes.
func (c *Controller) writeAuthPolicyHealth(ctx context.Context) error {
	if len(c.authRuntime) == 0 {
		return nil
	}
	gvr := authPolicyKind.GVR()
	inf := c.informers[gvr]
	if inf == nil {
		return nil
	}
	now := metav1.NewTime(c.opts.Now())
	var firstErr error
	for key, rt := range c.authRuntime {
		deps, known := c.opts.Data.AuthPolicyHealth(rt.ID)
		if !known {
			continue // not served yet
		}
		o, ok, _ := inf.GetStore().GetByKey(string(key))
		if !ok {
			continue
		}
		u := o.(*unstructured.Unstructured)
		var p policyv1a1.AuthPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			continue
		}
		cond := authHealthCondition(deps, rt)
		cond.ObservedGeneration, cond.LastTransitionTime = p.Generation, now
		next := *p.Status.DeepCopy()
		for _, i := range rt.Ancestors {
			if i >= len(next.Ancestors) {
				continue
			}
			as := &next.Ancestors[i]
			if old := status.Find(as.Conditions, "Healthy"); old != nil && old.Status == cond.Status && old.Reason == cond.Reason {
				continue // only transitions are written
			}
			status.Set(&as.Conditions, cond)
		}
		if err := c.writePolicyStatus(ctx, gvr, u, &p.Status, &next); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// authHealthCondition sums up an AuthPolicy's runtime dependencies.
func authHealthCondition(deps map[string]error, rt status.AuthRuntime) metav1.Condition {
	var names []string
	for name := range deps {
		names = append(names, name)
	}
	slices.Sort(names)
	var jwks, ext, idp []string
	for _, name := range names {
		if err := deps[name]; err != nil {
			msg := fmt.Sprintf("%s: %v", name, err)
			switch {
			case strings.HasPrefix(name, "JWKS "):
				jwks = append(jwks, msg)
			case strings.HasPrefix(name, "OIDC "):
				idp = append(idp, msg)
			default:
				ext = append(ext, msg)
			}
		}
	}
	switch {
	case len(idp) > 0:
		return metav1.Condition{Type: "Healthy", Status: metav1.ConditionFalse, Reason: "OIDCDiscoveryFailed",
			Message: strings.Join(idp, "; ") + "; requests with a session keep working, logins fail (503)"}
	case len(jwks) > 0:
		return metav1.Condition{Type: "Healthy", Status: metav1.ConditionFalse, Reason: "JWKSFetchFailed",
			Message: strings.Join(jwks, "; ") + "; tokens that need these keys get 401 (cached keys keep working for cacheDuration plus 1h)"}
	case len(ext) > 0:
		mode := fmt.Sprintf("fail closed: requests get %d", rt.ExtAuthStatus)
		if rt.ExtAuthFailOpen {
			mode = "fail open: requests pass unchecked"
		}
		return metav1.Condition{Type: "Healthy", Status: metav1.ConditionFalse, Reason: "ExtAuthUnavailable", Message: strings.Join(ext, "; ") + "; " + mode}
	}
	return metav1.Condition{Type: "Healthy", Status: metav1.ConditionTrue, Reason: "Healthy", Message: "every runtime dependency works: " + strings.Join(names, ", ")}
}
