package controller

import (
	"context"
	"fmt"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

var trafficPolicyKind = resource.MustKindOf(&policyv1a1.TrafficPolicy{})

// writePolicyHealth sets the Healthy condition of each TrafficPolicy ancestor whose Global
// rate-limit rules count in a store, from the data plane's view of that store (design §3.2:
// Healthy, or RateLimitStoreUnavailable with the failure mode in force). It is written only
// on a change; the translator keeps it across its own status writes.
func (c *Controller) writePolicyHealth(ctx context.Context) error {
	if len(c.policyStores) == 0 {
		return nil
	}
	gvr := trafficPolicyKind.GVR()
	inf := c.informers[gvr]
	if inf == nil {
		return nil
	}
	now := metav1.NewTime(c.opts.Now())
	var firstErr error
	for key, stores := range c.policyStores {
		o, ok, _ := inf.GetStore().GetByKey(string(key)) // "namespace/name", as informers key
		if !ok {
			continue
		}
		u := o.(*unstructured.Unstructured)
		var p policyv1a1.TrafficPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			continue
		}
		next := *p.Status.DeepCopy()
		for i := range next.Ancestors {
			name, ok := stores[i]
			if !ok {
				continue
			}
			h, known := c.opts.Data.RateLimitStoreHealth(ctx, name)
			if !known {
				continue // not served yet
			}
			cond := metav1.Condition{Type: "Healthy", Status: metav1.ConditionTrue, Reason: "Healthy",
				Message: "rate-limit store " + h.Address + " reachable", ObservedGeneration: p.Generation, LastTransitionTime: now}
			if h.Err != nil {
				mode := "fail open: Global rules let requests pass"
				if rl := p.Spec.RateLimit; rl != nil && rl.FailureMode == policyv1a1.FailClosed {
					mode = "fail closed: requests their Global rules count get 503"
				}
				cond.Status, cond.Reason = metav1.ConditionFalse, "RateLimitStoreUnavailable"
				cond.Message = fmt.Sprintf("rate-limit store %s unreachable (%v); %s", h.Address, h.Err, mode)
			}
			as := &next.Ancestors[i]
			if old := status.Find(as.Conditions, "Healthy"); old != nil && old.Status == cond.Status && old.Reason == cond.Reason {
				continue // only transitions are written (the message may carry a changing error)
			}
			status.Set(&as.Conditions, cond)
		}
		if err := c.writePolicyStatus(ctx, gvr, u, &p.Status, &next); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// writePolicyStatus writes a policy's status next over old (u is its stored object) when they
// differ; a conflict or a deleted object is left to the next round.
func (c *Controller) writePolicyStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, old, next *gwapiv1.PolicyStatus) error {
	if apiequality.Semantic.DeepEqual(old, next) {
		return nil
	}
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(next)
	if err != nil {
		return err
	}
	up := u.DeepCopy()
	up.Object["status"] = st
	if _, err := c.client.Resource(gvr).Namespace(u.GetNamespace()).UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: "apoxy-controller"}); err != nil &&
		!apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
