package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/waitfor"
)

var (
	admin  = User{Name: "admin", Groups: []string{pki.GroupAdmin}}
	cm     = User{Name: pki.UserControllerManager, Groups: []string{pki.GroupControllerManager}}
	sched  = User{Name: pki.UserScheduler, Groups: []string{pki.GroupScheduler}}
	w1     = User{Name: "system:node:w1", Groups: []string{pki.GroupNodes}}
	api    = User{Name: pki.UserAPIServer, Groups: []string{pki.GroupAPIServers}}
	nobody = User{Name: "bob"}
)

func pod(node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}, Spec: corev1.PodSpec{NodeName: node}}
}

func TestAuthorize(t *testing.T) {
	type A = Attributes
	tests := []struct {
		name string
		a    Attributes
		// want is "" (allowed), or a substring of the denial.
		want string
		// guarded, when set, is checked with the guard; guardWant as want.
		guarded   kinds.Object
		guardWant string
	}{
		{name: "admin deletes a node", a: A{User: admin, Verb: Delete, Resource: "nodes", Name: "w1"}},
		{name: "admin snapshots", a: A{User: admin, Verb: Get, Resource: ResourceCluster, Subresource: "snapshot"}},
		{name: "nobody lists pods", a: A{User: nobody, Verb: List, Resource: "pods"}, want: `user "bob" cannot list pods in all namespaces`},
		{name: "apiserver adds a member", a: A{User: api, Verb: Create, Resource: ResourceCluster, Subresource: "members"}},
		{name: "apiserver cannot create pods", a: A{User: api, Verb: Create, Resource: "pods", Namespace: "default", Name: "x"}, want: `cannot create pods "default/x"`},

		{name: "cm creates pods", a: A{User: cm, Verb: Create, Resource: "pods", Namespace: "default", Name: "x"}},
		{name: "cm updates replicaset status", a: A{User: cm, Verb: Update, Resource: "replicasets", Subresource: "status", Namespace: "default", Name: "r"}},
		{name: "cm watches everything", a: A{User: cm, Verb: Watch, Resource: "deployments"}},
		{name: "cm marks a node unreachable", a: A{User: cm, Verb: Update, Resource: "nodes", Subresource: "status", Name: "w1"}},
		{name: "cm cannot create nodes", a: A{User: cm, Verb: Create, Resource: "nodes", Name: "w9"}, want: `cannot create nodes "w9"`},
		{name: "cm elects in kube-system", a: A{User: cm, Verb: Update, Resource: "leases", Namespace: "kube-system", Name: "skiff-controller-manager"}},
		{name: "cm updates leases (owner references, finalizers)", a: A{User: cm, Verb: Update, Resource: "leases", Namespace: "kube-node-lease", Name: "w1"}},
		{name: "cm cannot proxy to pods", a: A{User: cm, Verb: Get, Resource: "pods", Subresource: "proxy", Namespace: "default", Name: "web"}, want: "cannot get pods/proxy"},
		{name: "cm cannot bind", a: A{User: cm, Verb: Create, Resource: "pods", Subresource: "binding", Namespace: "default", Name: "x"}, want: "cannot create pods/binding"},
		{name: "cm empties a namespace", a: A{User: cm, Verb: Delete, Resource: "configmaps", Namespace: "team", Name: "c"}},
		{name: "cm deletes leases anywhere", a: A{User: cm, Verb: Delete, Resource: "leases", Namespace: "team", Name: "l"}},
		{name: "cm updates budgets' status", a: A{User: cm, Verb: Update, Resource: "poddisruptionbudgets", Subresource: "status", Namespace: "default", Name: "web"}},
		{name: "cm updates budgets (owner references, finalizers)", a: A{User: cm, Verb: Update, Resource: "poddisruptionbudgets", Namespace: "default", Name: "web"}},
		{name: "cm writes endpointslices", a: A{User: cm, Verb: Create, Resource: "endpointslices", Namespace: "default", Name: "web-abcde"}},
		{name: "cm sets a load balancer's ingress", a: A{User: cm, Verb: Update, Resource: "services", Subresource: "status", Namespace: "default", Name: "web"}},
		{name: "cm updates services (owner references, finalizers)", a: A{User: cm, Verb: Update, Resource: "services", Namespace: "default", Name: "web"}},
		{name: "cm cannot update what is not served", a: A{User: cm, Verb: Update, Resource: "widgets", Namespace: "default", Name: "w"}, want: "cannot update widgets"},
		{name: "cm cannot add members", a: A{User: cm, Verb: Create, Resource: ResourceCluster, Subresource: "members"}, want: "cannot create cluster/members"},

		{name: "scheduler binds", a: A{User: sched, Verb: Create, Resource: "pods", Subresource: "binding", Namespace: "default", Name: "x"}},
		{name: "scheduler writes pod status", a: A{User: sched, Verb: Update, Resource: "pods", Subresource: "status", Namespace: "default", Name: "x"}},
		{name: "scheduler deletes pods (preemption's victims)", a: A{User: sched, Verb: Delete, Resource: "pods", Namespace: "default", Name: "x"}},
		{name: "scheduler cannot delete deployments", a: A{User: sched, Verb: Delete, Resource: "deployments", Namespace: "default", Name: "x"}, want: `user "system:scheduler" cannot delete deployments "default/x"`},
		{name: "scheduler records events", a: A{User: sched, Verb: Create, Resource: "events", Namespace: "default", Name: "e"}},
		{name: "scheduler creates kube-system", a: A{User: sched, Verb: Create, Resource: "namespaces", Name: "kube-system"}},
		{name: "scheduler cannot create other namespaces", a: A{User: sched, Verb: Create, Resource: "namespaces", Name: "prod"}, want: `cannot create namespaces "prod"`},
		{name: "scheduler elects", a: A{User: sched, Verb: Create, Resource: "leases", Namespace: "kube-system", Name: "skiff-scheduler"}},

		{name: "node watches services", a: A{User: w1, Verb: Watch, Resource: "services"}},
		{name: "node lists endpointslices", a: A{User: w1, Verb: List, Resource: "endpointslices"}},
		{name: "node cannot change services", a: A{User: w1, Verb: Update, Resource: "services", Namespace: "default", Name: "web"}, want: "cannot update services"},
		{name: "node registers", a: A{User: w1, Verb: Create, Resource: "nodes", Name: "w1"}},
		{name: "node updates its status", a: A{User: w1, Verb: Update, Resource: "nodes", Subresource: "status", Name: "w1"}},
		{name: "node cannot touch another node", a: A{User: w1, Verb: Update, Resource: "nodes", Name: "w2"}, want: `user "system:node:w1" cannot update nodes "w2": a node may only access its own Node "w1"`},
		{name: "node lists nodes", a: A{User: w1, Verb: List, Resource: "nodes"}},
		{name: "node reads another node", a: A{User: w1, Verb: Get, Resource: "nodes", Name: "w2"}},
		{name: "node cannot delete another node", a: A{User: w1, Verb: Delete, Resource: "nodes", Name: "w2"}, want: "cannot delete nodes"},
		{name: "node cannot delete its node", a: A{User: w1, Verb: Delete, Resource: "nodes", Name: "w1"}, want: `cannot delete nodes "w1"`},
		{name: "node renews its lease", a: A{User: w1, Verb: Update, Resource: "leases", Namespace: "kube-node-lease", Name: "w1"}},
		{name: "node cannot renew another's lease", a: A{User: w1, Verb: Update, Resource: "leases", Namespace: "kube-node-lease", Name: "w2"}, want: "only access its own Lease"},
		{name: "node cannot take the scheduler lease", a: A{User: w1, Verb: Update, Resource: "leases", Namespace: "kube-system", Name: "skiff-scheduler"}, want: "only access its own Lease"},
		{name: "node creates its csinode", a: A{User: w1, Verb: Create, Resource: "csinodes", APIGroup: "storage.k8s.io", Name: "w1"}},
		{name: "node reads its csinode", a: A{User: w1, Verb: Get, Resource: "csinodes", APIGroup: "storage.k8s.io", Name: "w1"}},
		{name: "node cannot write another's csinode", a: A{User: w1, Verb: Update, Resource: "csinodes", APIGroup: "storage.k8s.io", Name: "w2"}, want: `cannot update csinodes "w2": a node may only access its own CSINode "w1"`},
		{name: "node cannot list csinodes", a: A{User: w1, Verb: List, Resource: "csinodes", APIGroup: "storage.k8s.io"}, want: "cannot list csinodes"},
		{name: "node creates the lease namespace", a: A{User: w1, Verb: Create, Resource: "namespaces", Name: "kube-node-lease"}},
		{name: "node cannot create other namespaces", a: A{User: w1, Verb: Create, Resource: "namespaces", Name: "prod"}, want: `cannot create namespaces "prod"`},
		{name: "node watches its pods", a: A{User: w1, Verb: Watch, Resource: "pods", FieldSelector: "spec.nodeName=w1"}},
		{name: "node lists its pods", a: A{User: w1, Verb: List, Resource: "pods", Namespace: "default", FieldSelector: "status.phase=Running,spec.nodeName==w1"}},
		{name: "node cannot watch all pods", a: A{User: w1, Verb: Watch, Resource: "pods"}, want: "only watch pods with fieldSelector spec.nodeName=w1"},
		{name: "node cannot list another's pods", a: A{User: w1, Verb: List, Resource: "pods", FieldSelector: "spec.nodeName=w2"}, want: "only list pods with fieldSelector spec.nodeName=w1"},
		{name: "node cannot list with a negation", a: A{User: w1, Verb: List, Resource: "pods", FieldSelector: "spec.nodeName!=w1"}, want: "only list pods"},
		{name: "node cannot evict pods", a: A{User: w1, Verb: Create, Resource: "pods", Subresource: "eviction", Namespace: "default", Name: "x"}, want: `cannot create pods/eviction "default/x"`},
		{name: "scheduler cannot evict pods", a: A{User: sched, Verb: Create, Resource: "pods", Subresource: "eviction", Namespace: "default", Name: "x"}, want: `cannot create pods/eviction`},
		{name: "admin evicts pods", a: A{User: admin, Verb: Create, Resource: "pods", Subresource: "eviction", Namespace: "default", Name: "x"}},
		{name: "node cannot create pods", a: A{User: w1, Verb: Create, Resource: "pods", Namespace: "default", Name: "x"}, want: `cannot create pods "default/x"`},
		{name: "node cannot update pod specs", a: A{User: w1, Verb: Update, Resource: "pods", Namespace: "default", Name: "x"}, want: `cannot update pods "default/x"`},
		{name: "node cannot bind", a: A{User: w1, Verb: Create, Resource: "pods", Subresource: "binding", Namespace: "default", Name: "x"}, want: "cannot create pods/binding"},
		{name: "node updates its pod's status", a: A{User: w1, Verb: Update, Resource: "pods", Subresource: "status", Namespace: "default", Name: "x"}, guarded: pod("w1")},
		{name: "node cannot update another's pod", a: A{User: w1, Verb: Update, Resource: "pods", Subresource: "status", Namespace: "default", Name: "x"},
			guarded: pod("w2"), guardWant: `user "system:node:w1" cannot update pods/status "default/x": pod is bound to node "w2"`},
		{name: "node cannot read another's pod", a: A{User: w1, Verb: Get, Resource: "pods", Namespace: "default", Name: "x"}, guarded: pod("w2"), guardWant: `cannot get pods "default/x": pod is bound to node "w2"`},
		{name: "admin reads logs", a: A{User: admin, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"}},
		{name: "node reads its pod's logs", a: A{User: w1, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"}, guarded: pod("w1")},
		{name: "node cannot read another node's pod's logs", a: A{User: w1, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"},
			guarded: pod("w2"), guardWant: `user "system:node:w1" cannot get pods/log "default/x": pod is bound to node "w2"`},
		{name: "scheduler cannot read logs", a: A{User: sched, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"}, want: "cannot get pods/log"},
		{name: "cm cannot read logs", a: A{User: cm, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "default", Name: "x"}, want: "cannot get pods/log"},
		// Reaching into a container: administrators only.
		{name: "admin execs", a: A{User: admin, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}},
		{name: "admin attaches", a: A{User: admin, Verb: Create, Resource: "pods", Subresource: SubresourceAttach, Namespace: "default", Name: "x"}},
		{name: "admin forwards ports", a: A{User: admin, Verb: Create, Resource: "pods", Subresource: SubresourcePortForward, Namespace: "default", Name: "x"}},
		{name: "cm cannot exec", a: A{User: cm, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}, want: `cannot create pods/exec "default/x"`},
		{name: "cm cannot attach", a: A{User: cm, Verb: Create, Resource: "pods", Subresource: SubresourceAttach, Namespace: "default", Name: "x"}, want: "cannot create pods/attach"},
		{name: "cm cannot forward ports", a: A{User: cm, Verb: Create, Resource: "pods", Subresource: SubresourcePortForward, Namespace: "default", Name: "x"}, want: "cannot create pods/portforward"},
		{name: "scheduler cannot exec", a: A{User: sched, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}, want: "cannot create pods/exec"},
		{name: "scheduler cannot forward ports", a: A{User: sched, Verb: Create, Resource: "pods", Subresource: SubresourcePortForward, Namespace: "default", Name: "x"}, want: "cannot create pods/portforward"},
		{name: "node cannot exec into its own pod", a: A{User: w1, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}, want: `user "system:node:w1" cannot create pods/exec "default/x"`},
		{name: "node cannot attach", a: A{User: w1, Verb: Create, Resource: "pods", Subresource: SubresourceAttach, Namespace: "default", Name: "x"}, want: "cannot create pods/attach"},
		{name: "node cannot forward ports", a: A{User: w1, Verb: Create, Resource: "pods", Subresource: SubresourcePortForward, Namespace: "default", Name: "x"}, want: "cannot create pods/portforward"},
		{name: "apiserver cannot exec", a: A{User: api, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}, want: "cannot create pods/exec"},
		{name: "a user without a group cannot exec", a: A{User: nobody, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "default", Name: "x"}, want: `user "bob" cannot create pods/exec "default/x"`},
		{name: "admin proxies to a pod", a: A{User: admin, Verb: Delete, Resource: "pods", Subresource: SubresourceProxy, Namespace: "default", Name: "x"}},
		{name: "admin proxies to a node", a: A{User: admin, Verb: Get, Resource: "nodes", Subresource: SubresourceProxy, Name: "w1"}},
		{name: "apiserver cannot get through a pod's proxy", a: A{User: api, Verb: Get, Resource: "pods", Subresource: SubresourceProxy, Namespace: "default", Name: "x"}, want: `cannot get pods/proxy "default/x"`},
		{name: "cm cannot get through a service's proxy", a: A{User: cm, Verb: Get, Resource: "services", Subresource: SubresourceProxy, Namespace: "default", Name: "x"}, want: `cannot get services/proxy "default/x"`},
		{name: "scheduler cannot get through a node's proxy", a: A{User: sched, Verb: Get, Resource: "nodes", Subresource: SubresourceProxy, Name: "w1"}, want: `cannot get nodes/proxy "w1"`},
		{name: "node cannot get through its own node's proxy", a: A{User: w1, Verb: Get, Resource: "nodes", Subresource: SubresourceProxy, Name: "w1"}, want: `user "system:node:w1" cannot get nodes/proxy "w1"`},
		{name: "node cannot get through a service's proxy", a: A{User: w1, Verb: Get, Resource: "services", Subresource: SubresourceProxy, Namespace: "default", Name: "x"}, want: `cannot get services/proxy "default/x"`},

		{name: "node cannot delete an unbound pod", a: A{User: w1, Verb: Delete, Resource: "pods", Namespace: "default", Name: "x"}, guarded: pod(""), guardWant: "pod is not bound to a node"},
		{name: "node deletes its pod", a: A{User: w1, Verb: Delete, Resource: "pods", Namespace: "default", Name: "x"}, guarded: pod("w1")},
		{name: "node records events", a: A{User: w1, Verb: Create, Resource: "events", Namespace: "default", Name: "x.1"}},
		{name: "node cannot read configmaps", a: A{User: w1, Verb: Get, Resource: "configmaps", Namespace: "default", Name: "c"}, want: "cannot get configmaps"},
		{name: "node reads its pod's secret", a: A{User: w1, Verb: Get, Resource: "secrets", Namespace: "default", Name: "db"}},
		{name: "node watches its pod's configmap by name", a: A{User: w1, Verb: Watch, Resource: "configmaps", Namespace: "default", Name: "cfg",
			FieldSelector: "metadata.name=cfg"}},
		{name: "node cannot read another pod's secret", a: A{User: w1, Verb: Get, Resource: "secrets", Namespace: "default", Name: "other"},
			want: `user "system:node:w1" cannot get secrets "default/other": no relationship found between node 'w1' and this object`},
		{name: "node cannot read its pod's secret name in another namespace", a: A{User: w1, Verb: Get, Resource: "secrets", Namespace: "prod", Name: "db"},
			want: "no relationship found"},
		{name: "node cannot list secrets", a: A{User: w1, Verb: List, Resource: "secrets", Namespace: "default"},
			want: "a node may only list secrets by name"},
		{name: "node cannot write its pod's secret", a: A{User: w1, Verb: Update, Resource: "secrets", Namespace: "default", Name: "db"},
			want: `cannot update secrets "default/db"`},
		{name: "another node cannot read the pod's secret", a: A{User: User{Name: "system:node:w2", Groups: []string{pki.GroupNodes}},
			Verb: Get, Resource: "secrets", Namespace: "default", Name: "db"}, want: "no relationship found between node 'w2'"},
		{name: "node reads its pod's claim", a: A{User: w1, Verb: Get, Resource: "persistentvolumeclaims", Namespace: "default", Name: "www-web-0"}},
		{name: "node cannot read another pod's claim", a: A{User: w1, Verb: Get, Resource: "persistentvolumeclaims", Namespace: "default", Name: "other"},
			want: "no relationship found between node 'w1'"},
		{name: "node reads the volume of its pod's claim", a: A{User: w1, Verb: Get, Resource: "persistentvolumes", Name: "pvc-1"}, guarded: volume("default", "www-web-0")},
		{name: "node cannot read another claim's volume", a: A{User: w1, Verb: Get, Resource: "persistentvolumes", Name: "pvc-2"},
			guarded: volume("default", "other"), guardWant: `user "system:node:w1" cannot get persistentvolumes "pvc-2": no relationship found between node 'w1' and this object`},
		{name: "node cannot read an unbound volume", a: A{User: w1, Verb: Get, Resource: "persistentvolumes", Name: "pvc-3"}, guarded: volume("", ""), guardWant: "no relationship found"},
		{name: "node cannot list volumes", a: A{User: w1, Verb: List, Resource: "persistentvolumes"}, want: "cannot list persistentvolumes"},
		{name: "node cannot update a volume", a: A{User: w1, Verb: Update, Resource: "persistentvolumes", Name: "pvc-1"}, want: "cannot update persistentvolumes"},
		{name: "node reads a volume pinned to it", a: A{User: w1, Verb: Get, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: localVolume("w1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)},
		{name: "node cannot read a volume pinned to another", a: A{User: w1, Verb: Get, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: localVolume("w2", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete), guardWant: "no relationship found"},
		{name: "node deletes a Released volume pinned to it", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: localVolume("w1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)},
		{name: "node cannot delete a volume pinned to another", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded:   localVolume("w2", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete),
			guardWant: `user "system:node:w1" cannot delete persistentvolumes "pvc-1": a node may only delete volumes its node affinity pins to it (kubernetes.io/hostname In [w1])`},
		{name: "node cannot delete a volume it may be on among others", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: func() *corev1.PersistentVolume {
				pv := localVolume("w1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
				pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values = []string{"w1", "w2"}
				return pv
			}(), guardWant: "node affinity pins to it"},
		{name: "node cannot delete a volume without node affinity", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: volume("default", "www-web-0"), guardWant: "node affinity pins to it"},
		{name: "node cannot delete its Bound volume", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: localVolume("w1", corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete), guardWant: "only delete a Released volume whose reclaimPolicy is Delete"},
		{name: "node cannot delete its volume to Retain", a: A{User: w1, Verb: Delete, Resource: "persistentvolumes", Name: "pvc-1"},
			guarded: localVolume("w1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain), guardWant: "only delete a Released volume"},
		{name: "scheduler cannot read secrets", a: A{User: sched, Verb: List, Resource: "secrets"}, want: `user "system:scheduler" cannot list secrets`},
		{name: "scheduler reads configmaps", a: A{User: sched, Verb: List, Resource: "configmaps"}},
		{name: "cm makes service accounts", a: A{User: cm, Verb: Create, Resource: "serviceaccounts", Namespace: "team", Name: "default"}},
		{name: "cm reads secrets", a: A{User: cm, Verb: Watch, Resource: "secrets"}},
		{name: "node cannot read the cluster", a: A{User: w1, Verb: Get, Resource: ResourceCluster}, want: `cannot get cluster`},
		{name: "node creates podcertificaterequests", a: A{User: w1, Verb: Create, Resource: "podcertificaterequests", Namespace: "default"}},
		{name: "node reads its podcertificaterequest", a: A{User: w1, Verb: Get, Resource: "podcertificaterequests", Namespace: "default", Name: "web-x"},
			guarded: pcrOn("w1")},
		{name: "node cannot read another's podcertificaterequest", a: A{User: w1, Verb: Get, Resource: "podcertificaterequests", Namespace: "default", Name: "web-x"},
			guarded: pcrOn("w2"), guardWant: `cannot get podcertificaterequests "default/web-x": a node may only read the podcertificaterequests it made`},
		{name: "node watches its podcertificaterequests", a: A{User: w1, Verb: Watch, Resource: "podcertificaterequests", FieldSelector: "spec.nodeName=w1"}},
		{name: "node cannot list every podcertificaterequest", a: A{User: w1, Verb: List, Resource: "podcertificaterequests"},
			want: "a node may only list podcertificaterequests with fieldSelector spec.nodeName=w1"},
		{name: "node cannot sign", a: A{User: w1, Verb: Update, Resource: "podcertificaterequests", Subresource: "status", Namespace: "default", Name: "web-x"},
			want: `cannot update podcertificaterequests/status "default/web-x"`},
		{name: "node cannot delete podcertificaterequests", a: A{User: w1, Verb: Delete, Resource: "podcertificaterequests", Namespace: "default", Name: "web-x"},
			want: `cannot delete podcertificaterequests "default/web-x"`},
		{name: "node reads its pod's service account", a: A{User: w1, Verb: Get, Resource: "serviceaccounts", Namespace: "default", Name: "app"}},
		{name: "node cannot read another service account", a: A{User: w1, Verb: Get, Resource: "serviceaccounts", Namespace: "default", Name: "other"},
			want: "no relationship found between node 'w1' and this object"},
		{name: "a node group without a node name", a: A{User: User{Name: "mallory", Groups: []string{pki.GroupNodes}}, Verb: Get, Resource: "nodes", Name: "mallory"}, want: "must be named system:node:NODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			guard, err := Authorizer{Graph: graph{{"w1", "secrets", "default", "db"}: true, {"w1", "configmaps", "default", "cfg"}: true,
				{"w1", "persistentvolumeclaims", "default", "www-web-0"}: true, {"w1", "serviceaccounts", "default", "app"}: true}}.Authorize(tt.a)
			check := func(what string, err error, want string) {
				t.Helper()
				if want == "" {
					if err != nil {
						t.Fatalf("%s: denied: %v", what, err)
					}
					return
				}
				var d *Denied
				if !errors.As(err, &d) || !strings.Contains(err.Error(), want) {
					t.Fatalf("%s: err = %v, want a denial containing %q", what, err, want)
				}
			}
			check("authorize", err, tt.want)
			if tt.guarded != nil {
				if guard == nil {
					t.Fatal("no guard")
				}
				check("guard", guard(tt.guarded), tt.guardWant)
			} else if err == nil && guard != nil {
				t.Fatal("unexpected guard")
			}
		})
	}
}

// volume is a PersistentVolume bound to claim namespace/name ("": unbound).
func volume(namespace, name string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"}}
	if name != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: namespace, Name: name}
	}
	return pv
}

// localVolume is a volume pinned to node, as the local-path provisioner makes them.
func localVolume(node string, phase corev1.PersistentVolumePhase, policy corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	pv := volume("", "")
	pv.Spec.PersistentVolumeReclaimPolicy, pv.Status.Phase = policy, phase
	pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	return pv
}

// graph is a fake node graph: the references it holds, by node, resource, namespace
// and name.
type graph map[[4]string]bool

func (g graph) References(node, resource, namespace, name string) bool {
	return g[[4]string{node, resource, namespace, name}]
}

func TestTokens(t *testing.T) {
	text := "# comment\n\n" + HashToken("s3cret") + ",alice,skiff:admin\n" + HashToken("k1") + ", system:node:w1 , skiff:nodes,extra\n"
	toks, err := ParseTokens(text)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := toks.Lookup("s3cret"); !ok || u.Name != "alice" || !u.InGroup(pki.GroupAdmin) {
		t.Fatalf("alice: %v %v", u, ok)
	}
	if u, ok := toks.Lookup("k1"); !ok || u.Name != "system:node:w1" || len(u.Groups) != 3 || !u.InGroup(GroupAuthenticated) {
		t.Fatalf("w1: %v %v", u, ok)
	}
	if _, ok := toks.Lookup("nope"); ok {
		t.Fatal("unknown token accepted")
	}
	for _, bad := range []string{"abc,alice,g", HashToken("x"), HashToken("x") + ",,g"} {
		if _, err := ParseTokens(bad); err == nil {
			t.Errorf("ParseTokens(%q) accepted", bad)
		}
	}
	if strings.Contains(text, "s3cret") {
		t.Fatal("the file holds the token itself")
	}
}

func TestAuthenticate(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{"w1"}}); err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader("", "", filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) []*x509.Certificate {
		c, err := pki.ReadCerts(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, _ := pki.LoadCA(dir)
	expired, _ := ca.Issue(pki.Request{CommonName: "old", Client: true, NotBefore: time.Now().Add(-2 * time.Hour), Validity: time.Hour})
	serverOnly, _ := ca.Issue(pki.Request{CommonName: "srv", Server: true})
	foreignCA, _ := pki.NewCA("foreign", time.Now(), 0)
	foreign, _ := foreignCA.Issue(pki.Request{CommonName: "admin", Organization: []string{pki.GroupAdmin}, Client: true})
	toks, _ := ParseTokens(HashToken("t0k") + ",ci,skiff:admin")
	a := &Authenticator{Roots: r.Pool, Tokens: toks}
	tests := []struct {
		name     string
		c        Credentials
		wantUser string
		wantErr  string
	}{
		{name: "kubelet certificate", c: Credentials{Chain: load("kubelet-w1")}, wantUser: "system:node:w1"},
		{name: "token", c: Credentials{BearerToken: "t0k"}, wantUser: "ci"},
		{name: "nothing", wantErr: "no client certificate or bearer token"},
		{name: "wrong token", c: Credentials{BearerToken: "nope"}, wantErr: "invalid bearer token"},
		{name: "expired", c: Credentials{Chain: []*x509.Certificate{expired.Cert}}, wantErr: "expired"},
		{name: "foreign CA", c: Credentials{Chain: []*x509.Certificate{foreign.Cert}}, wantErr: "unknown authority"},
		{name: "server-only certificate", c: Credentials{Chain: []*x509.Certificate{serverOnly.Cert}}, wantErr: "incompatible key usage"},
		{name: "a bad certificate is not excused by a token", c: Credentials{Chain: []*x509.Certificate{foreign.Cert}, BearerToken: "t0k"}, wantErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.Authenticate(tt.c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.Name != tt.wantUser {
				t.Fatalf("user %v, err %v; want %s", u, err, tt.wantUser)
			}
		})
	}
	noTokens := &Authenticator{Roots: r.Pool}
	if _, err := noTokens.Authenticate(Credentials{BearerToken: "t0k"}); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("tokens without a token file: %v", err)
	}
}

// clientCert is a client certificate for "u" (valid an hour) and the pool of its CA.
func clientCert(t *testing.T) (*pki.Pair, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, _ := pki.LoadCA(dir)
	cert, _ := ca.Issue(pki.Request{CommonName: "u", Client: true, Validity: time.Hour})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return cert, pool
}

// TestAuthenticateRemembers: a connection's certificate is verified once, and the
// remembered verdict ends with the certificate's validity and with the CA bundle.
func TestAuthenticateRemembers(t *testing.T) {
	cert, pool := clientCert(t)
	now := time.Now()
	rootsAsked := 0
	a := &Authenticator{Now: func() time.Time { return now }, Roots: func() (*x509.CertPool, error) { rootsAsked++; return pool, nil }}
	chain := []*x509.Certificate{cert.Cert}
	for i := 0; i < 3; i++ {
		if u, err := a.Authenticate(Credentials{Chain: chain}); err != nil || u.Name != "u" {
			t.Fatalf("request %d: %v %v", i, u, err)
		}
	}
	if len(a.verified) != 1 || rootsAsked != 1 {
		t.Fatalf("%d remembered, roots asked %d times; want 1 and 1", len(a.verified), rootsAsked)
	}
	now = now.Add(1500 * time.Millisecond)
	if _, err := a.Authenticate(Credentials{Chain: chain}); err != nil || rootsAsked != 2 {
		t.Fatalf("a second later: %v, roots asked %d times; want 2", err, rootsAsked)
	}
	// Expired since: refused, remembered or not.
	now = now.Add(2 * time.Hour)
	if _, err := a.Authenticate(Credentials{Chain: chain}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate: %v", err)
	}
	// Another CA bundle (a rotation that dropped this CA): verified anew, and refused.
	now = now.Add(-2*time.Hour + 2*time.Second)
	other, _ := pki.NewCA("other", now, 0)
	pool = x509.NewCertPool()
	pool.AddCert(other.Cert)
	if _, err := a.Authenticate(Credentials{Chain: chain}); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("after the CA changed: %v", err)
	}
	// The request that found the bundle changed left no verdict for the next to keep.
	if _, err := a.Authenticate(Credentials{Chain: chain}); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("again after the CA changed: %v", err)
	}
}

// TestAuthenticateAsksRootsOnce: when a remembered certificate's second has passed, one
// of a connection's requests in flight asks whether the CA bundle changed; the others
// keep the verdict meanwhile instead of queueing to ask too.
func TestAuthenticateAsksRootsOnce(t *testing.T) {
	cert, pool := clientCert(t)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	var asked atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { // a failed wait leaves the askers blocked: let them end
		select {
		case <-release:
		default:
			close(release)
		}
	})
	a := &Authenticator{Now: func() time.Time { return *now.Load() }, Roots: func() (*x509.CertPool, error) {
		if asked.Add(1) > 1 {
			<-release // the bundle's reader is slow: whoever asks after the first waits
		}
		return pool, nil
	}}
	chain := []*x509.Certificate{cert.Cert}
	if _, err := a.Authenticate(Credentials{Chain: chain}); err != nil {
		t.Fatal(err)
	}
	later := start.Add(2 * time.Second)
	now.Store(&later)
	const requests = 50
	var done atomic.Int32
	errs := make(chan error, requests)
	for range requests {
		go func() {
			u, err := a.Authenticate(Credentials{Chain: chain})
			if err == nil && u.Name != "u" {
				err = fmt.Errorf("user %q", u.Name)
			}
			errs <- err
			done.Add(1)
		}()
	}
	// The one that asks waits for release; the others answer meanwhile.
	waitfor.Condition(t, 30*time.Second, "the requests but one answered while one asks the CA bundle", func() (bool, string) {
		n := done.Load()
		return n == requests-1, fmt.Sprintf("%d of %d answered, the bundle asked %d times", n, requests, asked.Load()-1)
	})
	close(release)
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := asked.Load() - 1; n != 1 {
		t.Errorf("the CA bundle asked %d times by %d requests; want once", n, requests)
	}
}

func pcrOn(node string) *certificatesv1.PodCertificateRequest {
	return &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-x"},
		Spec: certificatesv1.PodCertificateRequestSpec{NodeName: types.NodeName(node)}}
}
