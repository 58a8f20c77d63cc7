package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
)

// Verbs.
const (
	Get    = "get"
	List   = "list"
	Watch  = "watch"
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Resources beside the kinds' plurals (pods, nodes, ...).
const (
	// ResourceCluster is the Cluster service: get (status), create and delete (members),
	// update (leadership), and get with Subresource "snapshot".
	ResourceCluster = "cluster"
	// ResourceCertificateSigningRequests is a component renewing its own certificate
	// (create): every identity may, for itself alone (the handler signs only the
	// identity of the certificate the request was authenticated with).
	ResourceCertificateSigningRequests = "certificatesigningrequests"
	// SubresourceRenewal marks that renewal (create): the certificatesigningrequests
	// objects themselves (certificates.k8s.io/v1) follow the rules and RBAC.
	SubresourceRenewal = "renewal"
	// ResourceSigners are certificates.k8s.io's signers, named by signer name or its
	// domain's wildcard (example.com/*): approving a request for one (verb Approve)
	// and signing it (Sign), as Kubernetes authorizes them.
	ResourceSigners = "signers"
)

// The verbs on signers.
const (
	Approve = "approve"
	Sign    = "sign"
)

// The subresources that reach into a container: running commands in it (exec),
// reading its output as it comes and, one day, writing its input (attach), connecting
// to its ports (portforward), and HTTP requests proxied, with the API server's own
// reach, to a pod's port, a Service's pod or a node's kubelet (proxy, of pods, services
// and nodes: every verb). As in Kubernetes, whoever may create exec can act as the pod:
// read its secrets and act with its credentials; a proxy request reaches a pod's port
// from the API server, past any network rule between the user and the pod, and a
// node's proxy reaches its kubelet, Kubernetes' well-known escalation to exec. Only
// administrators may use any of them, whatever the verb (a GET through a proxy is no
// read of an object: it is whatever the pod does on GET).
const (
	SubresourceExec        = "exec"
	SubresourceAttach      = "attach"
	SubresourcePortForward = "portforward"
	SubresourceProxy       = "proxy"
)

// SubresourceToken is a ServiceAccount's TokenRequest (create serviceaccounts/token).
const SubresourceToken = "token"

// reachesIn reports a subresource that reaches into a pod's containers or a node's
// kubelet.
func reachesIn(subresource string) bool {
	return subresource == SubresourceExec || subresource == SubresourceAttach || subresource == SubresourcePortForward ||
		subresource == SubresourceProxy
}

// Namespaces the roles name.
const (
	NamespaceSystem    = "kube-system"
	NamespaceNodeLease = "kube-node-lease"
)

// Attributes describe one request's action.
type Attributes struct {
	User User
	Verb string
	// Resource is the kind's plural ("pods") or ResourceCluster; Subresource is
	// "status" (UpdateStatus), "binding" (Bind), "log" (pod logs), "eviction" (Evict),
	// "exec", "attach", "portforward" (create only), "proxy" (pods, services, nodes:
	// every verb), "members", "leader", "snapshot" or "".
	Resource, Subresource string
	// Namespace and Name of the object; empty Name for list and watch, empty Namespace
	// for cluster-scoped kinds or all namespaces.
	Namespace, Name string
	// FieldSelector of a list or watch.
	FieldSelector string
	// APIGroup is the resource's group (RBAC's rules name it); empty, the group of the
	// kind whose plural Resource is.
	APIGroup string
	// RequestVerb is Kubernetes' verb when it is not Verb: patch (an Update) and
	// deletecollection (a Delete), which RBAC's rules name.
	RequestVerb string
	// Path is a non-resource request's URL path (/healthz, /api, ...); Resource is then
	// empty.
	Path string
}

func (a Attributes) action() string {
	if a.Path != "" {
		return fmt.Sprintf("%s path %q", a.Verb, a.Path)
	}
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	s := a.Verb + " " + res
	switch {
	case a.Name != "" && a.Namespace != "":
		s += fmt.Sprintf(" %q", a.Namespace+"/"+a.Name)
	case a.Name != "":
		s += fmt.Sprintf(" %q", a.Name)
	case a.Namespace != "":
		s += fmt.Sprintf(" in namespace %q", a.Namespace)
	case a.Resource != ResourceCluster:
		s += " in all namespaces"
	}
	return s
}

// Denied is a refusal: who, what, and why.
type Denied struct {
	Attributes
	Reason string
}

func (d *Denied) Error() string {
	msg := fmt.Sprintf("user %q cannot %s", d.User.Name, d.action())
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	return msg
}

func deny(a Attributes, format string, args ...any) *Denied {
	return &Denied{Attributes: a, Reason: fmt.Sprintf(format, args...)}
}

// Guard is a check on the stored object an allowed request touches (nil: none). It
// returns a *Denied when the object is out of the identity's reach.
type Guard func(obj kinds.Object) error

// Authorizer decides by group, after letting every identity create a
// certificatesigningrequest (renew its own certificate):
//
//   - skiff:admin: anything, and it alone: pods' exec, attach and portforward, the
//     proxy of pods, services and nodes, and impersonation (as another user, group,
//     service account, uid or extra: Impersonate).
//   - skiff:apiservers: the Cluster service (members join through it) and reads.
//   - skiff:controller-manager: reads (but not pods' logs); writes to deployments,
//     replicasets, replicationcontrollers, daemonsets, statefulsets, controllerrevisions,
//     jobs, cronjobs, pods, events, configmaps, secrets, serviceaccounts, namespaces, persistentvolumeclaims
//     and persistentvolumes (the volume binder and the local-path provisioner) and
//     creating storageclasses (the provisioner's default class); endpointslices and
//     endpoints (the EndpointSlice, endpoints and mirroring controllers); the status
//     of services (the service load balancer); the status of poddisruptionbudgets (the
//     disruption controller) and of resourcequotas (the quota controller); nodes'
//     updates and status; Leases in kube-system (its election); deletion of every kind
//     (the garbage collector, the namespace controller emptying a namespace being
//     deleted, the CSR cleaner); updates of every kind, custom ones too, but not of
//     their subresources (the garbage collector's ownerReferences and finalizers, as
//     Kubernetes' role system:controller:generic-garbage-collector allows them, whose
//     "*" would reach pods/proxy too: it is bound to the collector's service account only);
//     certificatesigningrequests' status and approval, and
//     sign and approve on the kubernetes.io signers (the CSR signer).
//   - skiff:scheduler: reads (but not pods' logs, nor Secrets); pods' bindings and
//     status, and their deletion (preemption's victims); events; Leases in kube-system and creating that namespace; updating
//     persistentvolumeclaims and persistentvolumes (its volume binding: a claim's
//     selected node, a volume's claim).
//   - skiff:nodes (user system:node:NAME): reading every Node (get, list, watch: the
//     routes to other nodes' pods, as Kubernetes' system:node role); its Node (create,
//     update, status), its
//     Lease kube-node-lease/NAME and that namespace's creation, pods bound to it (list
//     and watch only with fieldSelector spec.nodeName=NAME; get, logs, status and
//     delete only of a pod bound to NAME), creating and updating events, reading the
//     Secrets, ConfigMaps and PersistentVolumeClaims that pods bound to it reference
//     (Graph), one by name: get, or list and watch with fieldSelector
//     metadata.name=NAME; getting the PersistentVolumes bound to those claims, and
//     those pinned to it by their node affinity (kubernetes.io/hostname In [NAME]),
//     deleting these once Released with reclaimPolicy Delete (the kubelet's
//     local-path reclaimer); reading services and endpointslices (the node's
//     cluster DNS, the pods' service variables) and runtimeclasses (the handlers its
//     pods run with); creating tokens (serviceaccounts/token) of the ServiceAccounts of
//     pods bound to it, each bound to such a pod, and getting those ServiceAccounts;
//     creating and reading
//     CertificateSigningRequests and reading ClusterTrustBundles (system:node's);
//     creating PodCertificateRequests (for pods bound to it: AdmitNodePodCertificateRequest)
//     and reading its own (get, or list and watch with fieldSelector spec.nodeName=NAME).
//
// Members of system:masters, Kubernetes' superuser group, are administrators too.
//
// What these rules deny, RBAC may allow (as kube-apiserver's
// --authorization-mode=Node,RBAC): a Role or ClusterRole bound to the user, one of
// its groups (every authenticated user is in system:authenticated) or its service
// account. Everything else is denied.
type Authorizer struct {
	// Graph says what the pods bound to each node reference. Without it a node reads no
	// Secret or ConfigMap.
	Graph Graph
	// RBAC is the index of the cluster's roles and bindings; nil: the built-in rules
	// alone.
	RBAC *RBAC
}

// Graph is Kubernetes' node authorizer graph, as far as Skiff's kubelet needs it.
type Graph interface {
	// References reports whether a pod bound to node references the object of resource
	// (secrets, configmaps, persistentvolumeclaims) namespace/name: in a volume (secret,
	// configMap, projected, persistentVolumeClaim), an env var's valueFrom, envFrom, or
	// imagePullSecrets.
	References(node, resource, namespace, name string) bool
}

// Authorize allows a (possibly subject to a Guard) or returns a *Denied: the built-in
// rules, else RBAC. A refusal's reason is both's, joined as Kubernetes' union
// authorizer joins them.
func (az Authorizer) Authorize(a Attributes) (Guard, error) {
	gd, _, err := az.Decide(a)
	return gd, err
}

// Decide is Authorize with the reason of an allowance (RBAC's, naming the binding; ""
// for the built-in rules'), as a SubjectAccessReview reports it.
func (az Authorizer) Decide(a Attributes) (Guard, string, error) {
	gd, err := az.builtin(a)
	if err == nil || az.RBAC == nil {
		return gd, "", err
	}
	ok, reason := az.RBAC.Allows(a)
	if ok {
		return nil, reason, nil
	}
	var d *Denied
	if reason != "" && errors.As(err, &d) {
		if d.Reason != "" {
			reason = d.Reason + ", " + reason
		}
		return nil, "", &Denied{Attributes: a, Reason: reason}
	}
	return nil, "", err
}

// IsAdmin reports an administrator: skiff:admin, or Kubernetes' system:masters.
func IsAdmin(u User) bool { return u.InGroup(pki.GroupAdmin) || u.InGroup(GroupMasters) }

// HasBuiltinRules reports a user some of whose permissions are Skiff's built-in rules
// of its components (API servers, controller-manager, scheduler, kubelets), which are
// no list of RBAC rules: a SelfSubjectRulesReview of it is incomplete.
func HasBuiltinRules(u User) bool {
	return u.InGroup(pki.GroupAPIServers) || u.InGroup(pki.GroupControllerManager) || u.InGroup(pki.GroupScheduler) || u.InGroup(pki.GroupNodes)
}

// builtin is Skiff's rules by group.
func (az Authorizer) builtin(a Attributes) (Guard, error) {
	u := a.User
	if a.Resource == ResourceCertificateSigningRequests && a.Subresource == SubresourceRenewal && a.Verb == Create {
		return nil, nil // one's own certificate: the handler checks the identity
	}
	switch {
	case IsAdmin(u):
		return nil, nil
	case reachesIn(a.Subresource), a.Verb == Impersonate:
		// Impersonation too: acting as another is an administrator's, or RBAC's grant.
		return nil, deny(a, "")
	case u.InGroup(pki.GroupAPIServers):
		if a.Resource == ResourceCluster || isRead(a.Verb) {
			return nil, nil
		}
	case u.InGroup(pki.GroupControllerManager):
		if controllerManagerMay(a) {
			return nil, nil
		}
	case u.InGroup(pki.GroupScheduler):
		if schedulerMay(a) {
			return nil, nil
		}
	case u.InGroup(pki.GroupNodes):
		return nodeMay(a, az.Graph)
	}
	return nil, deny(a, "")
}

func isRead(verb string) bool { return verb == Get || verb == List || verb == Watch }

func plural(kind string) string { return kinds.MustLookup(kind).Plural }

// isServed says whether a's resource is a served kind's (its plural, in its group; a
// CRD's too).
func isServed(a Attributes) bool {
	in, ok := kinds.Lookup(a.Resource)
	return ok && in.Plural == a.Resource && (a.APIGroup == "" || a.APIGroup == in.Group)
}

func controllerManagerMay(a Attributes) bool {
	if a.Resource == ResourceCluster {
		return a.Verb == Get && a.Subresource == ""
	}
	if a.Subresource == "log" {
		return false // containers' output is not the controllers' business (nor, Authorize, their insides)
	}
	if isRead(a.Verb) {
		return true
	}
	if a.Subresource == "binding" {
		return false
	}
	if a.Verb == Delete && a.Subresource == "" {
		return true
	}
	if a.Verb == Update && a.Subresource == "" && isServed(a) {
		return true // the garbage collector's ownerReferences and finalizers, of every kind
	}
	switch a.Resource {
	case plural(kinds.Deployment), plural(kinds.ReplicaSet), plural(kinds.ReplicationController), plural(kinds.Pod), plural(kinds.Event),
		plural(kinds.ConfigMap), plural(kinds.Namespace), plural(kinds.Secret), plural(kinds.ServiceAccount),
		plural(kinds.DaemonSet), plural(kinds.StatefulSet), plural(kinds.ControllerRevision), plural(kinds.Job), plural(kinds.CronJob),
		plural(kinds.PersistentVolumeClaim), plural(kinds.PersistentVolume):
		return true
	case plural(kinds.StorageClass):
		return a.Verb == Create
	case plural(kinds.Node):
		return a.Verb == Update
	case plural(kinds.Lease):
		return a.Namespace == NamespaceSystem
	case plural(kinds.PodDisruptionBudget), plural(kinds.ResourceQuota):
		return a.Verb == Update && a.Subresource == "status"
	case plural(kinds.EndpointSlice), plural(kinds.Endpoints):
		return true
	case plural(kinds.Service):
		return a.Verb == Update && a.Subresource == "status" // the service load balancer's ingress points
	case plural(kinds.ClusterRole):
		// The aggregation controller writes the union of other roles' rules.
		return a.Verb == Update || a.Verb == Escalate
	case plural(kinds.CertificateSigningRequest):
		// The signer writes certificates, the approver node clients' approval.
		return a.Verb == Update && (a.Subresource == "status" || a.Subresource == "approval")
	case ResourceSigners:
		// Kubernetes' own signers (kubernetes.io/...), which it signs for and approves.
		return (a.Verb == Sign || a.Verb == Approve) && strings.HasPrefix(a.Name, "kubernetes.io/")
	}
	return false
}

func schedulerMay(a Attributes) bool {
	if a.Resource == ResourceCluster {
		return a.Verb == Get && a.Subresource == ""
	}
	if a.Subresource == "log" || a.Resource == plural(kinds.Secret) {
		return false // scheduling reads neither containers' output nor Secrets
	}
	if isRead(a.Verb) {
		return true
	}
	switch a.Resource {
	case plural(kinds.Pod):
		// Deleting pods: preemption's victims, as Kubernetes' system:kube-scheduler may.
		return a.Subresource == "binding" || (a.Subresource == "status" && a.Verb == Update) ||
			(a.Subresource == "" && a.Verb == Delete)
	case plural(kinds.Event):
		return a.Verb == Create || a.Verb == Update
	case plural(kinds.Lease):
		return a.Namespace == NamespaceSystem && (a.Verb == Create || a.Verb == Update)
	case plural(kinds.Namespace):
		return a.Verb == Create && a.Name == NamespaceSystem // its election's namespace
	case plural(kinds.PersistentVolumeClaim), plural(kinds.PersistentVolume):
		return a.Verb == Update && a.Subresource == ""
	}
	return false
}

// nodeMay is Kubernetes' NodeRestriction and node authorizer for Skiff's kubelet.
func nodeMay(a Attributes, g Graph) (Guard, error) {
	node, ok := strings.CutPrefix(a.User.Name, pki.NodeUserPrefix)
	if !ok || node == "" {
		return nil, deny(a, "a member of %s must be named %sNODE", pki.GroupNodes, pki.NodeUserPrefix)
	}
	switch a.Resource {
	case plural(kinds.Node):
		if a.Verb == Get || a.Verb == List || a.Verb == Watch {
			return nil, nil // every Node, as Kubernetes' system:node role (the routes to other nodes' pods)
		}
		if a.Verb != Create && a.Verb != Update {
			break
		}
		if a.Name != node {
			return nil, deny(a, "a node may only access its own Node %q", node)
		}
		return nil, nil
	case plural(kinds.Lease):
		if a.Verb != Get && a.Verb != Create && a.Verb != Update {
			break
		}
		if a.Namespace != NamespaceNodeLease || a.Name != node {
			return nil, deny(a, "a node may only access its own Lease %q", NamespaceNodeLease+"/"+node)
		}
		return nil, nil
	case plural(kinds.CSINode):
		// Kubernetes' node authorizer: its own CSINode, which the kubelet creates.
		if a.Verb != Get && a.Verb != Create && a.Verb != Update && a.Verb != Delete {
			break
		}
		if a.Name != node {
			return nil, deny(a, "a node may only access its own CSINode %q", node)
		}
		return nil, nil
	case plural(kinds.Namespace):
		if (a.Verb == Get || a.Verb == Create) && a.Name == NamespaceNodeLease {
			return nil, nil
		}
	case plural(kinds.Event):
		if a.Verb == Create || a.Verb == Update {
			return nil, nil
		}
	case plural(kinds.CertificateSigningRequest):
		// Kubernetes' system:node role: its own client and serving certificates' requests.
		if a.Subresource == "" && (a.Verb == Create || isRead(a.Verb)) {
			return nil, nil
		}
	case plural(kinds.ClusterTrustBundle):
		// What its pods' clusterTrustBundle projections read (system:node's too).
		if isRead(a.Verb) {
			return nil, nil
		}
	case plural(kinds.PodCertificateRequest):
		// Its pods' podCertificate projections: creating requests (NodeRestriction
		// checks each names a pod bound to it: AdmitNodePodCertificateRequest) and
		// reading its own, by name or with fieldSelector spec.nodeName=NAME.
		switch {
		case a.Subresource != "":
		case a.Verb == Create:
			return nil, nil
		case a.Verb == List || a.Verb == Watch:
			return nil, onNode(a, node)
		case a.Verb == Get:
			return func(obj kinds.Object) error {
				if pcr, ok := obj.(*certificatesv1.PodCertificateRequest); !ok || string(pcr.Spec.NodeName) != node {
					return deny(a, "a node may only read the podcertificaterequests it made")
				}
				return nil
			}, nil
		}
	case plural(kinds.Service), plural(kinds.EndpointSlice), plural(kinds.RuntimeClass):
		// What a node's cluster DNS (and service proxy) answers from: Kubernetes'
		// system:node and system:node-proxier roles; and the RuntimeClasses whose
		// handlers its pods run with (system:node's too).
		if isRead(a.Verb) {
			return nil, nil
		}
	case plural(kinds.PersistentVolume):
		// Kubernetes' node authorizer: the volume bound to a claim a pod bound to the
		// node references (the graph's pv -> pvc -> pod -> node), by name. And, for the
		// kubelet's local-path reclaimer, a volume pinned to the node by its node
		// affinity: read, and deleted once Released with reclaimPolicy Delete.
		if a.Subresource != "" || a.Name == "" {
			break
		}
		switch a.Verb {
		case Get:
			return func(obj kinds.Object) error {
				pv, ok := obj.(*corev1.PersistentVolume)
				if ok && (pinnedTo(pv, node) || pv.Spec.ClaimRef != nil && g != nil &&
					g.References(node, plural(kinds.PersistentVolumeClaim), pv.Spec.ClaimRef.Namespace, pv.Spec.ClaimRef.Name)) {
					return nil
				}
				return deny(a, "no relationship found between node '%s' and this object", node)
			}, nil
		case Delete:
			return func(obj kinds.Object) error {
				pv, ok := obj.(*corev1.PersistentVolume)
				switch {
				case !ok || !pinnedTo(pv, node):
					return deny(a, "a node may only delete volumes its node affinity pins to it (%s In [%s])", corev1.LabelHostname, node)
				case pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete:
					return deny(a, "a node may only delete a Released volume whose reclaimPolicy is Delete")
				}
				return nil
			}, nil
		}
	case plural(kinds.Secret), plural(kinds.ConfigMap), plural(kinds.PersistentVolumeClaim):
		// Kubernetes' node authorizer: what a pod bound to the node references, by name
		// (a list or watch names it with fieldSelector metadata.name=NAME).
		if !isRead(a.Verb) || a.Subresource != "" {
			break
		}
		if a.Name == "" || a.Namespace == "" {
			return nil, deny(a, "a node may only %s %s by name, in their namespace (list and watch: fieldSelector metadata.name=NAME)", a.Verb, a.Resource)
		}
		if g == nil || !g.References(node, a.Resource, a.Namespace, a.Name) {
			return nil, deny(a, "no relationship found between node '%s' and this object", node)
		}
		return nil, nil
	case plural(kinds.ServiceAccount):
		// Kubernetes' node authorizer: a token of the account of a pod bound to the node
		// (the handler checks that the token is bound to such a pod: AdmitNodeToken), and
		// the account itself (its uid, which a PodCertificateRequest names).
		if !(a.Verb == Create && a.Subresource == SubresourceToken) && !(a.Verb == Get && a.Subresource == "") {
			break
		}
		if g == nil || !g.References(node, a.Resource, a.Namespace, a.Name) {
			return nil, deny(a, "no relationship found between node '%s' and this object", node)
		}
		return nil, nil
	case plural(kinds.Pod):
		switch {
		case a.Verb == List || a.Verb == Watch:
			return nil, onNode(a, node)
		case a.Verb == Get && (a.Subresource == "" || a.Subresource == "log"),
			a.Verb == Update && a.Subresource == "status",
			a.Verb == Delete && a.Subresource == "":
			return boundTo(a, node), nil
		}
	}
	return nil, deny(a, "")
}

// onNode admits a node's list or watch of what is bound to it: only with fieldSelector
// spec.nodeName=NAME (its pods, its PodCertificateRequests).
func onNode(a Attributes, node string) error {
	fs, err := fields.ParseSelector(a.FieldSelector)
	if err != nil {
		return deny(a, "fieldSelector: %v", err)
	}
	if v, ok := fs.RequiresExactMatch("spec.nodeName"); !ok || v != node {
		return deny(a, "a node may only %s %s with fieldSelector spec.nodeName=%s", a.Verb, a.Resource, node)
	}
	return nil
}

// pinnedTo tells whether pv's node affinity allows node alone: each of its required
// terms asks for kubernetes.io/hostname In [node], as local volumes' do.
func pinnedTo(pv *corev1.PersistentVolume, node string) bool {
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) == 0 {
		return false
	}
	for _, term := range na.Required.NodeSelectorTerms {
		if !slices.ContainsFunc(term.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool {
			return r.Key == corev1.LabelHostname && r.Operator == corev1.NodeSelectorOpIn && slices.Equal(r.Values, []string{node})
		}) {
			return false
		}
	}
	return true
}

// boundTo guards an action on a pod: the pod must be bound to node.
func boundTo(a Attributes, node string) Guard {
	return func(obj kinds.Object) error {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return deny(a, "not a pod")
		}
		if n := pod.Spec.NodeName; n != node {
			if n == "" {
				return deny(a, "pod is not bound to a node")
			}
			return deny(a, "pod is bound to node %q", n)
		}
		return nil
	}
}
