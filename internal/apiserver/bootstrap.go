package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	"apoxy.dev/apoxy/internal/pki"
)

// Ports are the data-plane ports the default Gateway of every project listens on.
type Ports struct {
	HTTP, HTTPS int32
}

// bootstrapObjects returns what every project is born with: namespace default, GatewayClass
// apoxy, Proxy default and Gateway default (HTTP and HTTPS, routes from all namespaces), plus
// the Secret holding the HTTPS listener's fallback certificate: self-signed, generated for this
// project alone (never the API server's key, which no project may hold).
func bootstrapObjects(project string, ports Ports) ([]runtime.Object, error) {
	certPEM, keyPEM, err := projectCertificate(project)
	if err != nil {
		return nil, err
	}
	ns := metav1.ObjectMeta{Namespace: DefaultNamespace}
	named := func(name string) metav1.ObjectMeta { m := ns; m.Name = name; return m }
	all := gwapiv1.NamespacesFromAll
	allowed := &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: &all}}
	terminate := gwapiv1.TLSModeTerminate
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace}},
		&corev1.Secret{
			ObjectMeta: named(gatewayv1.DefaultTLSSecretName),
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
		},
		&gwapiv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: gatewayv1.DefaultGatewayClassName},
			Spec:       gwapiv1.GatewayClassSpec{ControllerName: gatewayv1.ControllerName},
		},
		&corev1a2.Proxy{ObjectMeta: named("default")},
		&gwapiv1.Gateway{
			ObjectMeta: named(gatewayv1.DefaultGatewayName),
			Spec: gwapiv1.GatewaySpec{
				GatewayClassName: gatewayv1.DefaultGatewayClassName,
				Infrastructure: &gwapiv1.GatewayInfrastructure{ParametersRef: &gwapiv1.LocalParametersReference{
					Group: corev1a2.GroupName, Kind: "Proxy", Name: "default",
				}},
				Listeners: []gwapiv1.Listener{
					{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: ports.HTTP, AllowedRoutes: allowed},
					{Name: "https", Protocol: gwapiv1.HTTPSProtocolType, Port: ports.HTTPS, AllowedRoutes: allowed,
						TLS: &gwapiv1.ListenerTLSConfig{Mode: &terminate, CertificateRefs: []gwapiv1.SecretObjectReference{{Name: gatewayv1.DefaultTLSSecretName}}}},
				},
			},
		},
	}, nil
}

// projectCertificate makes a project's own fallback certificate.
func projectCertificate(project string) (certPEM, keyPEM []byte, err error) {
	return pki.SelfSigned("apoxy project "+project, []string{project + ".apoxy.invalid"})
}

// replaceServerKey re-issues a project's default-tls Secret when it holds the API server's
// own key, as projects created by earlier versions do: that key let any tenant impersonate
// the control plane.
func (g *genericServer) replaceServerKey(ctx context.Context, project string, server tls.Certificate) error {
	serverKey, err := pki.MarshalKeyPEM(server)
	if err != nil {
		return err
	}
	store := g.kinds[schema.GroupKind{Kind: "Secret"}]
	if store == nil {
		return nil
	}
	rctx := genericapirequest.WithNamespace(ctx, DefaultNamespace)
	obj, err := store.Get(rctx, gatewayv1.DefaultTLSSecretName, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	sec := obj.(*corev1.Secret)
	if !bytes.Equal(sec.Data[corev1.TLSPrivateKeyKey], serverKey) {
		return nil
	}
	certPEM, keyPEM, err := projectCertificate(project)
	if err != nil {
		return err
	}
	sec = sec.DeepCopy()
	sec.StringData = nil
	sec.Data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
	_, _, err = store.Update(rctx, sec.Name, rest.DefaultUpdatedObjectInfo(sec), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{FieldManager: "apoxy-bootstrap"})
	return err
}

// bootstrap creates the default objects that do not exist yet. Existing ones are left alone:
// users may have changed them.
func (g *genericServer) bootstrap(ctx context.Context, objs []runtime.Object) error {
	for _, obj := range objs {
		gvks, _, err := Scheme.ObjectKinds(obj)
		if err != nil {
			return err
		}
		store, ok := g.kinds[gvks[0].GroupKind()]
		if !ok {
			return fmt.Errorf("bootstrap: %s is not served", gvks[0])
		}
		Scheme.Default(obj)
		m := obj.(metav1.Object)
		rctx := genericapirequest.WithNamespace(ctx, m.GetNamespace())
		if _, err := store.Create(rctx, obj, rest.ValidateAllObjectFunc, &metav1.CreateOptions{FieldManager: "apoxy-bootstrap"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap %s %s: %w", gvks[0].Kind, m.GetName(), err)
		}
	}
	return nil
}
