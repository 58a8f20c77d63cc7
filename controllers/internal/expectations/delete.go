package expectations

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
)

// DeletePods deletes pods side by side for the owner whose key's expectations already
// hold their deletions, with delete, and records an Event on owner for each.
//
// A pod whose delete fails counts as a deletion seen, as in Kubernetes' controllers: a
// failed delete has nothing to see, and a pod already gone (NotFound) may have gone
// before its deletion was expected, its event observed against nothing: waiting for it
// would hold the owner's syncs until the expectations expire (minutes).
func (e *Expectations) DeletePods(ctx context.Context, key string, owner kinds.Object, pods []*corev1.Pod,
	del func(context.Context, *corev1.Pod) error, rec *record.Recorder) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			err := del(ctx, p)
			if err != nil {
				e.DeletionObserved(key, cache.Key(p))
			}
			if err != nil && !client.IsNotFound(err) {
				rec.Eventf(owner, record.Warning, "FailedDelete", "Error deleting: %v", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("delete pod %s: %w", cache.Key(p), err))
				mu.Unlock()
				return
			}
			rec.Eventf(owner, record.Normal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DeleteWith is the delete of DeletePods through the pods' client, with the pod's uid
// as precondition.
func DeleteWith(pods *client.Client[*corev1.Pod]) func(context.Context, *corev1.Pod) error {
	return func(ctx context.Context, p *corev1.Pod) error {
		_, err := pods.Delete(ctx, p.Namespace, p.Name, client.DeleteOptions{UID: string(p.UID)})
		return err
	}
}
