package quota

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func ctr(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func newPod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "team"}, Spec: corev1.PodSpec{Containers: containers}}
}

func synced(name string, hard, used corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}, Status: corev1.ResourceQuotaStatus{Hard: hard, Used: used}}
}

func selectPriority(q *corev1.ResourceQuota, op corev1.ScopeSelectorOperator, values ...string) *corev1.ResourceQuota {
	q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
		{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: op, Values: values}}}
	return q
}

func withClass(pod *corev1.Pod, class string) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.PriorityClassName = class
	return p
}

func scoped(q *corev1.ResourceQuota, scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
	q.Spec.Scopes = scopes
	return q
}

func TestCharge(t *testing.T) {
	now := time.Now()
	small := newPod(ctr("c", rl("cpu", "500m", "memory", "64Mi"), rl("cpu", "1", "memory", "128Mi")))
	for _, tc := range []struct {
		name    string
		quotas  []*corev1.ResourceQuota
		obj     kinds.Object
		want    string                         // the refusal, or ""
		charged map[string]corev1.ResourceList // each charged quota's new used
	}{
		{"no quota", nil, small, "", nil},
		{"room", []*corev1.ResourceQuota{synced("q", rl("pods", "3", "requests.cpu", "2"), rl("pods", "1", "requests.cpu", "1"))},
			small, "", map[string]corev1.ResourceList{"q": rl("pods", "2", "requests.cpu", "1500m")}},
		{"every name a pod uses", []*corev1.ResourceQuota{synced("q",
			rl("pods", "9", "count/pods", "9", "cpu", "9", "memory", "9Gi", "requests.memory", "9Gi", "limits.cpu", "9", "limits.memory", "9Gi"),
			rl("pods", "0", "count/pods", "0", "cpu", "0", "memory", "0", "requests.memory", "0", "limits.cpu", "0", "limits.memory", "0"))},
			small, "", map[string]corev1.ResourceList{"q": rl("pods", "1", "count/pods", "1", "cpu", "500m", "memory", "64Mi",
				"requests.memory", "64Mi", "limits.cpu", "1", "limits.memory", "128Mi")}},
		{"pods exceeded", []*corev1.ResourceQuota{synced("q", rl("pods", "3"), rl("pods", "3"))}, small,
			"exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3", nil},
		{"two exceeded", []*corev1.ResourceQuota{synced("q", rl("pods", "3", "requests.cpu", "1", "limits.cpu", "10"),
			rl("pods", "3", "requests.cpu", "800m", "limits.cpu", "1"))}, small,
			"exceeded quota: q, requested: pods=1,requests.cpu=500m, used: pods=3,requests.cpu=800m, limited: pods=3,requests.cpu=1", nil},
		{"second quota refuses", []*corev1.ResourceQuota{synced("b", rl("pods", "1"), rl("pods", "1")), synced("a", rl("pods", "5"), rl("pods", "0"))},
			small, "exceeded quota: b, requested: pods=1, used: pods=1, limited: pods=1", nil},
		{"requests required", []*corev1.ResourceQuota{synced("q", rl("requests.cpu", "2", "limits.memory", "1Gi"), rl("requests.cpu", "0", "limits.memory", "0"))},
			newPod(ctr("a", nil, nil), ctr("b", rl("cpu", "1"), nil)),
			"failed quota: q: must specify limits.memory for: a,b; requests.cpu for: a", nil},
		{"cpu means requests", []*corev1.ResourceQuota{synced("q", rl("cpu", "2"), rl("cpu", "0"))}, newPod(ctr("a", nil, rl("memory", "1Gi"))),
			"failed quota: q: must specify cpu for: a", nil},
		{"not synced yet", []*corev1.ResourceQuota{{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "0")}}},
			small, "", nil},
		{"usage unknown", []*corev1.ResourceQuota{synced("q", rl("pods", "3"), nil)}, small,
			"status unknown for quota: q, resources: pods", nil},
		{"finished pod uses nothing", []*corev1.ResourceQuota{synced("q", rl("pods", "0"), rl("pods", "0"))},
			func() *corev1.Pod { p := small.DeepCopy(); p.Status.Phase = corev1.PodSucceeded; return p }(), "", nil},
		{"other kinds counted", []*corev1.ResourceQuota{synced("q", rl("count/configmaps", "2", "configmaps", "2", "pods", "1"),
			rl("count/configmaps", "1", "configmaps", "1", "pods", "1"))},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "team"}}, "",
			map[string]corev1.ResourceList{"q": rl("count/configmaps", "2", "configmaps", "2", "pods", "1")}},
		{"count exceeded", []*corev1.ResourceQuota{synced("q", rl("count/configmaps", "1"), rl("count/configmaps", "1"))},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "team"}},
			"exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1", nil},
		{"scoped quota: best effort pod", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "1"), rl("pods", "1")), corev1.ResourceQuotaScopeBestEffort)},
			newPod(ctr("c", nil, nil)), "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1", nil},
		{"scoped quota: other pods pass", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "1"), rl("pods", "1")), corev1.ResourceQuotaScopeBestEffort)},
			small, "", nil},
		{"scoped quota: not best effort", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "2", "requests.cpu", "1"), rl("pods", "1", "requests.cpu", "0")),
			corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeNotTerminating)},
			small, "", map[string]corev1.ResourceList{"q": rl("pods", "2", "requests.cpu", "500m")}},
		{"scoped quota: terminating", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "0"), rl("pods", "0")), corev1.ResourceQuotaScopeTerminating)},
			func() *corev1.Pod { p := small.DeepCopy(); p.Spec.ActiveDeadlineSeconds = new(int64(60)); return p }(),
			"exceeded quota: q, requested: pods=1, used: pods=0, limited: pods=0", nil},
		{"scoped quota: not a pod", []*corev1.ResourceQuota{scoped(synced("q", rl("count/configmaps", "0"), rl("count/configmaps", "0")), corev1.ResourceQuotaScopeNotTerminating)},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "team"}}, "", nil},
		{"priority class selector: a critical pod", []*corev1.ResourceQuota{selectPriority(synced("q", rl("pods", "1"), rl("pods", "1")), corev1.ScopeSelectorOpIn, "system-node-critical")},
			withClass(small, "system-node-critical"), "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1", nil},
		{"priority class selector: another class", []*corev1.ResourceQuota{selectPriority(synced("q", rl("pods", "1"), rl("pods", "1")), corev1.ScopeSelectorOpIn, "system-node-critical")},
			withClass(small, "high"), "", nil},
		{"priority class selector: NotIn takes pods of no class", []*corev1.ResourceQuota{selectPriority(synced("q", rl("pods", "1"), rl("pods", "1")), corev1.ScopeSelectorOpNotIn, "high")},
			small, "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1", nil},
		{"priority class scope: any class", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "1"), rl("pods", "0")), corev1.ResourceQuotaScopePriorityClass)},
			withClass(small, "high"), "", map[string]corev1.ResourceList{"q": rl("pods", "1")}},
		{"priority class scope: no class", []*corev1.ResourceQuota{scoped(synced("q", rl("pods", "0"), rl("pods", "0")), corev1.ResourceQuotaScopePriorityClass)},
			small, "", nil},
		{"extended resource requests", []*corev1.ResourceQuota{synced("q", rl("requests.example.com/foo", "3"), rl("requests.example.com/foo", "2"))},
			newPod(ctr("c", rl("example.com/foo", "2"), rl("example.com/foo", "2"))),
			"exceeded quota: q, requested: requests.example.com/foo=2, used: requests.example.com/foo=2, limited: requests.example.com/foo=3", nil},
		{"extended resource room", []*corev1.ResourceQuota{synced("q", rl("requests.example.com/foo", "3"), rl("requests.example.com/foo", "1"))},
			newPod(ctr("c", rl("example.com/foo", "2"), rl("example.com/foo", "2"))), "",
			map[string]corev1.ResourceList{"q": rl("requests.example.com/foo", "3")}},
		{"services and their node ports", []*corev1.ResourceQuota{synced("q", rl("services", "10", "services.nodeports", "1", "services.loadbalancers", "1"),
			rl("services", "1", "services.nodeports", "1", "services.loadbalancers", "0"))},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "team"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Ports: []corev1.ServicePort{{Port: 80}}}},
			"exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1", nil},
		{"a ClusterIP service", []*corev1.ResourceQuota{synced("q", rl("services", "10", "services.nodeports", "1"), rl("services", "1", "services.nodeports", "1"))},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, "",
			map[string]corev1.ResourceList{"q": rl("services", "2", "services.nodeports", "1")}},
		{"quota not concerned", []*corev1.ResourceQuota{synced("q", rl("count/configmaps", "0"), rl("count/configmaps", "0"))}, small, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := make([]corev1.ResourceList, len(tc.quotas))
			for i, q := range tc.quotas {
				before[i] = q.Status.Used.DeepCopy()
			}
			out, err := Charge(tc.quotas, tc.obj, now)
			switch {
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("err = %v, want %q", err, tc.want)
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			}
			if len(out) != len(tc.charged) {
				t.Fatalf("charged %d quotas, want %d", len(out), len(tc.charged))
			}
			for _, q := range out {
				if !equality.Semantic.DeepEqual(q.Status.Used, tc.charged[q.Name]) {
					t.Errorf("quota %s used = %v, want %v", q.Name, q.Status.Used, tc.charged[q.Name])
				}
			}
			for i, q := range tc.quotas {
				if !equality.Semantic.DeepEqual(q.Status.Used, before[i]) {
					t.Errorf("Charge changed its input quota %s", q.Name)
				}
			}
		})
	}
}

func TestPodRequestsWithInitContainers(t *testing.T) {
	p := newPod(ctr("a", rl("cpu", "1", "memory", "1Gi"), nil), ctr("b", rl("cpu", "500m"), nil))
	p.Spec.InitContainers = []corev1.Container{ctr("init", rl("cpu", "2", "memory", "100Mi"), nil)}
	if got, want := PodRequests(p), rl("cpu", "2", "memory", "1Gi"); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("PodRequests = %v, want %v", got, want)
	}
}

// A sidecar runs beside the app containers: its requests add to theirs, and to those of
// the init containers after it (Kubernetes' effective request).
func TestPodRequestsWithSidecars(t *testing.T) {
	p := newPod(ctr("a", rl("cpu", "1", "memory", "1Gi"), rl("memory", "1Gi")))
	side := ctr("side", rl("cpu", "500m", "memory", "100Mi"), rl("memory", "200Mi"))
	side.RestartPolicy = new(corev1.ContainerRestartPolicyAlways)
	p.Spec.InitContainers = []corev1.Container{ctr("first", rl("cpu", "1200m"), nil), side, ctr("after", rl("cpu", "1800m"), rl("memory", "2Gi"))}
	if got, want := PodRequests(p), rl("cpu", "2300m", "memory", "1124Mi"); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("PodRequests = %v, want %v", got, want)
	}
	if got, want := PodLimits(p), rl("memory", "2248Mi"); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("PodLimits = %v, want %v", got, want)
	}
	if !Tracked("requests.example.com/foo") || Tracked("limits.example.com/foo") || Tracked("requests.cpu.example") {
		t.Error("Tracked: requests.<extended resource> only")
	}
}

func TestCountsGracePeriod(t *testing.T) {
	now := time.Now()
	p := newPod(ctr("a", nil, nil))
	at := metav1.NewTime(now.Add(-time.Minute))
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &at, new(int64(30))
	if Counts(p, now) {
		t.Error("a pod past its grace period still counts")
	}
	p.DeletionGracePeriodSeconds = new(int64(120))
	if !Counts(p, now) {
		t.Error("a pod inside its grace period does not count")
	}
}

func limitRange(items ...corev1.LimitRangeItem) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "team"}, Spec: corev1.LimitRangeSpec{Limits: items}}
}

func TestDefaultPod(t *testing.T) {
	lr := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer,
		Default: rl("cpu", "1", "memory", "256Mi"), DefaultRequest: rl("cpu", "250m", "memory", "128Mi")})
	p := newPod(ctr("app", rl("cpu", "100m"), nil), ctr("side", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")))
	p.Spec.InitContainers = []corev1.Container{ctr("init", nil, nil)}
	DefaultPod([]*corev1.LimitRange{lr}, p)
	app, init := p.Spec.Containers[0].Resources, p.Spec.InitContainers[0].Resources
	if want := rl("cpu", "100m", "memory", "128Mi"); !equality.Semantic.DeepEqual(app.Requests, want) {
		t.Errorf("app requests = %v, want %v", app.Requests, want)
	}
	if want := rl("cpu", "1", "memory", "256Mi"); !equality.Semantic.DeepEqual(app.Limits, want) {
		t.Errorf("app limits = %v, want %v", app.Limits, want)
	}
	if want := rl("cpu", "250m", "memory", "128Mi"); !equality.Semantic.DeepEqual(init.Requests, want) {
		t.Errorf("init requests = %v, want %v", init.Requests, want)
	}
	if side := p.Spec.Containers[1].Resources; !equality.Semantic.DeepEqual(side.Limits, rl("cpu", "1", "memory", "1Gi")) {
		t.Errorf("side's own limits were changed: %v", side.Limits)
	}
	want := "LimitRanger plugin set: memory request for container app; cpu, memory limit for container app; " +
		"cpu, memory request for init container init; cpu, memory limit for init container init"
	if got := p.Annotations[LimitRangerAnnotation]; got != want {
		t.Errorf("annotation = %q, want %q", got, want)
	}
}

func TestCheckPod(t *testing.T) {
	container := func(item corev1.LimitRangeItem) []*corev1.LimitRange {
		item.Type = corev1.LimitTypeContainer
		return []*corev1.LimitRange{limitRange(item)}
	}
	for _, tc := range []struct {
		name   string
		ranges []*corev1.LimitRange
		pod    *corev1.Pod
		want   string
	}{
		{"within", container(corev1.LimitRangeItem{Max: rl("cpu", "2"), Min: rl("cpu", "100m")}),
			newPod(ctr("c", rl("cpu", "1"), rl("cpu", "2"))), ""},
		{"limit over max", container(corev1.LimitRangeItem{Max: rl("cpu", "2")}), newPod(ctr("c", rl("cpu", "1"), rl("cpu", "4"))),
			"maximum cpu usage per Container is 2, but limit is 4"},
		{"no limit under a max", container(corev1.LimitRangeItem{Max: rl("memory", "1Gi")}), newPod(ctr("c", nil, nil)),
			"maximum memory usage per Container is 1Gi.  No limit is specified"},
		{"request under min", container(corev1.LimitRangeItem{Min: rl("cpu", "200m")}), newPod(ctr("c", rl("cpu", "100m"), nil)),
			"minimum cpu usage per Container is 200m, but request is 100m"},
		{"no request over a min", container(corev1.LimitRangeItem{Min: rl("cpu", "200m")}), newPod(ctr("c", nil, nil)),
			"minimum cpu usage per Container is 200m.  No request is specified"},
		{"ratio", container(corev1.LimitRangeItem{MaxLimitRequestRatio: rl("cpu", "2")}), newPod(ctr("c", rl("cpu", "250m"), rl("cpu", "1"))),
			"cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000"},
		{"ratio without request", container(corev1.LimitRangeItem{MaxLimitRequestRatio: rl("cpu", "2")}), newPod(ctr("c", nil, rl("cpu", "1"))),
			"cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"},
		{"init container checked", container(corev1.LimitRangeItem{Max: rl("cpu", "2")}),
			func() *corev1.Pod {
				p := newPod(ctr("c", rl("cpu", "1"), rl("cpu", "1")))
				p.Spec.InitContainers = []corev1.Container{ctr("i", rl("cpu", "3"), rl("cpu", "3"))}
				return p
			}(), "maximum cpu usage per Container is 2, but limit is 3"},
		{"every violation", container(corev1.LimitRangeItem{Max: rl("cpu", "2"), Min: rl("memory", "64Mi")}),
			newPod(ctr("c", rl("cpu", "1"), rl("cpu", "3"))),
			"[minimum memory usage per Container is 64Mi.  No request is specified, maximum cpu usage per Container is 2, but limit is 3]"},
		{"pod sum over max", []*corev1.LimitRange{limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("cpu", "2")})},
			newPod(ctr("a", rl("cpu", "1"), rl("cpu", "1500m")), ctr("b", rl("cpu", "1"), rl("cpu", "1500m"))),
			"maximum cpu usage per Pod is 2, but limit is 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPod(tc.ranges, tc.pod)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func newClaim(class *string, size string, annotations map[string]string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "team", Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class}}
	if size != "" {
		pvc.Spec.Resources.Requests = rl("storage", size)
	}
	return pvc
}

// TestClaimUsage: a claim is charged its counts and the storage it requests (or was
// allocated, if more), in all and under its class, as Kubernetes' evaluator charges it.
func TestClaimUsage(t *testing.T) {
	fast := "fast"
	allocated := newClaim(&fast, "1Gi", nil)
	allocated.Status.AllocatedResources = rl("storage", "2Gi")
	const sc = "fast.storageclass.storage.k8s.io/"
	for _, tc := range []struct {
		name string
		pvc  *corev1.PersistentVolumeClaim
		want corev1.ResourceList
	}{
		{"no class", newClaim(nil, "1Gi", nil), rl("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "1Gi")},
		{"class", newClaim(&fast, "1500Mi", nil), rl("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "1500Mi",
			sc+"requests.storage", "1500Mi", sc+"persistentvolumeclaims", "1")},
		{"beta annotation", newClaim(nil, "1Gi", map[string]string{"volume.beta.kubernetes.io/storage-class": "fast"}),
			rl("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "1Gi", sc+"requests.storage", "1Gi", sc+"persistentvolumeclaims", "1")},
		{"allocated more", allocated, rl("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "2Gi",
			sc+"requests.storage", "2Gi", sc+"persistentvolumeclaims", "1")},
		{"rounded up to a byte", newClaim(nil, "1500m", nil), rl("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Usage(tc.pvc, time.Now()); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("usage = %v, want %v", got, tc.want)
			}
		})
	}
	for _, name := range []corev1.ResourceName{"requests.storage", "persistentvolumeclaims", sc + "requests.storage", sc + "persistentvolumeclaims"} {
		if !Tracked(name) {
			t.Errorf("%s not tracked", name)
		}
		if ks := Kinds(corev1.ResourceList{name: resource.MustParse("1")}); len(ks) != 1 || ks[0].Kind != kinds.PersistentVolumeClaim {
			t.Errorf("kinds of %s = %v, want PersistentVolumeClaim", name, ks)
		}
	}
	if Tracked(sc + "requests.cpu") {
		t.Error("a storage class's requests.cpu tracked")
	}
}

// TestCheckClaim: a claim's storage request against PersistentVolumeClaim items' min and
// max, in Kubernetes' words; other items do not concern it.
func TestCheckClaim(t *testing.T) {
	item := func(min, max string) []*corev1.LimitRange {
		it := corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Min: corev1.ResourceList{}, Max: corev1.ResourceList{}}
		if min != "" {
			it.Min["storage"] = resource.MustParse(min)
		}
		if max != "" {
			it.Max["storage"] = resource.MustParse(max)
		}
		return []*corev1.LimitRange{{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{it,
			{Type: corev1.LimitTypeContainer, Max: rl("storage", "1")}}}}}
	}
	for _, tc := range []struct {
		name   string
		ranges []*corev1.LimitRange
		size   string
		want   string
	}{
		{"within", item("1Gi", "10Gi"), "5Gi", ""},
		{"over the max", item("", "10Gi"), "20Gi", "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"},
		{"under the min", item("1Gi", ""), "500Mi", "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"},
		{"no request", item("1Gi", "10Gi"), "", "[minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified, " +
			"maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified]"},
		{"no range", nil, "1Ti", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckClaim(tc.ranges, newClaim(nil, tc.size, nil))
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("CheckClaim = %v, want %q", err, tc.want)
			}
		})
	}
}
