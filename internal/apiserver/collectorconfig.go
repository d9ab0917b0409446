package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
)

var (
	configMapsGR = schema.GroupResource{Resource: "configmaps"}
	proxiesGR    = schema.GroupResource{Group: corev1a2.GroupName, Resource: "proxies"}
)

// collectorConfigs refuses, when it is stored, an OpenTelemetry Collector configuration the
// data plane would refuse: a Proxy whose spec.telemetry.otelCollectorConfig names a ConfigMap
// holding an invalid one, and a write of such a ConfigMap while a Proxy names it. A reference
// to a ConfigMap that does not exist yet is allowed (files apply in any order): the Proxy's
// status says it is missing until it comes.
type collectorConfigs struct {
	validate   func(yaml []byte) error
	configMaps *genericregistry.Store
	proxies    *genericregistry.Store
}

var _ admission.ValidationInterface = (*collectorConfigs)(nil)

func (c *collectorConfigs) Handles(op admission.Operation) bool {
	return op == admission.Create || op == admission.Update
}

func (c *collectorConfigs) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if c.validate == nil || a.GetSubresource() != "" {
		return nil
	}
	ctx = genericapirequest.WithNamespace(ctx, a.GetNamespace())
	switch a.GetResource().GroupResource() {
	case proxiesGR:
		p, ok := a.GetObject().(*corev1a2.Proxy)
		if !ok || p.Spec.Telemetry == nil || p.Spec.Telemetry.OtelCollectorConfig == nil {
			return nil
		}
		name := p.Spec.Telemetry.OtelCollectorConfig.Name
		obj, err := c.configMaps.Get(ctx, name, &metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		key, cfg, ok := corev1a2.CollectorConfigData(obj.(*corev1.ConfigMap).Data)
		if !ok {
			return nil // reported in status: the ConfigMap may still be given the key
		}
		if err := c.validate([]byte(cfg)); err != nil {
			return apierrors.NewInvalid(corev1a2.SchemeGroupVersion.WithKind("Proxy").GroupKind(), p.Name, field.ErrorList{
				field.Invalid(field.NewPath("spec", "telemetry", "otelCollectorConfig", "name"), name,
					fmt.Sprintf("ConfigMap %s/%s key %s: %v", a.GetNamespace(), name, key, err)),
			})
		}
	case configMapsGR:
		cm, ok := a.GetObject().(*corev1.ConfigMap)
		if !ok {
			return nil
		}
		user, err := c.proxyUsing(ctx, cm.Name)
		if err != nil || user == "" {
			return err
		}
		key, cfg, ok := corev1a2.CollectorConfigData(cm.Data)
		if !ok {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, cm.Name, field.ErrorList{
				field.Required(field.NewPath("data").Key(corev1a2.CollectorConfigKey),
					fmt.Sprintf("Proxy %s reads its OpenTelemetry Collector configuration from this ConfigMap: keep the key %q (or exactly one key)", user, corev1a2.CollectorConfigKey)),
			})
		}
		if err := c.validate([]byte(cfg)); err != nil {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, cm.Name, field.ErrorList{
				field.Invalid(field.NewPath("data").Key(key), "(collector configuration)",
					fmt.Sprintf("%v (Proxy %s uses this ConfigMap as its otelCollectorConfig)", err, user)),
			})
		}
	}
	return nil
}

// proxyUsing names a Proxy of the namespace whose otelCollectorConfig is the ConfigMap ("":
// none).
func (c *collectorConfigs) proxyUsing(ctx context.Context, configMap string) (string, error) {
	list, err := c.proxies.List(ctx, &metainternalversion.ListOptions{})
	if err != nil {
		return "", apierrors.NewInternalError(err)
	}
	for _, p := range list.(*corev1a2.ProxyList).Items {
		if t := p.Spec.Telemetry; t != nil && t.OtelCollectorConfig != nil && t.OtelCollectorConfig.Name == configMap {
			return p.Namespace + "/" + p.Name, nil
		}
	}
	return "", nil
}
