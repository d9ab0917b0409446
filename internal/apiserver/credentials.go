package apiserver

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
)

// credentialsREST serves GET projects/<name>/credentials: the project's current key, derived
// from the server secret (nothing is stored). Only the admin reaches the root server.
type credentialsREST struct {
	projects *genericregistry.Store
	keys     *Keyring
}

var (
	_ rest.Getter               = (*credentialsREST)(nil)
	_ rest.SingularNameProvider = (*credentialsREST)(nil)
)

func (c *credentialsREST) New() runtime.Object     { return &platformv1a1.ProjectCredentials{} }
func (c *credentialsREST) Destroy()                {}
func (c *credentialsREST) GetSingularName() string { return "credentials" }
func (c *credentialsREST) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	obj, err := c.projects.Get(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	p := obj.(*platformv1a1.Project)
	return &platformv1a1.ProjectCredentials{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name},
		Token:      c.keys.ProjectToken(p.Name, string(p.UID), p.Spec.KeyRevision),
		APIPath:    projectPath(p.Name),
	}, nil
}
