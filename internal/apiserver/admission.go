package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
)

// DefaultNamespace exists in every project and cannot be deleted; objects that omit a namespace
// land in it.
const DefaultNamespace = "default"

var namespacesGR = schema.GroupResource{Resource: "namespaces"}

// namespaceLifecycle is the admission plugin Kubernetes calls NamespaceLifecycle: namespaced
// objects can only be created in a namespace that exists and is not terminating, and the
// default namespace cannot be deleted.
type namespaceLifecycle struct {
	namespaces *genericregistry.Store
}

var _ admission.ValidationInterface = (*namespaceLifecycle)(nil)

func (l *namespaceLifecycle) Handles(op admission.Operation) bool {
	return op == admission.Create || op == admission.Delete
}

func (l *namespaceLifecycle) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() == namespacesGR && a.GetSubresource() == "" {
		if a.GetOperation() == admission.Delete && a.GetName() == DefaultNamespace {
			return apierrors.NewForbidden(namespacesGR, a.GetName(), fmt.Errorf("the %q namespace exists in every project and cannot be deleted", DefaultNamespace))
		}
		return nil
	}
	ns := a.GetNamespace()
	if ns == "" || a.GetOperation() != admission.Create {
		return nil
	}
	obj, err := l.namespaces.Get(genericapirequest.WithNamespace(ctx, ""), ns, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(namespacesGR, ns)
	}
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if n := obj.(*corev1.Namespace); n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}
