package kinds

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// Object is any object Skiff stores: a k8s.io/api type with its metadata accessors and
// its generated protobuf methods (*corev1.Pod, *appsv1.Deployment, ...).
type Object interface {
	metav1.Object
	runtime.Object
	// Kubernetes' generated protobuf encoding of the object (without TypeMeta).
	Size() int
	MarshalTo([]byte) (int, error)
	MarshalToSizedBuffer([]byte) (int, error)
	Unmarshal([]byte) error
}

// Info describes one kind.
type Info struct {
	Kind       string // "Deployment"
	Group      string // "apps"; "" for the core group
	Version    string // "v1"
	APIVersion string // "apps/v1"
	Plural     string // "deployments"
	Singular   string // "deployment"
	ShortNames []string
	// Categories are the groups of kinds a user may name at once ("all").
	Categories []string
	Namespaced bool
	// HasStatus says the kind has a status written through UpdateStatus.
	HasStatus bool
	// HasSpec says the kind keeps its desired state in spec (generation counts its changes).
	HasSpec bool
	// New returns an empty object of the kind.
	New func() Object
	// Conversion, for a kind served over another kind's storage (events.k8s.io/v1
	// Event over core/v1 Event's), says how (versions.go); nil for a stored kind.
	Conversion *Conversion
	// Custom, for a kind a CustomResourceDefinition defines (objects *Custom), is its
	// definition (custom.go); nil for a built-in kind.
	Custom *CustomKind

	typ reflect.Type // the pointer type New returns
}

// GroupVersionKind is the kind's apimachinery name.
func (in *Info) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: in.Group, Version: in.Version, Kind: in.Kind}
}

// GroupVersionResource is the kind's resource, as REST paths name it.
func (in *Info) GroupVersionResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: in.Group, Version: in.Version, Resource: in.Plural}
}

// The kinds, by Kind name.
const (
	Pod        = "Pod"
	Node       = "Node"
	ReplicaSet = "ReplicaSet"
	Deployment = "Deployment"
	ConfigMap  = "ConfigMap"
	Event      = "Event"
	Lease      = "Lease"
	Namespace  = "Namespace"
	// Secret values are encrypted at rest when the API server has an encryption key file.
	Secret         = "Secret"
	ServiceAccount = "ServiceAccount"
	// PodDisruptionBudget is policy/v1's: how many of a set of pods voluntary disruptions
	// (evictions) must leave.
	PodDisruptionBudget = "PodDisruptionBudget"
	// Service gives a set of pods one stable address and name.
	Service = "Service"
	// EndpointSlice is discovery.k8s.io/v1's: a Service's endpoints, at most 100 a slice.
	EndpointSlice = "EndpointSlice"
	// Endpoints is core/v1's older list of a Service's endpoints, one object named as the
	// Service (the endpoints controller's, or the user's for a Service without a selector).
	Endpoints = "Endpoints"
	// ResourceQuota caps what a namespace's objects may use in total, LimitRange what
	// each pod and container may ask for (and gives them defaults).
	ResourceQuota = "ResourceQuota"
	LimitRange    = "LimitRange"
	DaemonSet     = "DaemonSet"
	StatefulSet   = "StatefulSet"
	// ControllerRevision is apps/v1's snapshot of a DaemonSet's or StatefulSet's
	// template: their revision history.
	ControllerRevision    = "ControllerRevision"
	Job                   = "Job"
	CronJob               = "CronJob"
	PersistentVolume      = "PersistentVolume"
	PersistentVolumeClaim = "PersistentVolumeClaim"
	StorageClass          = "StorageClass"
	// PodTemplate is core/v1's stored pod template, which Kubernetes only keeps.
	PodTemplate = "PodTemplate"
	// RuntimeClass is node.k8s.io/v1's: the container runtime handler a pod runs with,
	// its overhead and where it may be scheduled.
	RuntimeClass = "RuntimeClass"
	// IngressClass and Ingress are networking.k8s.io/v1's, which Kubernetes stores for
	// an ingress controller to act on.
	IngressClass = "IngressClass"
	Ingress      = "Ingress"
	// ReplicationController is core/v1's ReplicaSet, with a map selector; the
	// ReplicaSet controller serves both.
	ReplicationController = "ReplicationController"
	// Role and ClusterRole are rbac.authorization.k8s.io/v1's sets of permissions (in a
	// namespace, or cluster-wide); RoleBinding and ClusterRoleBinding grant one to users,
	// groups and service accounts. The API server's RBAC authorizer reads them.
	Role               = "Role"
	ClusterRole        = "ClusterRole"
	RoleBinding        = "RoleBinding"
	ClusterRoleBinding = "ClusterRoleBinding"
	// PriorityClass is scheduling.k8s.io/v1's: the priority a pod naming it gets, by
	// which the scheduler orders its queue and chooses whom to preempt.
	PriorityClass = "PriorityClass"
	// CertificateSigningRequest is certificates.k8s.io/v1's request for a certificate
	// from a named signer: approved (the approval subresource), then signed by the
	// controller-manager's signer (the status subresource) for Kubernetes' signers.
	CertificateSigningRequest = "CertificateSigningRequest"
	// ClusterTrustBundle is certificates.k8s.io/v1's set of trust anchors (a PEM bundle
	// of CA certificates), which pods mount through a clusterTrustBundle projection.
	ClusterTrustBundle = "ClusterTrustBundle"
	// PodCertificateRequest is certificates.k8s.io/v1's request, made by a kubelet for a
	// pod bound to it, for a certificate from a named signer for the key of a
	// podCertificate projection: the signer writes the chain into its status.
	PodCertificateRequest = "PodCertificateRequest"
	// CustomResourceDefinition is apiextensions.k8s.io/v1's: a kind users define, whose
	// objects (custom resources, *Custom) the API server serves once it is established.
	CustomResourceDefinition = "CustomResourceDefinition"
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration are
	// admissionregistration.k8s.io/v1's: the webhooks the API server calls on the writes
	// their rules match, to change the object and to refuse it.
	MutatingWebhookConfiguration   = "MutatingWebhookConfiguration"
	ValidatingWebhookConfiguration = "ValidatingWebhookConfiguration"
	// ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding are
	// admissionregistration.k8s.io/v1's: CEL validations the API server evaluates on the
	// writes a binding of the policy matches, to refuse them or warn.
	ValidatingAdmissionPolicy        = "ValidatingAdmissionPolicy"
	ValidatingAdmissionPolicyBinding = "ValidatingAdmissionPolicyBinding"
	// MutatingAdmissionPolicy and MutatingAdmissionPolicyBinding are
	// admissionregistration.k8s.io/v1's: CEL mutations (an apply configuration or a JSON
	// patch) the API server makes to the writes a binding of the policy matches.
	MutatingAdmissionPolicy        = "MutatingAdmissionPolicy"
	MutatingAdmissionPolicyBinding = "MutatingAdmissionPolicyBinding"
	// FlowSchema and PriorityLevelConfiguration are flowcontrol.apiserver.k8s.io/v1's:
	// Kubernetes' API Priority and Fairness configuration. Skiff stores them and keeps
	// the mandatory ones (exempt, catch-all); its own fair queuing does not read them
	// (apiserver/flowcontrol).
	FlowSchema                 = "FlowSchema"
	PriorityLevelConfiguration = "PriorityLevelConfiguration"
	// ServiceCIDR is networking.k8s.io/v1's range of Services' cluster IPs: the API
	// server keeps one, "kubernetes", for the range it allocates from. IPAddress is one
	// allocated address, named by the address.
	ServiceCIDR = "ServiceCIDR"
	IPAddress   = "IPAddress"
	// StorageVersionMigration is storagemigration.k8s.io/v1's request to rewrite a
	// resource's objects in its storage version; stored only (Skiff stores every object
	// in its one version, so there is nothing to migrate).
	StorageVersionMigration = "StorageVersionMigration"
	// APIService is apiregistration.k8s.io/v1's: a group/version the API server serves,
	// itself (local) or through another server (aggregation, which Skiff does not do).
	APIService = "APIService"
	// HorizontalPodAutoscaler is autoscaling/v2's, stored in that version and served in
	// autoscaling/v1 too (HorizontalPodAutoscalerV1). Stored only: Skiff serves no
	// metrics.k8s.io, so nothing scales by it.
	HorizontalPodAutoscaler = "HorizontalPodAutoscaler"
	// CSINode is storage.k8s.io/v1's list of the CSI drivers installed on a node, named
	// as the node.
	CSINode = "CSINode"
)

func kind[T any, PT interface {
	*T
	Object
}](in Info) *Info {
	in.New = func() Object { return PT(new(T)) }
	in.typ = reflect.TypeOf(PT(nil))
	if in.Group == "" {
		in.APIVersion = in.Version
	} else {
		in.APIVersion = in.Group + "/" + in.Version
	}
	return &in
}

var all = []*Info{
	kind[corev1.Pod](Info{Kind: Pod, Version: "v1", Plural: "pods", Singular: "pod", ShortNames: []string{"po"},
		Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[corev1.Node](Info{Kind: Node, Version: "v1", Plural: "nodes", Singular: "node", ShortNames: []string{"no"},
		HasStatus: true, HasSpec: true}),
	kind[appsv1.ReplicaSet](Info{Kind: ReplicaSet, Group: "apps", Version: "v1", Plural: "replicasets", Singular: "replicaset",
		ShortNames: []string{"rs"}, Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[appsv1.Deployment](Info{Kind: Deployment, Group: "apps", Version: "v1", Plural: "deployments", Singular: "deployment",
		ShortNames: []string{"deploy"}, Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[corev1.ConfigMap](Info{Kind: ConfigMap, Version: "v1", Plural: "configmaps", Singular: "configmap",
		ShortNames: []string{"cm"}, Namespaced: true}),
	kind[corev1.Event](Info{Kind: Event, Version: "v1", Plural: "events", Singular: "event", ShortNames: []string{"ev"},
		Namespaced: true}),
	kind[coordinationv1.Lease](Info{Kind: Lease, Group: "coordination.k8s.io", Version: "v1", Plural: "leases", Singular: "lease",
		Namespaced: true, HasSpec: true}),
	kind[corev1.Namespace](Info{Kind: Namespace, Version: "v1", Plural: "namespaces", Singular: "namespace",
		ShortNames: []string{"ns"}, HasStatus: true, HasSpec: true}),
	kind[corev1.Secret](Info{Kind: Secret, Version: "v1", Plural: "secrets", Singular: "secret", Namespaced: true}),
	kind[corev1.ServiceAccount](Info{Kind: ServiceAccount, Version: "v1", Plural: "serviceaccounts", Singular: "serviceaccount",
		ShortNames: []string{"sa"}, Namespaced: true}),
	kind[policyv1.PodDisruptionBudget](Info{Kind: PodDisruptionBudget, Group: "policy", Version: "v1", Plural: "poddisruptionbudgets",
		Singular: "poddisruptionbudget", ShortNames: []string{"pdb"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[corev1.Service](Info{Kind: Service, Version: "v1", Plural: "services", Singular: "service", ShortNames: []string{"svc"},
		Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[discoveryv1.EndpointSlice](Info{Kind: EndpointSlice, Group: "discovery.k8s.io", Version: "v1", Plural: "endpointslices",
		Singular: "endpointslice", Namespaced: true}),
	kind[corev1.Endpoints](Info{Kind: Endpoints, Version: "v1", Plural: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"},
		Namespaced: true}),
	kind[corev1.ResourceQuota](Info{Kind: ResourceQuota, Version: "v1", Plural: "resourcequotas", Singular: "resourcequota",
		ShortNames: []string{"quota"}, Namespaced: true, HasStatus: true}),
	kind[corev1.LimitRange](Info{Kind: LimitRange, Version: "v1", Plural: "limitranges", Singular: "limitrange",
		ShortNames: []string{"limits"}, Namespaced: true}),
	kind[appsv1.DaemonSet](Info{Kind: DaemonSet, Group: "apps", Version: "v1", Plural: "daemonsets", Singular: "daemonset",
		ShortNames: []string{"ds"}, Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[appsv1.StatefulSet](Info{Kind: StatefulSet, Group: "apps", Version: "v1", Plural: "statefulsets", Singular: "statefulset",
		ShortNames: []string{"sts"}, Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[appsv1.ControllerRevision](Info{Kind: ControllerRevision, Group: "apps", Version: "v1", Plural: "controllerrevisions",
		Singular: "controllerrevision", Namespaced: true}),
	kind[batchv1.Job](Info{Kind: Job, Group: "batch", Version: "v1", Plural: "jobs", Singular: "job",
		Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[batchv1.CronJob](Info{Kind: CronJob, Group: "batch", Version: "v1", Plural: "cronjobs", Singular: "cronjob",
		ShortNames: []string{"cj"}, Categories: []string{"all"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[corev1.PersistentVolume](Info{Kind: PersistentVolume, Version: "v1", Plural: "persistentvolumes", Singular: "persistentvolume",
		ShortNames: []string{"pv"}, HasStatus: true, HasSpec: true}),
	kind[corev1.PersistentVolumeClaim](Info{Kind: PersistentVolumeClaim, Version: "v1", Plural: "persistentvolumeclaims",
		Singular: "persistentvolumeclaim", ShortNames: []string{"pvc"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[storagev1.StorageClass](Info{Kind: StorageClass, Group: "storage.k8s.io", Version: "v1", Plural: "storageclasses",
		Singular: "storageclass", ShortNames: []string{"sc"}}),
	kind[corev1.PodTemplate](Info{Kind: PodTemplate, Version: "v1", Plural: "podtemplates", Singular: "podtemplate",
		Namespaced: true, HasSpec: true}),
	kind[nodev1.RuntimeClass](Info{Kind: RuntimeClass, Group: "node.k8s.io", Version: "v1", Plural: "runtimeclasses",
		Singular: "runtimeclass"}),
	kind[networkingv1.IngressClass](Info{Kind: IngressClass, Group: "networking.k8s.io", Version: "v1", Plural: "ingressclasses",
		Singular: "ingressclass", HasSpec: true}),
	kind[networkingv1.Ingress](Info{Kind: Ingress, Group: "networking.k8s.io", Version: "v1", Plural: "ingresses",
		Singular: "ingress", ShortNames: []string{"ing"}, Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[corev1.ReplicationController](Info{Kind: ReplicationController, Version: "v1", Plural: "replicationcontrollers",
		Singular: "replicationcontroller", ShortNames: []string{"rc"}, Categories: []string{"all"}, Namespaced: true,
		HasStatus: true, HasSpec: true}),
	kind[rbacv1.Role](Info{Kind: Role, Group: "rbac.authorization.k8s.io", Version: "v1", Plural: "roles", Singular: "role",
		Namespaced: true}),
	kind[rbacv1.ClusterRole](Info{Kind: ClusterRole, Group: "rbac.authorization.k8s.io", Version: "v1", Plural: "clusterroles",
		Singular: "clusterrole"}),
	kind[rbacv1.RoleBinding](Info{Kind: RoleBinding, Group: "rbac.authorization.k8s.io", Version: "v1", Plural: "rolebindings",
		Singular: "rolebinding", Namespaced: true}),
	kind[rbacv1.ClusterRoleBinding](Info{Kind: ClusterRoleBinding, Group: "rbac.authorization.k8s.io", Version: "v1",
		Plural: "clusterrolebindings", Singular: "clusterrolebinding"}),
	kind[schedulingv1.PriorityClass](Info{Kind: PriorityClass, Group: "scheduling.k8s.io", Version: "v1", Plural: "priorityclasses",
		Singular: "priorityclass", ShortNames: []string{"pc"}}),
	kind[certificatesv1.CertificateSigningRequest](Info{Kind: CertificateSigningRequest, Group: "certificates.k8s.io", Version: "v1",
		Plural: "certificatesigningrequests", Singular: "certificatesigningrequest", ShortNames: []string{"csr"}, HasStatus: true}),
	kind[certificatesv1.ClusterTrustBundle](Info{Kind: ClusterTrustBundle, Group: "certificates.k8s.io", Version: "v1",
		Plural: "clustertrustbundles", Singular: "clustertrustbundle"}),
	kind[certificatesv1.PodCertificateRequest](Info{Kind: PodCertificateRequest, Group: "certificates.k8s.io", Version: "v1",
		Plural: "podcertificaterequests", Singular: "podcertificaterequest", Namespaced: true, HasStatus: true}),
	kind[apiextensionsv1.CustomResourceDefinition](Info{Kind: CustomResourceDefinition, Group: "apiextensions.k8s.io", Version: "v1",
		Plural: "customresourcedefinitions", Singular: "customresourcedefinition", ShortNames: []string{"crd", "crds"},
		Categories: []string{"api-extensions"}, HasStatus: true, HasSpec: true}),
	kind[admissionregistrationv1.ValidatingAdmissionPolicy](Info{Kind: ValidatingAdmissionPolicy, Group: "admissionregistration.k8s.io",
		Version: "v1", Plural: "validatingadmissionpolicies", Singular: "validatingadmissionpolicy", Categories: []string{"api-extensions"},
		HasStatus: true, HasSpec: true}),
	kind[admissionregistrationv1.ValidatingAdmissionPolicyBinding](Info{Kind: ValidatingAdmissionPolicyBinding,
		Group: "admissionregistration.k8s.io", Version: "v1", Plural: "validatingadmissionpolicybindings",
		Singular: "validatingadmissionpolicybinding", Categories: []string{"api-extensions"}, HasSpec: true}),
	kind[admissionregistrationv1.MutatingAdmissionPolicy](Info{Kind: MutatingAdmissionPolicy, Group: "admissionregistration.k8s.io",
		Version: "v1", Plural: "mutatingadmissionpolicies", Singular: "mutatingadmissionpolicy", Categories: []string{"api-extensions"},
		HasSpec: true}),
	kind[admissionregistrationv1.MutatingAdmissionPolicyBinding](Info{Kind: MutatingAdmissionPolicyBinding,
		Group: "admissionregistration.k8s.io", Version: "v1", Plural: "mutatingadmissionpolicybindings",
		Singular: "mutatingadmissionpolicybinding", Categories: []string{"api-extensions"}, HasSpec: true}),
	kind[admissionregistrationv1.MutatingWebhookConfiguration](Info{Kind: MutatingWebhookConfiguration, Group: "admissionregistration.k8s.io",
		Version: "v1", Plural: "mutatingwebhookconfigurations", Singular: "mutatingwebhookconfiguration"}),
	kind[admissionregistrationv1.ValidatingWebhookConfiguration](Info{Kind: ValidatingWebhookConfiguration, Group: "admissionregistration.k8s.io",
		Version: "v1", Plural: "validatingwebhookconfigurations", Singular: "validatingwebhookconfiguration"}),
	kind[flowcontrolv1.FlowSchema](Info{Kind: FlowSchema, Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Plural: "flowschemas",
		Singular: "flowschema", HasStatus: true, HasSpec: true}),
	kind[flowcontrolv1.PriorityLevelConfiguration](Info{Kind: PriorityLevelConfiguration, Group: "flowcontrol.apiserver.k8s.io",
		Version: "v1", Plural: "prioritylevelconfigurations", Singular: "prioritylevelconfiguration", HasStatus: true, HasSpec: true}),
	kind[networkingv1.ServiceCIDR](Info{Kind: ServiceCIDR, Group: "networking.k8s.io", Version: "v1", Plural: "servicecidrs",
		Singular: "servicecidr", HasStatus: true, HasSpec: true}),
	kind[networkingv1.IPAddress](Info{Kind: IPAddress, Group: "networking.k8s.io", Version: "v1", Plural: "ipaddresses",
		Singular: "ipaddress", ShortNames: []string{"ip"}, HasSpec: true}),
	kind[storagemigrationv1.StorageVersionMigration](Info{Kind: StorageVersionMigration, Group: "storagemigration.k8s.io", Version: "v1",
		Plural: "storageversionmigrations", Singular: "storageversionmigration", HasStatus: true, HasSpec: true}),
	kind[apiregistrationv1.APIService](Info{Kind: APIService, Group: "apiregistration.k8s.io", Version: "v1", Plural: "apiservices",
		Singular: "apiservice", Categories: []string{"api-extensions"}, HasStatus: true, HasSpec: true}),
	kind[autoscalingv2.HorizontalPodAutoscaler](Info{Kind: HorizontalPodAutoscaler, Group: "autoscaling", Version: "v2",
		Plural: "horizontalpodautoscalers", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"}, Categories: []string{"all"},
		Namespaced: true, HasStatus: true, HasSpec: true}),
	kind[storagev1.CSINode](Info{Kind: CSINode, Group: "storage.k8s.io", Version: "v1", Plural: "csinodes", Singular: "csinode"}),
}

var (
	byName = map[string]*Info{}       // every lower-cased name of every kind, and kind.group forms
	byType = map[reflect.Type]*Info{} // the pointer type of each kind
)

func init() {
	for _, in := range all {
		names := append([]string{in.Kind, in.Plural, in.Singular}, in.ShortNames...)
		if in.Group != "" {
			// kubectl's qualified forms: deployments.apps, deployment.apps, deployments.v1.apps
			names = append(names, in.Plural+"."+in.Group, in.Singular+"."+in.Group, in.Kind+"."+in.Group,
				in.Plural+"."+in.Version+"."+in.Group)
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if other, dup := byName[n]; dup && other != in {
				panic("kinds: duplicate name " + n)
			}
			byName[n] = in
		}
		byType[in.typ] = in
	}
	registerVersions()
}

// All returns every kind, in a stable order.
func All() []*Info { return all }

// Lookup finds a kind by its Kind, plural, singular or short name, or a kind.group form
// (deployments.apps), ignoring case.
func Lookup(name string) (*Info, bool) {
	if in, ok := lookupFolded(byName, name); ok {
		return in, true
	}
	return lookupCustom(name)
}

// lookupFolded is m[strings.ToLower(name)] (m's keys are lower case) without the
// lowered copy for the ASCII names kinds have: every API request looks kinds up by name
// several times (authorization compares its resource with the kinds' plurals, the
// handlers find their kind), and the copy was most of what each lookup cost.
func lookupFolded(m map[string]*Info, name string) (*Info, bool) {
	var buf [64]byte
	if len(name) > len(buf) {
		in, ok := m[strings.ToLower(name)]
		return in, ok
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= utf8.RuneSelf {
			in, ok := m[strings.ToLower(name)] // Unicode's case folding
			return in, ok
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	in, ok := m[string(buf[:len(name)])] // the compiler looks this up without a copy
	return in, ok
}

// MustLookup is Lookup for names known at compile time.
func MustLookup(name string) *Info {
	in, ok := Lookup(name)
	if !ok {
		panic("kinds: unknown kind " + name)
	}
	return in
}

// ForGroupVersionKind finds a kind by its apiVersion and kind, as a manifest names it.
func ForGroupVersionKind(apiVersion, kind string) (*Info, bool) {
	in, ok := lookupFolded(byName, kind)
	if !ok || in.Kind != kind || in.APIVersion != apiVersion {
		for _, v := range versions {
			if v.Kind == kind && v.APIVersion == apiVersion {
				return v, true
			}
		}
		return customByGVK(apiVersion, kind)
	}
	return in, true
}

// Names lists the names a user may type, for error messages and completion.
func Names() []string {
	var out []string
	for _, in := range all {
		out = append(out, in.Plural)
	}
	sort.Strings(out)
	return out
}

// Of returns the kind of obj, which must be one of the kinds' types.
func Of(obj runtime.Object) *Info {
	if c, ok := obj.(*Custom); ok {
		if c.info != nil {
			return c.info
		}
		if in, ok := customByGVK(c.APIVersion, c.Kind); ok {
			return in
		}
		panic(fmt.Sprintf("kinds: %s %s is not a kind Skiff serves", c.APIVersion, c.Kind))
	}
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		// An object's metadata alone (DecodeMeta) is of the stored kind its TypeMeta names.
		if in, ok := lookupFolded(byName, m.Kind); ok && in.Kind == m.Kind && in.APIVersion == m.APIVersion {
			return in
		}
		if in, ok := customByGVK(m.APIVersion, m.Kind); ok {
			return in
		}
		panic(fmt.Sprintf("kinds: %s %s is not a kind Skiff serves", m.APIVersion, m.Kind))
	}
	in, ok := byType[reflect.TypeOf(obj)]
	if !ok {
		panic(fmt.Sprintf("kinds: %T is not a kind Skiff stores", obj))
	}
	return in
}

// OfType is Of for a type parameter: OfType[*corev1.Pod]().
func OfType[T Object]() *Info {
	in, ok := byType[reflect.TypeOf((*T)(nil)).Elem()]
	if !ok {
		var zero T
		panic(fmt.Sprintf("kinds: %T is not a kind Skiff stores", zero))
	}
	return in
}

// SetTypeMeta fills obj's apiVersion and kind.
func SetTypeMeta(obj runtime.Object) {
	in := Of(obj)
	obj.GetObjectKind().SetGroupVersionKind(in.GroupVersionKind())
}

// NewControllerRef makes the owner reference a controller puts on what it creates.
func NewControllerRef(owner Object) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, Of(owner).GroupVersionKind())
}
