package kubelet_test

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/test/waitfor"
)

// testRuntimeHandler: a pod of a RuntimeClass whose handler the node has (runc) runs,
// its containers created with that handler; one whose handler it has not stays Pending
// with FailedCreatePodSandBox naming the handler, nothing of it run, as Kubernetes'
// kubelet leaves a pod whose sandbox it cannot create.
func testRuntimeHandler(e *env) {
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	runtimeHandlerPods(e, rt, kubelet.DefaultRuntimeHandler)
	for _, c := range e.waitContainers(rt, "the known pod's container", func(l []kubelet.Container) bool {
		return slices.ContainsFunc(l, func(c kubelet.Container) bool { return c.PodName == "known" })
	}) {
		if cfg, _ := rt.Config(c.ID); c.PodName == "known" && cfg.RuntimeHandler != kubelet.DefaultRuntimeHandler {
			e.t.Errorf("container of %s created with handler %q, want %q", c.PodName, cfg.RuntimeHandler, kubelet.DefaultRuntimeHandler)
		}
	}
}

// runtimeHandlerPods runs a pod of a class of handler known, which must run, and one of
// a handler rt has not, which must wait, Pending.
func runtimeHandlerPods(e *env, rt kubelet.Runtime, known string) {
	t := e.t
	for _, rc := range []*nodev1.RuntimeClass{
		{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-runc"}, Handler: known},
		{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-unknown"}, Handler: e.ns + "-handler"},
	} {
		if _, err := e.cs.RuntimeClasses.Create(e.ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name, class string) {
		_, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			Spec: corev1.PodSpec{NodeName: e.node, HostNetwork: true, RuntimeClassName: new(class),
				Containers: []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sleep", "3600"}}}}})
		if err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	create("known", e.ns+"-runc")
	create("unknown", e.ns+"-unknown")

	e.waitPod("known", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	waitfor.Condition(t, 30*time.Second, "FailedCreatePodSandBox naming the handler", func() (bool, string) {
		msgs := e.eventMessages("unknown", kubelet.ReasonFailedCreatePodSandBox)
		return slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, `no runtime for "`+e.ns+`-handler" is configured`) }),
			strings.Join(msgs, "; ")
	})
	p, err := e.cs.Pods.Get(e.ctx, e.ns, "unknown")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod of an unknown handler is %s, want Pending", p.Status.Phase)
	}
	l, err := rt.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l {
		if c.PodName == "unknown" {
			t.Errorf("a container of the pod of an unknown handler was created: %+v", c)
		}
	}
}
