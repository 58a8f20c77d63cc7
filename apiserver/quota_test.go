package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/quota"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func resources(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// syncQuota creates a quota and writes the status the quota controller would: hard from
// spec, used as given.
func syncQuota(t *testing.T, ctx context.Context, cs *client.Clientset, ns, name string, hard, used corev1.ResourceList) *corev1.ResourceQuota {
	t.Helper()
	q, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}})
	if err != nil {
		t.Fatal(err)
	}
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: used}
	if q, err = cs.ResourceQuotas.UpdateStatus(ctx, q); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestLimitRanger: a new pod gets its namespace's LimitRange defaults (and the
// annotation that says so), and a pod outside its bounds is refused in Kubernetes' words.
func TestLimitRanger(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := clientsetOf(t, c)
	ctx := testCtx(t)
	lr, err := cs.LimitRanges.Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Max: resources("cpu", "2"), DefaultRequest: resources("cpu", "250m", "memory", "64Mi"), Default: resources("memory", "128Mi")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := lr.Spec.Limits[0].Default; !equality.Semantic.DeepEqual(got, resources("cpu", "2", "memory", "128Mi")) {
		t.Errorf("stored default = %v, want the max for cpu", got)
	}

	p, err := cs.Pods.Create(ctx, pod("defaulted"))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Spec.Containers[0].Resources
	if !equality.Semantic.DeepEqual(r.Requests, resources("cpu", "250m", "memory", "64Mi")) ||
		!equality.Semantic.DeepEqual(r.Limits, resources("cpu", "2", "memory", "128Mi")) {
		t.Errorf("resources = %+v, want the LimitRange's defaults", r)
	}
	if got := p.Annotations[quota.LimitRangerAnnotation]; got != "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c" {
		t.Errorf("annotation = %q", got)
	}

	big := pod("x")
	big.Spec.Containers[0].Resources.Limits = resources("cpu", "4")
	_, err = cs.Pods.Create(ctx, big)
	if !client.IsForbidden(err) || status.Convert(err).Message() != `pods "x" is forbidden: maximum cpu usage per Container is 2, but limit is 4` {
		t.Fatalf("create over the max: %v", err)
	}
}

// TestQuotaAdmission: a pod is charged to its namespace's quota, refused past the hard
// limit and without the requests the quota tracks, in Kubernetes' words; other kinds are
// counted too.
func TestQuotaAdmission(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	syncQuota(t, ctx, cs, "default", "q", resources("pods", "2", "requests.cpu", "1", "count/configmaps", "1"),
		resources("pods", "0", "requests.cpu", "0", "count/configmaps", "0"))

	refused := func(what string, err error, want string) {
		t.Helper()
		if !client.IsForbidden(err) || status.Convert(err).Message() != want {
			t.Fatalf("%s: got %v, want %q", what, err, want)
		}
	}
	_, err = cs.Pods.Create(ctx, pod("nothing"))
	refused("a pod without requests", err, `pods "nothing" is forbidden: failed quota: q: must specify requests.cpu for: c`)
	for i := range 2 {
		p := pod(fmt.Sprint("p", i))
		p.Spec.Containers[0].Resources.Requests = resources("cpu", "400m")
		if _, err := cs.Pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p := pod("p2")
	p.Spec.Containers[0].Resources.Requests = resources("cpu", "100m")
	_, err = cs.Pods.Create(ctx, p)
	refused("a third pod", err, `pods "p2" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`)

	q, err := cs.ResourceQuotas.Get(ctx, "default", "q")
	if err != nil {
		t.Fatal(err)
	}
	if want := resources("pods", "2", "requests.cpu", "800m", "count/configmaps", "0"); !equality.Semantic.DeepEqual(q.Status.Used, want) {
		t.Errorf("used = %v, want %v", q.Status.Used, want)
	}
	if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}})
	refused("a second configmap", err, `configmaps "b" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1`)
	// Another namespace is not limited.
	if err := conn.EnsureNamespace(ctx, "free"); err != nil {
		t.Fatal(err)
	}
	free := pod("p9")
	free.Namespace = "free"
	if _, err := cs.Pods.Create(ctx, free); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaConcurrentCreates: creates racing through all three members, several at once
// on each, never together pass the quota's hard limit: each charge is written in its
// pod's transaction, on the condition that the quota did not change since it was read.
func TestQuotaConcurrentCreates(t *testing.T) {
	const hard, perMember, members = 10, 12, 3
	c := apicluster.Start(t, members, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	if err := conn.EnsureNamespace(ctx, "race"); err != nil {
		t.Fatal(err)
	}
	q := syncQuota(t, ctx, cs, "race", "q", resources("pods", fmt.Sprint(hard)), resources("pods", "0"))

	// One plain connection per member: each create is admitted by the member it reaches.
	rcs := make([]apiv1.ResourcesClient, members)
	for i := range members {
		cc, err := grpc.NewClient("passthrough:///"+c.Addr(i), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		rcs[i] = apiv1.NewResourcesClient(cc)
		// The member knows the quota as synced before the race starts (admission reads
		// the member's own state first, as Kubernetes' reads its informer's).
		waitfor.ConditionErr(t, 30*time.Second, fmt.Sprintf("member %d to see the quota", i), func() (bool, error) {
			o, err := rcs[i].Get(ctx, &apiv1.GetRequest{Kind: "ResourceQuota", Namespace: "race", Name: "q", Stale: true})
			if client.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			return unwrap[*corev1.ResourceQuota](t, o).ResourceVersion == q.ResourceVersion, nil
		})
	}
	var mu sync.Mutex
	created, refusals := 0, 0
	var wg sync.WaitGroup
	for m := range members {
		for i := range perMember {
			wg.Go(func() {
				p := pod(fmt.Sprintf("p-%d-%d", m, i))
				p.Namespace = "race"
				_, err := rcs[m].Create(ctx, &apiv1.CreateRequest{Object: wrap(t, p)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case client.IsForbidden(err) && strings.Contains(status.Convert(err).Message(), "exceeded quota: q, requested: pods=1, used: pods=10, limited: pods=10"):
					refusals++
				default:
					t.Errorf("create %s on member %d: %v", p.Name, m, err)
				}
			})
		}
	}
	wg.Wait()
	if created != hard || refusals != members*perMember-hard {
		t.Errorf("%d created and %d refused, want %d and %d", created, refusals, hard, members*perMember-hard)
	}
	pods, err := cs.Pods.List(ctx, "race", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != hard {
		t.Errorf("%d pods stored, want %d", len(pods.Items), hard)
	}
	q, err = cs.ResourceQuotas.Get(ctx, "race", "q")
	if err != nil {
		t.Fatal(err)
	}
	if used := q.Status.Used[quota.Pods]; used.Value() != hard {
		t.Errorf("used pods = %s, want %d", used.String(), hard)
	}
}

// claim is a PersistentVolumeClaim in default of class asking for size.
func claim(name, class, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class, Resources: corev1.VolumeResourceRequirements{Requests: resources("storage", size)}}}
}

// TestClaimLimitsAndQuota: a PersistentVolumeClaim is checked against its namespace's
// LimitRange (min and max storage per claim) and charged to its quotas (the claims'
// count, their storage in all and per storage class), refused in Kubernetes' words.
func TestClaimLimitsAndQuota(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := clientsetOf(t, c)
	ctx := testCtx(t)
	if _, err := cs.LimitRanges.Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: "default"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim,
			Min: resources("storage", "1Gi"), Max: resources("storage", "10Gi")}}}}); err != nil {
		t.Fatal(err)
	}
	const fast = "fast.storageclass.storage.k8s.io/requests.storage"
	syncQuota(t, ctx, cs, "default", "q", resources("persistentvolumeclaims", "3", "requests.storage", "12Gi", fast, "5Gi"),
		resources("persistentvolumeclaims", "0", "requests.storage", "0", fast, "0"))

	refused := func(what string, err error, want string) {
		t.Helper()
		if !client.IsForbidden(err) || status.Convert(err).Message() != want {
			t.Fatalf("%s: got %v, want %q", what, err, want)
		}
	}
	_, err := cs.PersistentVolumeClaims.Create(ctx, claim("huge", "slow", "20Gi"))
	refused("a claim over the max", err, `persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi`)
	_, err = cs.PersistentVolumeClaims.Create(ctx, claim("tiny", "slow", "500Mi"))
	refused("a claim under the min", err, `persistentvolumeclaims "tiny" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi`)

	if _, err := cs.PersistentVolumeClaims.Create(ctx, claim("a", "fast", "4Gi")); err != nil {
		t.Fatal(err)
	}
	_, err = cs.PersistentVolumeClaims.Create(ctx, claim("b", "fast", "2Gi"))
	refused("a claim over its class's storage", err, `persistentvolumeclaims "b" is forbidden: exceeded quota: q, requested: `+fast+`=2Gi, used: `+fast+`=4Gi, limited: `+fast+`=5Gi`)
	if _, err := cs.PersistentVolumeClaims.Create(ctx, claim("c", "slow", "8Gi")); err != nil {
		t.Fatal(err)
	}
	_, err = cs.PersistentVolumeClaims.Create(ctx, claim("d", "slow", "1Gi"))
	refused("a claim over the namespace's storage", err, `persistentvolumeclaims "d" is forbidden: exceeded quota: q, requested: requests.storage=1Gi, used: requests.storage=12Gi, limited: requests.storage=12Gi`)

	q, err := cs.ResourceQuotas.Get(ctx, "default", "q")
	if err != nil {
		t.Fatal(err)
	}
	if want := resources("persistentvolumeclaims", "2", "requests.storage", "12Gi", fast, "4Gi"); !equality.Semantic.DeepEqual(q.Status.Used, want) {
		t.Errorf("used = %v, want %v", q.Status.Used, want)
	}
}

// TestNewPodDefaults: a new pod is defaulted once, before its admission (as Kubernetes
// defaults on decode), and what the admission adds is defaulted after it: the pod's
// own limits are requested before its LimitRange fills the rest, and a RuntimeClass's
// toleration without an operator gets Equal, as the pod's own do.
func TestNewPodDefaults(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := clientsetOf(t, c)
	ctx := testCtx(t)
	if _, err := cs.LimitRanges.Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			DefaultRequest: resources("cpu", "250m"), Default: resources("cpu", "1", "memory", "128Mi")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RuntimeClasses.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata",
		Scheduling: &nodev1.Scheduling{Tolerations: []corev1.Toleration{{Key: "sandbox", Value: "kata", Effect: corev1.TaintEffectNoSchedule}}}}); err != nil {
		t.Fatal(err)
	}
	in := pod("p")
	in.Spec.RuntimeClassName = new("kata")
	in.Spec.Containers[0].Resources.Limits = resources("cpu", "500m")
	in.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
	p, err := cs.Pods.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what           string
		got            corev1.ResourceRequirements
		requests, lims corev1.ResourceList
	}{
		// cpu requested as limited before the LimitRange's defaultRequest; memory's
		// request is the LimitRange's defaulted defaultRequest (its default).
		{"container c", p.Spec.Containers[0].Resources, resources("cpu", "500m", "memory", "128Mi"), resources("cpu", "500m", "memory", "128Mi")},
		{"init container", p.Spec.InitContainers[0].Resources, resources("cpu", "250m", "memory", "128Mi"), resources("cpu", "1", "memory", "128Mi")},
	} {
		if !equality.Semantic.DeepEqual(tc.got.Requests, tc.requests) || !equality.Semantic.DeepEqual(tc.got.Limits, tc.lims) {
			t.Errorf("%s: resources %+v, want requests %v limits %v", tc.what, tc.got, tc.requests, tc.lims)
		}
	}
	if got, want := p.Annotations[quota.LimitRangerAnnotation], "LimitRanger plugin set: memory request for container c; memory limit for container c; "+
		"cpu, memory request for init container init; cpu, memory limit for init container init"; got != want {
		t.Errorf("annotation %q, want %q", got, want)
	}
	want := []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpEqual, Value: "kata", Effect: corev1.TaintEffectNoSchedule}}
	if !equality.Semantic.DeepEqual(p.Spec.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v", p.Spec.Tolerations, want)
	}
	if p.Status.QOSClass != corev1.PodQOSBurstable || p.Spec.TerminationGracePeriodSeconds == nil || p.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("qos %q, terminationGracePeriodSeconds %v, imagePullPolicy %q: want Burstable and the pod's defaults",
			p.Status.QOSClass, p.Spec.TerminationGracePeriodSeconds, p.Spec.Containers[0].ImagePullPolicy)
	}
}

// clientsetOf is a clientset of cluster c's members, closed when the test ends.
func clientsetOf(t *testing.T, c *apicluster.Cluster) *client.Clientset {
	t.Helper()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}
