package kubelet

import (
	"context"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
)

// objectCache reads the ConfigMaps and Secrets pods refer to, each by a Get that is
// reused for ttl (Kubernetes' kubelet "Cache" strategy): a pod's syncs read each object
// once per ttl, and a change reaches the pod's env (at its next start) and volumes
// within ttl plus the sync period. A node may read only the objects of its own pods
// (node authorization), so there is no list and watch of them all.
type objectCache struct {
	cs  *client.Clientset
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

type cacheKey struct{ kind, namespace, name string }

type cacheEntry struct {
	obj     any
	err     error
	fetched time.Time
}

func newObjectCache(cs *client.Clientset, ttl time.Duration, now func() time.Time) *objectCache {
	return &objectCache{cs: cs, ttl: ttl, now: now, entries: map[cacheKey]*cacheEntry{}}
}

func (c *objectCache) get(ctx context.Context, key cacheKey, fetch func() (any, error)) (any, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && c.now().Sub(e.fetched) < c.ttl {
		c.mu.Unlock()
		return e.obj, e.err
	}
	c.mu.Unlock()
	obj, err := fetch()
	if err != nil && !client.IsNotFound(err) {
		return nil, err // not cached: a failure to read is not an answer
	}
	c.mu.Lock()
	c.entries[key] = &cacheEntry{obj: obj, err: err, fetched: c.now()}
	c.mu.Unlock()
	return obj, err
}

func (c *objectCache) configMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	obj, err := c.get(ctx, cacheKey{"ConfigMap", ns, name}, func() (any, error) { return c.cs.ConfigMaps.Get(ctx, ns, name) })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ConfigMap), nil
}

func (c *objectCache) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	obj, err := c.get(ctx, cacheKey{"Secret", ns, name}, func() (any, error) { return c.cs.Secrets.Get(ctx, ns, name) })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

// clusterTrustBundles lists the cluster's ClusterTrustBundles, which every node may
// read, once per ttl for every pod that projects some.
func (c *objectCache) clusterTrustBundles(ctx context.Context) ([]*certificatesv1.ClusterTrustBundle, error) {
	obj, err := c.get(ctx, cacheKey{"ClusterTrustBundle", "", ""}, func() (any, error) {
		l, err := c.cs.ClusterTrustBundles.List(ctx, "", client.ListOptions{})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	})
	if err != nil {
		return nil, err
	}
	return obj.([]*certificatesv1.ClusterTrustBundle), nil
}

// forget drops entries older than ttl, so that objects no pod reads any more leave.
func (c *objectCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.entries {
		if now.Sub(e.fetched) >= c.ttl {
			delete(c.entries, k)
		}
	}
}

func isNotFound(err error) bool { return client.IsNotFound(err) }
