package apiserver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdkubernetes "go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	cacherstorage "k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/client-go/tools/cache"
)

// sharedClient is one etcd3 client (to the embedded kine) used by every resource of every
// project. The stock storage factory dials a client per resource; with ~16 resources per
// project that was ~30 goroutines and a gRPC connection each, most of a project's idle cost.
type sharedClient struct {
	client *etcdkubernetes.Client
}

func newSharedClient(endpoint string) (*sharedClient, error) {
	c, err := etcdkubernetes.New(clientv3.Config{
		Endpoints:            []string{endpoint},
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		// Errors reach callers; the client's own retry chatter is noise in our logs.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("apiserver: etcd client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Get(ctx, "/apoxy-ping", etcdkubernetes.GetOptions{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("apiserver: datastore not reachable: %w", err)
	}
	return &sharedClient{client: c}, nil
}

func (s *sharedClient) Close() error { return s.client.Close() }

// watchCache puts the apiserver's watch cache (cacher) in front of each resource's store. It
// is off: a project holds few objects, which kine lists from SQLite quickly, while the cacher
// costs every resource of every project about nine goroutines (its reflector, dispatcher,
// progress requester, consistency checker, compactor, and a watch kept open on kine) and a
// copy of every object: 180 of an idle project's 527 goroutines with 18 resources. Reads and
// watches go to the store, as kube-apiserver's --watch-cache=false does.
// APOXY_WATCH_CACHE=1 turns it back on (to compare).
var watchCache = os.Getenv("APOXY_WATCH_CACHE") == "1"

// decorator returns registry storage over the shared client with a watch cache in front, the
// same layering StorageWithCacher builds over a private client.
func (s *sharedClient) decorator() generic.StorageDecorator {
	return func(c *storagebackend.ConfigForResource, resourcePrefix string, keyFunc func(runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, getAttrs storage.AttrFunc, triggers storage.IndexerFuncs, indexers *cache.Indexers,
	) (storage.Interface, factory.DestroyFunc, error) {
		versioner := storage.APIObjectVersioner{}
		store, err := etcd3.New(s.client, nil, c.Codec, newFunc, newListFunc, c.Prefix, resourcePrefix, c.GroupResource,
			identity.NewEncryptCheckTransformer(), c.LeaseManagerConfig, etcd3.NewDefaultDecoder(c.Codec, versioner), versioner)
		if err != nil {
			return nil, nil, err
		}
		if !watchCache {
			var once sync.Once
			return store, func() { once.Do(func() { store.Close() }) }, nil
		}
		cacher, err := cacherstorage.NewCacherFromConfig(cacherstorage.Config{
			Storage:             store,
			Versioner:           versioner,
			GroupResource:       c.GroupResource,
			EventsHistoryWindow: c.EventsHistoryWindow,
			ResourcePrefix:      resourcePrefix,
			KeyFunc:             keyFunc,
			NewFunc:             newFunc,
			NewListFunc:         newListFunc,
			GetAttrsFunc:        getAttrs,
			IndexerFuncs:        triggers,
			Indexers:            indexers,
			Codec:               c.Codec,
		})
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		delegator := cacherstorage.NewCacheDelegator(cacher, store)
		var once sync.Once
		return delegator, func() {
			// Called once per store and again per subresource sharing it.
			once.Do(func() {
				delegator.Stop()
				cacher.Stop()
				store.Close()
			})
		}, nil
	}
}
