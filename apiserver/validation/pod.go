package validation

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// The values Skiff takes, in the order an error lists them.
var (
	restartPolicies   = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure}
	pullPolicies      = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	protocols         = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}
	tolerationOps     = []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}
	tolerationEffects = []corev1.TaintEffect{"", corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule}
	taintEffects      = []corev1.TaintEffect{corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule}
	podPhases         = []corev1.PodPhase{corev1.PodFailed, corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodUnknown}
	conditionStatuses = []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}
	qosClasses        = []corev1.PodQOSClass{corev1.PodQOSBestEffort, corev1.PodQOSBurstable, corev1.PodQOSGuaranteed}
)

// validatePodSpec checks a pod's spec, standalone or inside a template. Fields Default
// fills may be empty: Validate accepts an object before or after Default.
func validatePodSpec(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes, verrs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, verrs...)
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	names := map[string]bool{}
	for _, list := range []struct {
		name string
		init bool
		cs   []corev1.Container
	}{{"initContainers", true, spec.InitContainers}, {"containers", false, spec.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			cp := p.Child(list.name).Index(i)
			errs = append(errs, validateContainer(c, volumes, spec.TerminationGracePeriodSeconds, list.init, cp)...)
			if c.Name != "" {
				if names[c.Name] {
					errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
				}
				names[c.Name] = true
			}
		}
	}
	if spec.RestartPolicy != "" {
		errs = append(errs, oneOfChild(p, "restartPolicy", spec.RestartPolicy, restartPolicies...)...)
	}
	if spec.OS != nil {
		// Skiff's nodes run Linux: a pod for Windows could run on none of them.
		errs = append(errs, oneOf(p.Child("os", "name"), spec.OS.Name, corev1.Linux)...)
	}
	if spec.NodeName != "" {
		errs = append(errs, invalidEach(p.Child("nodeName"), spec.NodeName, apivalidation.NameIsDNSSubdomain(spec.NodeName, false))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, invalidEach(p.Child("hostname"), spec.Hostname, utilvalidation.IsDNS1123Label(spec.Hostname))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, invalidEach(p.Child("subdomain"), spec.Subdomain, utilvalidation.IsDNS1123Label(spec.Subdomain))...)
	}
	for i, a := range spec.HostAliases {
		ap := p.Child("hostAliases").Index(i)
		errs = append(errs, validateIP(a.IP, ap.Child("ip"))...)
		for j, h := range a.Hostnames {
			errs = append(errs, invalidEach(ap.Child("hostnames").Index(j), h, utilvalidation.IsDNS1123Subdomain(h))...)
		}
	}
	if spec.ServiceAccountName != "" {
		errs = append(errs, invalidEach(p.Child("serviceAccountName"), spec.ServiceAccountName, apivalidation.NameIsDNSSubdomain(spec.ServiceAccountName, false))...)
	}
	// A field left empty has nothing to check: its path is made only for one that is set
	// (a valid pod's validation is on every write), its errors' paths as they were.
	if len(spec.NodeSelector) > 0 {
		errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	}
	for i := range spec.Tolerations {
		errs = append(errs, validateToleration(&spec.Tolerations[i], p.Child("tolerations").Index(i))...)
	}
	if spec.Affinity != nil {
		errs = append(errs, validateAffinity(spec.Affinity, p.Child("affinity"))...)
	}
	if len(spec.TopologySpreadConstraints) > 0 {
		errs = append(errs, validateTopologySpreadConstraints(spec.TopologySpreadConstraints, p.Child("topologySpreadConstraints"))...)
	}
	if spec.TerminationGracePeriodSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*spec.TerminationGracePeriodSeconds, p.Child("terminationGracePeriodSeconds"))...)
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxUint32) {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *d, utilvalidation.InclusiveRangeError(1, math.MaxUint32)))
	}
	errs = append(errs, validatePodSecurityContext(spec.SecurityContext, p.Child("securityContext"))...)
	errs = append(errs, validateDNS(spec, p)...)
	if spec.PriorityClassName != "" {
		errs = append(errs, invalidEach(p.Child("priorityClassName"), spec.PriorityClassName, apivalidation.NameIsDNSSubdomain(spec.PriorityClassName, false))...)
	}
	if spec.PreemptionPolicy != nil {
		errs = append(errs, validatePreemptionPolicy(spec.PreemptionPolicy, p.Child("preemptionPolicy"))...)
	}
	if spec.RuntimeClassName != nil {
		errs = append(errs, invalidEach(p.Child("runtimeClassName"), *spec.RuntimeClassName, apivalidation.NameIsDNSSubdomain(*spec.RuntimeClassName, false))...)
	}
	if len(spec.Overhead) > 0 {
		errs = append(errs, validateOverhead(spec.Overhead, p.Child("overhead"))...)
	}
	for i, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			errs = append(errs, invalidEach(p.Child("imagePullSecrets").Index(i).Child("name"), s.Name, apivalidation.NameIsDNSSubdomain(s.Name, false))...)
		}
	}
	return errs
}

// validateContainer checks one container, an init container when init: those run to
// completion, so they have no probes and no lifecycle hooks, unless they are sidecars
// (restartPolicy Always, the one value an init container's may have, as in Kubernetes):
// those keep running beside the app containers.
func validateContainer(c *corev1.Container, volumes map[string]*corev1.Volume, grace *int64, init bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, invalidEach(p.Child("name"), c.Name, utilvalidation.IsDNS1123Label(c.Name))...)
	}
	switch {
	case c.Image == "":
		errs = append(errs, field.Required(p.Child("image"), ""))
	case strings.TrimSpace(c.Image) != c.Image:
		errs = append(errs, field.Invalid(p.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	if c.ImagePullPolicy != "" {
		errs = append(errs, oneOfChild(p, "imagePullPolicy", c.ImagePullPolicy, pullPolicies...)...)
	}
	portNames := map[string]bool{}
	for i := range c.Ports {
		port := &c.Ports[i]
		pp := p.Child("ports").Index(i)
		errs = append(errs, validateContainerPort(port, pp)...)
		if port.Name != "" {
			if portNames[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			portNames[port.Name] = true
		}
	}
	// As a pod spec's: the path of a field left empty is not made.
	if len(c.Env) > 0 {
		errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	}
	if len(c.VolumeMounts) > 0 {
		errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, p.Child("volumeMounts"))...)
	}
	sidecar := false
	if init && c.RestartPolicy != nil {
		sidecar = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if !sidecar {
			errs = append(errs, field.NotSupported(p.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
		}
	}
	if init && !sidecar {
		const msg = "may not be set for init containers without restartPolicy=Always"
		for _, f := range []struct {
			name string
			set  bool
		}{{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil}} {
			if f.set {
				errs = append(errs, field.Forbidden(p.Child(f.name), msg))
			}
		}
	} else {
		if c.LivenessProbe != nil {
			errs = append(errs, validateProbe(c.LivenessProbe, p.Child("livenessProbe"), false, true)...)
		}
		if c.ReadinessProbe != nil {
			errs = append(errs, validateProbe(c.ReadinessProbe, p.Child("readinessProbe"), true, false)...)
		}
		if c.StartupProbe != nil {
			errs = append(errs, validateProbe(c.StartupProbe, p.Child("startupProbe"), false, true)...)
		}
		if c.Lifecycle != nil {
			errs = append(errs, validateLifecycle(c.Lifecycle, grace, p.Child("lifecycle"))...)
		}
	}
	if c.SecurityContext != nil {
		errs = append(errs, validateSecurityContext(c.SecurityContext, p.Child("securityContext"))...)
	}
	errs = append(errs, validateTerminationMessage(c, p)...)
	return append(errs, validateResources(&c.Resources, p.Child("resources"))...)
}

func validateContainerPort(port *corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Name != "" {
		errs = append(errs, invalidEach(p.Child("name"), port.Name, utilvalidation.IsValidPortName(port.Name))...)
	}
	if port.ContainerPort == 0 {
		errs = append(errs, field.Required(p.Child("containerPort"), ""))
	} else {
		errs = append(errs, invalidEach(p.Child("containerPort"), port.ContainerPort, utilvalidation.IsValidPortNum(int(port.ContainerPort)))...)
	}
	if port.HostPort != 0 {
		errs = append(errs, invalidEach(p.Child("hostPort"), port.HostPort, utilvalidation.IsValidPortNum(int(port.HostPort)))...)
	}
	if port.Protocol != "" {
		errs = append(errs, oneOfChild(p, "protocol", port.Protocol, protocols...)...)
	}
	if port.HostIP != "" {
		errs = append(errs, validateIP(port.HostIP, p.Child("hostIP"))...)
	}
	return errs
}

// validateIP checks an address field, as Kubernetes checks the ones that predate its
// strict parsing, with the strict rules on (no leading zeros, no IPv4-mapped IPv6).
func validateIP(ip string, p *field.Path) field.ErrorList {
	return utilvalidation.IsValidIPForLegacyField(p, ip, true, nil)
}

// validateResources checks a container's requests and limits. Extended resources
// (example.com/dongle) are whole units and cannot be overcommitted: a request needs a
// limit, and the two must be equal, as in Kubernetes.
func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	lp, rp := p.Child("limits"), p.Child("requests")
	errs := validateResourceList(r.Limits, lp)
	errs = append(errs, validateResourceList(r.Requests, rp)...)
	var buf [resourceNamesOnStack]corev1.ResourceName
	for _, list := range [...]struct {
		l corev1.ResourceList
		p *field.Path
	}{{r.Limits, lp}, {r.Requests, rp}} {
		for _, name := range resourceNames(list.l, buf[:0]) {
			errs = append(errs, validateContainerResource(name, list.l[name], list.p, true)...)
		}
	}
	for _, name := range resourceNames(r.Requests, buf[:0]) {
		req := r.Requests[name]
		lim, ok := r.Limits[name]
		switch {
		case ok && kinds.IsExtendedResourceName(name) && req.Cmp(lim) != 0:
			errs = append(errs, field.Invalid(rp, req.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
		case ok && req.Cmp(lim) > 0:
			errs = append(errs, field.Invalid(rp.Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		case !ok && kinds.IsExtendedResourceName(name):
			errs = append(errs, field.Required(lp, "Limit must be set for non overcommitable resources"))
		}
	}
	return errs
}

// validateContainerResource checks what a container may ask for by name, as Kubernetes
// does: cpu, memory, ephemeral-storage, a resource of Kubernetes' own domain
// (kubernetes.io/...), or an extended resource, counted in whole units; hugepages-<size>
// is not supported by Skiff.
func validateContainerResource(name corev1.ResourceName, q resource.Quantity, at *field.Path, keyed bool) field.ErrorList {
	// The error's path: at, or at's key name when keyed, made only for an error.
	path := func() *field.Path {
		if keyed {
			return at.Key(string(name))
		}
		return at
	}
	switch {
	case strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
		// Refused rather than ignored: the kubelet would neither limit them (hugetlb
		// cgroup) nor report them in the node's capacity (docs/pods.md).
		return field.ErrorList{field.Forbidden(path(), notSupportedMsg)}
	case !strings.Contains(string(name), "/"):
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory && name != corev1.ResourceEphemeralStorage {
			return field.ErrorList{field.Invalid(path(), string(name), "must be a standard resource for containers")}
		}
	case !kinds.IsNativeResource(name) && !kinds.IsExtendedResourceName(name):
		return field.ErrorList{field.Invalid(path(), string(name), "doesn't follow extended resource name standard")}
	}
	if kinds.IsExtendedResourceName(name) && q.MilliValue()%1000 != 0 {
		return field.ErrorList{field.Invalid(path(), q.String(), "must be an integer")}
	}
	return nil
}

// validateResourceList checks the names and amounts of resources (requests, limits, a
// node's capacity). The quantities parsed when the object was decoded.
func validateResourceList(list corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var buf [resourceNamesOnStack]corev1.ResourceName
	for _, name := range resourceNames(list, buf[:0]) {
		if standardResource(name) {
			// a valid label key: the check's split of the name is not made
		} else if msgs := content.IsLabelKey(string(name)); len(msgs) > 0 {
			errs = append(errs, invalidEach(p.Key(string(name)), string(name), msgs)...)
		}
		if q := list[name]; q.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Key(string(name)), q.String(), apivalidation.IsNegativeErrorMsg))
		}
	}
	return errs
}

// resourceNamesOnStack is how many names resourceNames sorts in its caller's array:
// more than a pod's lists hold, in practice.
const resourceNamesOnStack = 8

// resourceNames is list's names in order (errors are reported in it), appended to buf,
// which its callers keep on their stacks: every pod written is validated, and the
// sorted copies of its containers' lists were a quarter of its validation's
// allocations.
func resourceNames(list corev1.ResourceList, buf []corev1.ResourceName) []corev1.ResourceName {
	for name := range list {
		buf = append(buf, name)
	}
	slices.Sort(buf)
	return buf
}

func validateToleration(t *corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	op := t.Operator
	if op == "" {
		op = DefaultTolerationOperator
	}
	if t.Key != "" {
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
	} else if op != corev1.TolerationOpExists {
		errs = append(errs, field.Invalid(p.Child("operator"), string(op),
			"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
	}
	switch op {
	case corev1.TolerationOpEqual:
		errs = append(errs, invalidEach(p.Child("value"), t.Value, content.IsLabelValue(t.Value))...)
	case corev1.TolerationOpExists:
		if t.Value != "" {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
		}
	default:
		errs = append(errs, oneOfChild(p, "operator", op, tolerationOps...)...)
	}
	errs = append(errs, oneOfChild(p, "effect", t.Effect, tolerationEffects...)...)
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		errs = append(errs, field.Invalid(p.Child("effect"), string(t.Effect), "effect must be 'NoExecute' when `tolerationSeconds` is set"))
	}
	return errs
}

// validatePodTemplate checks a Deployment's or ReplicaSet's template: its pods are
// restarted by the controller, never left finished, so only restartPolicy Always makes
// sense.
func validatePodTemplate(t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	if templateMissing(t) {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := validateTemplateMeta(&t.ObjectMeta, p.Child("metadata"))
	sp := p.Child("spec")
	errs = append(errs, validatePodSpec(&t.Spec, sp)...)
	if rp := t.Spec.RestartPolicy; rp == corev1.RestartPolicyOnFailure || rp == corev1.RestartPolicyNever {
		errs = append(errs, oneOfChild(sp, "restartPolicy", rp, corev1.RestartPolicyAlways)...)
	}
	return errs
}

const podUpdateMsg = "pod updates may not change fields other than `spec.containers[*].image`, " +
	"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` " +
	"and `spec.tolerations` (only additions to existing tolerations)"

// validatePodSpecUpdate enforces that a pod's spec is fixed once created, but for
// container images, a deadline set or shortened, and added tolerations, as in Kubernetes. nodeName is set by Bind,
// not by update.
func validatePodSpecUpdate(old, spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	// Compare defaulted copies, so a default filled on one side only is not a change.
	old, spec = defaultedPodSpec(old), defaultedPodSpec(spec)
	// Take the changes that are allowed into a copy of old; whatever still differs is not.
	allowed := old.DeepCopy()
	if len(allowed.Containers) == len(spec.Containers) {
		for i := range allowed.Containers {
			allowed.Containers[i].Image = spec.Containers[i].Image
		}
	}
	if len(allowed.InitContainers) == len(spec.InitContainers) {
		for i := range allowed.InitContainers {
			allowed.InitContainers[i].Image = spec.InitContainers[i].Image
		}
	}
	// A deadline may be set, or shortened, never lifted or extended.
	if d := spec.ActiveDeadlineSeconds; d != nil && (old.ActiveDeadlineSeconds == nil || *d <= *old.ActiveDeadlineSeconds) {
		allowed.ActiveDeadlineSeconds = d
	}
	if tolerationsAdded(old.Tolerations, spec.Tolerations) {
		allowed.Tolerations = spec.Tolerations
	}
	if equality.Semantic.DeepEqual(allowed, spec) {
		return nil
	}
	changed := changedFields(p, reflect.ValueOf(allowed).Elem(), reflect.ValueOf(spec).Elem())
	return field.ErrorList{field.Forbidden(p, podUpdateMsg+" (changed: "+strings.Join(changed, ", ")+")")}
}

func defaultedPodSpec(spec *corev1.PodSpec) *corev1.PodSpec {
	spec = spec.DeepCopy()
	defaultPodSpec(spec)
	return spec
}

// tolerationsAdded reports whether next keeps every toleration of old.
func tolerationsAdded(old, next []corev1.Toleration) bool {
	for _, t := range old {
		if !slices.ContainsFunc(next, func(n corev1.Toleration) bool { return equality.Semantic.DeepEqual(t, n) }) {
			return false
		}
	}
	return true
}

// changedFields names the fields of a and b (structs of one type) that differ, by their
// JSON paths; in lists of structs of the same length it names the elements' fields.
func changedFields(p *field.Path, a, b reflect.Value) []string {
	var out []string
	for _, f := range jsonFields(a.Type()) {
		x, y := a.FieldByIndex(f.index), b.FieldByIndex(f.index)
		if equality.Semantic.DeepEqual(x.Interface(), y.Interface()) {
			continue
		}
		fp := p.Child(f.name)
		if x.Kind() == reflect.Slice && x.Type().Elem().Kind() == reflect.Struct && x.Len() == y.Len() {
			for i := range x.Len() {
				out = append(out, changedFields(fp.Index(i), x.Index(i), y.Index(i))...)
			}
			continue
		}
		out = append(out, fp.String())
	}
	return out
}

func validatePodStatus(st *corev1.PodStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st.Phase != "" {
		errs = append(errs, oneOfChild(p, "phase", st.Phase, podPhases...)...)
	}
	for i, c := range st.Conditions {
		errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
	}
	if st.HostIP != "" {
		errs = append(errs, validateIP(st.HostIP, p.Child("hostIP"))...)
	}
	if st.PodIP != "" {
		errs = append(errs, validateIP(st.PodIP, p.Child("podIP"))...)
	}
	for i, ip := range st.PodIPs {
		ipp := p.Child("podIPs").Index(i).Child("ip")
		errs = append(errs, validateIP(ip.IP, ipp)...)
		if i == 0 && st.PodIP != "" && ip.IP != st.PodIP {
			errs = append(errs, field.Invalid(ipp, ip.IP, "must match status.podIP"))
		}
	}
	for i, ip := range st.HostIPs {
		errs = append(errs, validateIP(ip.IP, p.Child("hostIPs").Index(i).Child("ip"))...)
	}
	if st.QOSClass != "" {
		errs = append(errs, oneOfChild(p, "qosClass", st.QOSClass, qosClasses...)...)
	}
	for _, list := range []struct {
		name string
		cs   []corev1.ContainerStatus
	}{{"initContainerStatuses", st.InitContainerStatuses}, {"containerStatuses", st.ContainerStatuses}} {
		for i, cs := range list.cs {
			cp := p.Child(list.name).Index(i)
			if cs.Name == "" {
				errs = append(errs, field.Required(cp.Child("name"), ""))
			}
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(cs.RestartCount), cp.Child("restartCount"))...)
		}
	}
	return errs
}

// validateCondition checks the two fields every condition has.
func validateCondition(typ string, status corev1.ConditionStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if typ == "" {
		errs = append(errs, field.Required(p.Child("type"), ""))
	}
	return append(errs, oneOfChild(p, "status", status, conditionStatuses...)...)
}

// standardResource reports whether name is one of the resources a container may ask
// for by a bare name (cpu, memory, ephemeral-storage).
func standardResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage
}
