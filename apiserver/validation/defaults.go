package validation

import (
	"maps"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The defaults Default fills, as Kubernetes does.
const (
	DefaultRestartPolicy                 = corev1.RestartPolicyAlways
	DefaultTerminationGracePeriodSeconds = 30
	DefaultProtocol                      = corev1.ProtocolTCP
	DefaultTolerationOperator            = corev1.TolerationOpEqual
	DefaultReplicas                      = 1
	DefaultStrategyType                  = appsv1.RollingUpdateDeploymentStrategyType
	DefaultMaxSurge                      = "25%"
	DefaultMaxUnavailable                = "25%"
	DefaultRevisionHistoryLimit          = 10
	DefaultProgressDeadlineSeconds       = 600
)

// Default fills the fields a user may leave out with Kubernetes' defaults, in place. It
// only sets what is unset, so it is idempotent. It fills only fields Skiff acts on, never
// Kubernetes' defaults for the others (schedulerName, ...), which Skiff does
// not support. It never defaults a controller's selector from its template, but for a
// ReplicationController's, as Kubernetes does: a missing selector is an error Validate
// reports.
func Default(obj kinds.Object) {
	switch o := obj.(type) {
	case *kinds.Custom:
		defaultCustom(o)
	case *apiextensionsv1.CustomResourceDefinition:
		apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(o)
	case *certificatesv1.PodCertificateRequest:
		if o.Spec.MaxExpirationSeconds == nil {
			o.Spec.MaxExpirationSeconds = new(int32(DefaultMaxExpirationSeconds))
		}
	case *corev1.Pod:
		defaultPodSpec(&o.Spec)
		defaultRequestsFromLimits(&o.Spec)
	case *appsv1.Deployment:
		defaultDeploymentSpec(&o.Spec)
	case *appsv1.ReplicaSet:
		if o.Spec.Replicas == nil {
			o.Spec.Replicas = new(int32(DefaultReplicas))
		}
		defaultTemplate(&o.Spec.Template)
	case *corev1.ReplicationController:
		defaultReplicationController(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Node:
		// podCIDRs is podCIDR's plural, as Kubernetes' conversion keeps them.
		if o.Spec.PodCIDR != "" && len(o.Spec.PodCIDRs) == 0 {
			o.Spec.PodCIDRs = []string{o.Spec.PodCIDR}
		}
	case *appsv1.DaemonSet:
		defaultDaemonSetSpec(&o.Spec)
	case *appsv1.StatefulSet:
		defaultStatefulSetSpec(&o.Spec)
	case *batchv1.Job:
		defaultJobSpec(o)
	case *batchv1.CronJob:
		defaultCronJobSpec(&o.Spec)
	case *corev1.PersistentVolume:
		defaultPersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		defaultClaimSpec(&o.Spec)
	case *storagev1.StorageClass:
		defaultStorageClass(o)
	case *corev1.Secret:
		defaultSecret(o)
	case *corev1.LimitRange:
		defaultLimitRange(o)
	case *corev1.Namespace:
		defaultNamespace(o)
	case *corev1.Endpoints:
		for i := range o.Subsets {
			for j := range o.Subsets[i].Ports {
				if p := &o.Subsets[i].Ports[j]; p.Protocol == "" {
					p.Protocol = DefaultProtocol
				}
			}
		}
	case *corev1.PodTemplate:
		defaultTemplate(&o.Template)
	case *networkingv1.IngressClass:
		defaultIngressClass(o)
	case *admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration:
		defaultWebhooks(o)
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		defaultPolicy(o)
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		defaultMatchResources(o.Spec.MatchResources)
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		defaultMutatingPolicy(o)
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		defaultMatchResources(o.Spec.MatchResources)
	case *rbacv1.RoleBinding:
		defaultBinding(&o.RoleRef, o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		defaultBinding(&o.RoleRef, o.Subjects)
	case *schedulingv1.PriorityClass:
		defaultPriorityClass(o)
	case *flowcontrolv1.FlowSchema:
		defaultFlowSchema(o)
	case *flowcontrolv1.PriorityLevelConfiguration:
		defaultPriorityLevel(o)
	case *apiregistrationv1.APIService:
		defaultAPIService(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		defaultHPA(o)
	}
}

// defaultNamespace labels a namespace with its name (kubernetes.io/metadata.name), as
// Kubernetes does on every write, so that selectors (a NetworkPolicy's
// namespaceSelector, a webhook's) can name a namespace; a write that changes or drops
// the label gets it back. A generated name is labelled once it is chosen.
func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

// defaultReplicationController is Kubernetes' SetDefaults_ReplicationController: the
// selector, and the controller's labels when it has none, are its template's labels.
func defaultReplicationController(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil && t.Labels != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = maps.Clone(t.Labels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = maps.Clone(t.Labels)
		}
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = new(int32(DefaultReplicas))
	}
	if rc.Spec.Template != nil {
		defaultTemplate(rc.Spec.Template)
	}
}

func defaultDeploymentSpec(spec *appsv1.DeploymentSpec) {
	if spec.Replicas == nil {
		spec.Replicas = new(int32(DefaultReplicas))
	}
	s := &spec.Strategy
	if s.Type == "" {
		s.Type = DefaultStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = new(intstr.FromString(DefaultMaxUnavailable))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = new(intstr.FromString(DefaultMaxSurge))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(DefaultRevisionHistoryLimit))
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = new(int32(DefaultProgressDeadlineSeconds))
	}
	defaultTemplate(&spec.Template)
}

// defaultTemplate defaults the pod spec of a template, when there is one: a missing
// template is an error Validate reports, not something to invent.
func defaultTemplate(t *corev1.PodTemplateSpec) {
	if !templateMissing(t) {
		defaultPodSpec(&t.Spec)
	}
}

// templateMissing reports whether a controller's template was left out: the field is a
// value in Kubernetes' types, so "missing" is "empty".
func templateMissing(t *corev1.PodTemplateSpec) bool {
	return equality.Semantic.DeepEqual(*t, corev1.PodTemplateSpec{})
}

func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = DefaultRestartPolicy
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = new(int64(DefaultTerminationGracePeriodSeconds))
	}
	// serviceAccount is serviceAccountName's deprecated alias: Kubernetes reads the
	// name from it when serviceAccountName is empty, and writes both. The pod's account
	// defaults to "default" in admission, as Kubernetes' does, not here: a template's
	// stays empty.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = DefaultDNSPolicy
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = new(true)
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	for i := range spec.Tolerations {
		if spec.Tolerations[i].Operator == "" {
			spec.Tolerations[i].Operator = DefaultTolerationOperator
		}
	}
	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i].VolumeSource)
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = PullPolicyFor(c.Image)
	}
	for j := range c.Ports {
		if c.Ports[j].Protocol == "" {
			c.Ports[j].Protocol = DefaultProtocol
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(pr)
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*corev1.LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil && h.HTTPGet != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
}

// The probe timings Kubernetes fills.
const (
	DefaultProbeTimeoutSeconds   = 1
	DefaultProbePeriodSeconds    = 10
	DefaultProbeSuccessThreshold = 1
	DefaultProbeFailureThreshold = 3
	DefaultVolumeFileMode        = corev1.ConfigMapVolumeSourceDefaultMode // 0644
	DefaultDNSPolicy             = corev1.DNSClusterFirst
)

func defaultProbe(pr *corev1.Probe) {
	if pr == nil {
		return
	}
	if pr.TimeoutSeconds == 0 {
		pr.TimeoutSeconds = DefaultProbeTimeoutSeconds
	}
	if pr.PeriodSeconds == 0 {
		pr.PeriodSeconds = DefaultProbePeriodSeconds
	}
	if pr.SuccessThreshold == 0 {
		pr.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if pr.FailureThreshold == 0 {
		pr.FailureThreshold = DefaultProbeFailureThreshold
	}
	if pr.HTTPGet != nil {
		defaultHTTPGet(pr.HTTPGet)
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultVolume(v *corev1.VolumeSource) {
	mode := func(m **int32) {
		if *m == nil {
			*m = new(int32(DefaultVolumeFileMode))
		}
	}
	switch {
	case v.Image != nil:
		if v.Image.PullPolicy == "" {
			v.Image.PullPolicy = PullPolicyFor(v.Image.Reference)
		}
	case v.ConfigMap != nil:
		mode(&v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		mode(&v.Secret.DefaultMode)
	case v.DownwardAPI != nil:
		mode(&v.DownwardAPI.DefaultMode)
		defaultDownwardAPIItems(v.DownwardAPI.Items)
	case v.Projected != nil:
		mode(&v.Projected.DefaultMode)
		for _, s := range v.Projected.Sources {
			if s.DownwardAPI != nil {
				defaultDownwardAPIItems(s.DownwardAPI.Items)
			}
			if t := s.ServiceAccountToken; t != nil && t.ExpirationSeconds == nil {
				t.ExpirationSeconds = new(int64(60 * 60))
			}
		}
	case v.HostPath != nil:
		if v.HostPath.Type == nil {
			v.HostPath.Type = new(corev1.HostPathUnset)
		}
	}
}

func defaultDownwardAPIItems(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if f := items[i].FieldRef; f != nil && f.APIVersion == "" {
			f.APIVersion = "v1"
		}
	}
}

// DefaultAdmitted fills a pod's defaults in what the built-in admission added to it
// after Default: the request of every resource a LimitRange gave a container a limit
// of and no request (a LimitRange's own defaults make that rare), and the operator of a
// RuntimeClass's tolerations (Equal, as Default gives the pod's own). Kubernetes
// defaults a pod once, on decode, before its admission; a pod defaulted and then
// admitted is, after this, as one defaulted again, without the walk of its whole spec.
func DefaultAdmitted(pod *corev1.Pod) {
	defaultRequestsFromLimits(&pod.Spec)
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].Operator == "" {
			pod.Spec.Tolerations[i].Operator = DefaultTolerationOperator
		}
	}
}

// defaultRequestsFromLimits gives a pod's containers a request equal to the limit of
// every resource they limit without requesting it (init containers too), as Kubernetes does for pods (not
// for templates: their pods get it when they are created).
func defaultRequestsFromLimits(spec *corev1.PodSpec) {
	for i := range spec.InitContainers {
		requestLimits(&spec.InitContainers[i].Resources)
	}
	for i := range spec.Containers {
		requestLimits(&spec.Containers[i].Resources)
	}
}

// requestLimits requests what r limits and does not request, as much as it limits.
func requestLimits(r *corev1.ResourceRequirements) {
	for name, lim := range r.Limits {
		if _, ok := r.Requests[name]; ok {
			continue
		}
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[name] = lim.DeepCopy()
	}
}

// PullPolicyFor is the imagePullPolicy Kubernetes gives a container of image: Always for
// a moving reference (":latest", or no tag and no digest), else IfNotPresent.
func PullPolicyFor(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	// The tag follows the last ':' of the last path component; an earlier ':' is a
	// registry's port ("localhost:5000/app").
	last := image[strings.LastIndexByte(image, '/')+1:]
	i := strings.LastIndexByte(last, ':')
	if i < 0 || last[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
