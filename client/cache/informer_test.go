package cache_test

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func dial(t *testing.T, addrs ...string) *client.Clientset {
	conn, err := client.Dial(addrs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}

// mirror is what a handler-only consumer builds: it must end equal to the store.
type mirror struct {
	mu   sync.Mutex
	objs map[string]string // key -> resourceVersion
	bad  []string
}

func (m *mirror) handler() cache.Handler[*corev1.ConfigMap] {
	return cache.Handler[*corev1.ConfigMap]{
		OnAdd: func(o *corev1.ConfigMap) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[cache.Key(o)]; ok {
				m.bad = append(m.bad, "add of present "+cache.Key(o))
			}
			m.objs[cache.Key(o)] = o.GetResourceVersion()
		},
		OnUpdate: func(old, o *corev1.ConfigMap) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.objs[cache.Key(o)] != old.GetResourceVersion() {
				m.bad = append(m.bad, "update from a state the handler never saw: "+cache.Key(o))
			}
			m.objs[cache.Key(o)] = o.GetResourceVersion()
		},
		OnDelete: func(o *corev1.ConfigMap) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[cache.Key(o)]; !ok {
				m.bad = append(m.bad, "delete of absent "+cache.Key(o))
			}
			delete(m.objs, cache.Key(o))
		},
	}
}

// converge waits until the informer has seen revision rv, then compares it with a list.
func converge(t *testing.T, ctx context.Context, cs *client.Clientset, inf *cache.Informer[*corev1.ConfigMap], m *mirror) {
	t.Helper()
	want, err := cs.ConfigMaps.List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRV := want.ResourceVersion
	for {
		got := inf.ResourceVersion()
		if len(got) > len(wantRV) || (len(got) == len(wantRV) && got >= wantRV) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("informer stuck at %s, want %s", got, wantRV)
		case <-time.After(20 * time.Millisecond):
		}
	}
	items := inf.Lister().List(labels.Everything())
	wantObjs := map[string]string{}
	for _, o := range want.Items {
		wantObjs[cache.Key(o)] = o.GetResourceVersion()
	}
	if len(items) != len(wantObjs) {
		t.Fatalf("cache holds %d objects, store %d", len(items), len(wantObjs))
	}
	for _, o := range items {
		if wantObjs[cache.Key(o)] != o.GetResourceVersion() {
			t.Fatalf("cache has %s at %s, store at %s", cache.Key(o), o.GetResourceVersion(), wantObjs[cache.Key(o)])
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bad) > 0 {
		t.Fatalf("handlers saw inconsistent changes: %v", m.bad)
	}
	if fmt.Sprint(m.objs) != fmt.Sprint(wantObjs) {
		t.Fatalf("handler mirror differs from the store:\n%v\n%v", m.objs, wantObjs)
	}
}

func TestInformerMirrorsThroughServerFailures(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writer := dial(t, c.Addrs()...)
	inf := cache.NewInformer(dial(t, c.Addrs()...).ConfigMaps, "", client.ListOptions{}, nil)
	m := &mirror{objs: map[string]string{}}
	inf.AddHandler(m.handler())
	ictx, icancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { inf.Run(ictx); close(done) }()
	defer func() { icancel(); <-done }()
	if !cache.WaitForSync(ctx, inf) {
		t.Fatal("never synced")
	}

	rng := rand.New(rand.NewSource(1))
	churn := func(n int) {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("cm-%d", rng.Intn(40))
			cm, err := writer.ConfigMaps.Get(ctx, "default", name)
			switch {
			case client.IsNotFound(err):
				_, err = writer.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": "0"}})
			case err == nil && rng.Intn(3) == 0:
				_, err = writer.ConfigMaps.Delete(ctx, "default", name, client.DeleteOptions{})
			case err == nil:
				cm.Data = map[string]string{"v": fmt.Sprint(i)}
				_, err = writer.ConfigMaps.Update(ctx, cm)
			}
			if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) && !client.IsAlreadyExists(err) {
				t.Fatalf("churn: %v", err)
			}
		}
	}
	churn(100)
	converge(t, ctx, writer, inf, m)
	// Stop each server in turn, the leader among them, while writes go on.
	for i := 0; i < 3; i++ {
		c.Stop(i)
		churn(60)
		c.Restart(i)
		c.WaitReady()
	}
	churn(40)
	converge(t, ctx, writer, inf, m)
}

func TestTooOldRelistDeliversDeletes(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{HistorySize: 50})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// The member the informer talks to, and that goes down, is a follower: stopping the
	// leader would cut the writer's forwarded writes short (outcome unknown).
	down := (c.Leader() + 1) % 3
	writer := dial(t, c.Addr((down+1)%3), c.Addr((down+2)%3))
	for i := 0; i < 10; i++ {
		if _, err := writer.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("keep-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The informer talks only to that member.
	inf := cache.NewInformer(dial(t, c.Addr(down)).ConfigMaps, "", client.ListOptions{}, nil)
	m := &mirror{objs: map[string]string{}}
	inf.AddHandler(m.handler())
	ictx, icancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { inf.Run(ictx); close(done) }()
	defer func() { icancel(); <-done }()
	if !cache.WaitForSync(ctx, inf) {
		t.Fatal("never synced")
	}
	// While its server is down, half the objects go and far more changes happen than any
	// node's history holds: its watch position is too old when it comes back.
	c.Stop(down)
	for i := 0; i < 5; i++ {
		if _, err := writer.ConfigMaps.Delete(ctx, "default", fmt.Sprintf("keep-%d", i), client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 120; i++ {
		if _, err := writer.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("new-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	relists := inf.Relists()
	c.Restart(down)
	converge(t, ctx, writer, inf, m)
	if inf.Relists() <= relists {
		t.Fatalf("the informer caught up without listing again (%d lists)", inf.Relists())
	}
}

// SetTransform: what the informer caches and hands to handlers is the transform's
// result, for listed and watched objects alike.
func TestInformerTransform(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := dial(t, c.Addrs()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mk := func(name string) {
		if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Data: map[string]string{"big": "value", "keep": "yes"}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("listed")
	inf := cache.NewInformer(cs.ConfigMaps, "default", client.ListOptions{}, nil)
	inf.SetTransform(func(cm *corev1.ConfigMap) *corev1.ConfigMap {
		delete(cm.Data, "big")
		return cm
	})
	var mu sync.Mutex
	var handed []*corev1.ConfigMap
	inf.AddHandler(cache.Handler[*corev1.ConfigMap]{OnAdd: func(o *corev1.ConfigMap) {
		mu.Lock()
		handed = append(handed, o)
		mu.Unlock()
	}})
	done := make(chan struct{})
	go func() { defer close(done); inf.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !cache.WaitForSync(ctx, inf) {
		t.Fatal("never synced")
	}
	mk("watched")
	waitfor.Condition(t, 20*time.Second, "both configmaps cached", func() (bool, string) {
		return inf.Lister().Len() == 2, fmt.Sprintf("%d cached", inf.Lister().Len())
	})
	for _, name := range []string{"listed", "watched"} {
		cm, _ := inf.Lister().Get("default", name)
		if _, ok := cm.Data["big"]; ok || cm.Data["keep"] != "yes" {
			t.Errorf("%s cached as %v", name, cm.Data)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range handed {
		if _, ok := o.Data["big"]; ok {
			t.Errorf("handler got %s untransformed", o.Name)
		}
	}
}
