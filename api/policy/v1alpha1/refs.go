package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
)

// SecretRef names a Secret, and optionally one key of it, that a policy reads credentials or
// keys from (basicAuth users, a local JWKS, an OIDC client secret). Each field that uses it
// documents its default key. A Secret in another namespace needs a ReferenceGrant there
// (from group policy.apoxy.dev, the policy's kind); without one the policy reports
// ResolvedRefs=False, RefNotPermitted.
type SecretRef struct {
	// Name of the Secret.
	Name string `json:"name"`
	// Namespace of the Secret; empty means the policy's own namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key within the Secret's data; each referring field gives the default.
	// +optional
	Key string `json:"key,omitempty"`
}

// BackendKind is the only kind a policy's backendRef may name (in group core.apoxy.dev):
// policies reach services (key sets, OpenID providers, authorization services) through
// Backends, never Kubernetes Services.
const BackendKind = "Backend"

// secretRef checks a Secret reference; hint says what to set when it or its name is missing.
// Whether the Secret exists and parses is status, not admission.
func (v *validator) secretRef(p *field.Path, ref *SecretRef, hint string) {
	if ref == nil {
		v.add(field.Required(p, hint))
		return
	}
	if ref.Name == "" {
		v.add(field.Required(p.Child("name"), hint))
	}
	for _, msg := range nameErrors(ref.Name) {
		v.add(field.Invalid(p.Child("name"), ref.Name, msg))
	}
	if ref.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(ref.Namespace) {
			v.add(field.Invalid(p.Child("namespace"), ref.Namespace, msg))
		}
	}
	if ref.Key != "" {
		for _, msg := range validation.IsConfigMapKey(ref.Key) {
			v.add(field.Invalid(p.Child("key"), ref.Key, msg))
		}
	}
}

// backendRef checks a reference to a Backend: group core.apoxy.dev, kind Backend, a name and
// a port. required says whether a missing reference is an error.
func (v *validator) backendRef(p *field.Path, ref *gwapiv1.BackendObjectReference, required bool) {
	if ref == nil {
		if required {
			v.add(field.Required(p, "set {group: core.apoxy.dev, kind: Backend, name: NAME, port: PORT}"))
		}
		return
	}
	switch {
	case ref.Group == nil:
		v.add(field.Required(p.Child("group"), "set group: core.apoxy.dev"))
	case string(*ref.Group) != corev1a2.GroupName:
		v.add(field.NotSupported(p.Child("group"), *ref.Group, []string{corev1a2.GroupName}))
	}
	switch {
	case ref.Kind == nil:
		v.add(field.Required(p.Child("kind"), "set kind: Backend"))
	case string(*ref.Kind) != BackendKind:
		v.add(field.NotSupported(p.Child("kind"), *ref.Kind, []string{BackendKind}))
	}
	if ref.Name == "" {
		v.add(field.Required(p.Child("name"), "name the Backend"))
	}
	for _, msg := range nameErrors(string(ref.Name)) {
		v.add(field.Invalid(p.Child("name"), ref.Name, msg))
	}
	if ref.Namespace != nil {
		for _, msg := range validation.IsDNS1123Label(string(*ref.Namespace)) {
			v.add(field.Invalid(p.Child("namespace"), *ref.Namespace, msg))
		}
	}
	switch {
	case ref.Port == nil:
		v.add(field.Required(p.Child("port"), "set the Backend port to connect to"))
	case *ref.Port < 1 || *ref.Port > 65535:
		v.add(field.Invalid(p.Child("port"), *ref.Port, "must be between 1 and 65535"))
	}
}
