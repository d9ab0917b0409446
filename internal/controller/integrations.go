package controller

import (
	"context"
	"fmt"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

// CloudMonitoringIntegration condition and reasons.
const (
	integrationConnected = "Connected"

	integrationReady              = "Ready"
	integrationDisabled           = "Disabled"
	integrationValidationFailed   = "ValidationFailed"
	integrationConfigPending      = "ConfigPending"
	integrationCollectorUnhealthy = "CollectorUnhealthy"
)

// writeIntegrationStatus sets each CloudMonitoringIntegration's Connected condition from what
// the translator made of it and, for the sinks it became, the data plane's export state: the
// last export and the last error, with their times. Several Proxies may use one integration:
// it is connected when every sink's last export after its last error succeeded.
func (c *Controller) writeIntegrationStatus(ctx context.Context, k *resource.Kind) error {
	gvr := k.GVR()
	now := metav1.NewTime(c.opts.Now())
	var firstErr error
	inf := c.informers[gvr]
	if inf == nil {
		return nil
	}
	for _, o := range inf.GetStore().List() {
		u := o.(*unstructured.Unstructured)
		var in corev1a2.CloudMonitoringIntegration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &in); err != nil {
			continue
		}
		rep, known := c.integrations[status.KeyOf(in.Namespace, in.Name)]
		if !known {
			continue // not translated yet
		}
		next := in.Status.DeepCopy()
		next.ObservedGeneration = rep.Generation
		cond := func(ok bool, reason, msg string) {
			status.Set(&next.Conditions, status.Condition(integrationConnected, ok, reason, msg, rep.Generation, now.Time))
		}
		switch {
		case rep.Disabled:
			cond(false, integrationDisabled, "spec.enabled is false: nothing is exported")
		case rep.Error != "":
			cond(false, integrationValidationFailed, rep.Error)
		case len(rep.Sinks) == 0:
			cond(false, integrationConfigPending, "no Gateway in use has a Proxy this integration applies to")
		default:
			var failing []string
			exported, pending := false, 0
			for _, s := range rep.Sinks {
				st, ok := c.opts.Data.SinkStatus(s.Collector, s.Sink)
				if !ok {
					pending++
					continue
				}
				if next.LastSyncTime == nil || st.Since.After(next.LastSyncTime.Time) {
					next.LastSyncTime = &metav1.Time{Time: st.Since}
				}
				if !st.LastSuccess.IsZero() && (next.LastExportTime == nil || st.LastSuccess.After(next.LastExportTime.Time)) {
					next.LastExportTime = &metav1.Time{Time: st.LastSuccess}
					exported = true
				}
				if st.LastError != "" && (next.LastErrorTime == nil || st.LastErrorTime.After(next.LastErrorTime.Time)) {
					next.LastError, next.LastErrorTime = st.LastError, &metav1.Time{Time: st.LastErrorTime}
				}
				if st.LastError != "" && st.LastErrorTime.After(st.LastSuccess) {
					failing = append(failing, st.LastError)
				}
			}
			switch {
			case len(failing) > 0:
				cond(false, integrationCollectorUnhealthy, "export failing: "+strings.Join(failing, "; "))
			case pending == len(rep.Sinks):
				cond(false, integrationConfigPending, "the data plane has not started this integration's exporter yet")
			case exported || next.LastExportTime != nil:
				cond(true, integrationReady, fmt.Sprintf("exporting from %d Proxies", len(rep.Sinks)))
			default:
				cond(true, integrationReady, "configured; nothing exported yet")
			}
		}
		status.KeepTransitionTimes(next.Conditions, in.Status.Conditions)
		if apiequality.Semantic.DeepEqual(&in.Status, next) {
			continue
		}
		if err := c.updateStatus(ctx, k, &in.ObjectMeta, next); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
