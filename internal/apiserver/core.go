package apiserver

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"apoxy.dev/apoxy/internal/resource"
)

// coreRules are the rules we serve the core kinds with (Kubernetes' own), keyed by kind. Every
// registered kind of the core group needs one (ProjectResources refuses to build otherwise).
var coreRules = map[string]Resource{
	"Namespace": {
		Prepare: prepareNamespace,
		Columns: []resource.Column{{Name: "Status", Type: "string", JSONPath: ".status.phase", Description: "Lifecycle phase"}},
	},
	"Secret": {
		Prepare:  prepareSecret,
		Validate: validateSecret,
		Columns:  []resource.Column{{Name: "Type", Type: "string", JSONPath: ".type", Description: "Secret type"}},
	},
	"ConfigMap": {Validate: validateConfigMap},
}

// maxSecretSize is Kubernetes' limit on the total size of a Secret's or ConfigMap's data.
const maxSecretSize = 1 << 20

// prepareNamespace sets the phase and, as Kubernetes does, the kubernetes.io/metadata.name
// label (allowedRoutes namespace selectors rely on it).
func prepareNamespace(obj, _ runtime.Object) {
	ns := obj.(*corev1.Namespace)
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// prepareSecret folds stringData into data and defaults the type, as Kubernetes does on write.
func prepareSecret(obj, _ runtime.Object) {
	s := obj.(*corev1.Secret)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
}

// requiredSecretKeys are the data keys each well-known Secret type must carry.
var requiredSecretKeys = map[corev1.SecretType][]string{
	corev1.SecretTypeTLS:              {corev1.TLSCertKey, corev1.TLSPrivateKeyKey},
	corev1.SecretTypeSSHAuth:          {corev1.SSHAuthPrivateKey},
	corev1.SecretTypeDockerConfigJson: {corev1.DockerConfigJsonKey},
	corev1.SecretTypeDockercfg:        {corev1.DockerConfigKey},
}

func validateSecret(_ context.Context, obj, old runtime.Object) field.ErrorList {
	s := obj.(*corev1.Secret)
	var errs field.ErrorList
	data := field.NewPath("data")
	size := 0
	for k, v := range s.Data {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(data.Key(k), k, msg))
		}
		size += len(v)
	}
	if size > maxSecretSize {
		errs = append(errs, field.TooLong(data, "", maxSecretSize))
	}
	for _, key := range requiredSecretKeys[s.Type] {
		if _, ok := s.Data[key]; !ok {
			errs = append(errs, field.Required(data.Key(key), "required for Secret type "+string(s.Type)))
		}
	}
	switch s.Type {
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, p := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			errs = append(errs, field.Required(data, "basic-auth Secrets need a username or password key"))
		}
	case corev1.SecretTypeDockerConfigJson:
		if v, ok := s.Data[corev1.DockerConfigJsonKey]; ok && !json.Valid(v) {
			errs = append(errs, field.Invalid(data.Key(corev1.DockerConfigJsonKey), "<secret contents redacted>", "must be valid JSON"))
		}
	}
	if old != nil {
		o := old.(*corev1.Secret)
		if o.Type != s.Type {
			errs = append(errs, field.Invalid(field.NewPath("type"), s.Type, "field is immutable"))
		}
		if o.Immutable != nil && *o.Immutable {
			if s.Immutable == nil || !*s.Immutable {
				errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
			}
			if !secretDataEqual(o.Data, s.Data) {
				errs = append(errs, field.Forbidden(data, "field is immutable when `immutable` is set"))
			}
		}
	}
	return errs
}

func secretDataEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// validateConfigMap applies Kubernetes' ConfigMap rules: valid keys, no key in both data and
// binaryData, 1 MiB in total, and nothing changes once immutable is set.
func validateConfigMap(_ context.Context, obj, old runtime.Object) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	var errs field.ErrorList
	data, binary := field.NewPath("data"), field.NewPath("binaryData")
	size := 0
	for k, v := range cm.Data {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(data.Key(k), k, msg))
		}
		size += len(v)
	}
	for k, v := range cm.BinaryData {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(binary.Key(k), k, msg))
		}
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(binary.Key(k), k, "duplicate of a key in data: a key may appear in data or binaryData, not both"))
		}
		size += len(v)
	}
	if size > maxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxSecretSize))
	}
	if o, ok := old.(*corev1.ConfigMap); ok && o.Immutable != nil && *o.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		if !maps.Equal(o.Data, cm.Data) || !secretDataEqual(o.BinaryData, cm.BinaryData) {
			errs = append(errs, field.Forbidden(data, "field is immutable when `immutable` is set"))
		}
	}
	return errs
}
