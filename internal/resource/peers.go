package resource

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PeersFunc lists the stored objects of a kind in the project an admission runs in (every
// namespace).
type PeersFunc func(ctx context.Context, gk schema.GroupKind) ([]runtime.Object, error)

type peersKey struct{}

// WithPeers gives a Serving.Validate function running under ctx access to the other objects of
// its project, for rules that span objects (a DomainRecord's CNAME beside another record's
// data at the same name). The API server sets it.
func WithPeers(ctx context.Context, fn PeersFunc) context.Context {
	return context.WithValue(ctx, peersKey{}, fn)
}

// Peers lists the project's stored objects of a kind; with no lister in ctx (validation run
// outside the API server), none.
func Peers(ctx context.Context, gk schema.GroupKind) ([]runtime.Object, error) {
	fn, _ := ctx.Value(peersKey{}).(PeersFunc)
	if fn == nil {
		return nil, nil
	}
	return fn(ctx, gk)
}
