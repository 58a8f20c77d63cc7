package validation

import (
	"fmt"
	"reflect"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/quota"
)

// The pod's own subresources that write its spec: pods/ephemeralcontainers adds
// ephemeral containers, pods/resize changes its containers' resources. Each takes only
// its fields of the written pod (the API server's PrepareEphemeralContainers and
// PrepareResize) and checks the result here, in Kubernetes' words.

// allowedEphemeralFields are the fields of an ephemeral container that may be set, as
// Kubernetes lists them: an ephemeral container is not relied upon for the pod's work,
// so it has no ports, probes, hooks or resources.
var allowedEphemeralFields = map[string]bool{
	"Name": true, "Image": true, "Command": true, "Args": true, "WorkingDir": true, "EnvFrom": true, "Env": true,
	"VolumeMounts": true, "VolumeDevices": true, "TerminationMessagePath": true, "TerminationMessagePolicy": true,
	"ImagePullPolicy": true, "SecurityContext": true, "Stdin": true, "StdinOnce": true, "TTY": true,
}

const ephemeralForbiddenMsg = "cannot be set for an Ephemeral Container"

// PrepareEphemeralContainers is the pod a write through pods/ephemeralcontainers makes
// of old: old with written's ephemeral containers, nothing else of written.
func PrepareEphemeralContainers(old, written *corev1.Pod) *corev1.Pod {
	next := old.DeepCopy()
	next.Spec.EphemeralContainers = written.Spec.EphemeralContainers
	return next
}

// PrepareResize is the pod a write through pods/resize makes of old: old with the
// resources and resize policies of written's containers (by name), nothing else.
func PrepareResize(old, written *corev1.Pod) *corev1.Pod {
	next := old.DeepCopy()
	// Another number or order of containers is refused by ValidateResize, which needs
	// to see it: take written's lists then, and let the check name the change.
	if len(written.Spec.Containers) != len(old.Spec.Containers) || len(written.Spec.InitContainers) != len(old.Spec.InitContainers) {
		next.Spec.Containers, next.Spec.InitContainers = written.Spec.Containers, written.Spec.InitContainers
		return next
	}
	for _, l := range []struct{ to, from []corev1.Container }{{next.Spec.Containers, written.Spec.Containers}, {next.Spec.InitContainers, written.Spec.InitContainers}} {
		for i := range l.to {
			if l.to[i].Name != l.from[i].Name {
				l.to[i].Name = l.from[i].Name // refused: "may not be renamed or reordered"
				continue
			}
			l.to[i].Resources = l.from[i].Resources
			l.to[i].ResizePolicy = l.from[i].ResizePolicy
		}
	}
	return next
}

// ValidateEphemeralContainersUpdate checks pod, written through pods/ephemeralcontainers
// over old: the pod as a whole, and that the ephemeral containers old has are kept
// unchanged (by name: a patch does not keep their order), as Kubernetes'
// ValidatePodEphemeralContainersUpdate.
func ValidateEphemeralContainersUpdate(old, pod *corev1.Pod) error {
	errs := validateObject(pod)
	errs = append(errs, validateEphemeralContainers(&pod.Spec, field.NewPath("spec", "ephemeralContainers"))...)
	p := field.NewPath("spec", "ephemeralContainers")
	byName := map[string]*corev1.EphemeralContainer{}
	for i := range pod.Spec.EphemeralContainers {
		byName[pod.Spec.EphemeralContainers[i].Name] = &pod.Spec.EphemeralContainers[i]
	}
	for _, o := range old.Spec.EphemeralContainers {
		n, ok := byName[o.Name]
		switch {
		case !ok:
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("existing ephemeral containers %q may not be removed\n", o.Name)))
		case !equality.Semantic.DeepEqual(o, *n):
			changed := changedFields(p.Key(o.Name), reflect.ValueOf(o), reflect.ValueOf(*n))
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("existing ephemeral containers %q may not be changed\n%v", o.Name, changed)))
		}
	}
	return asError(errs)
}

// validateEphemeralContainers checks a pod's ephemeral containers, as Kubernetes'
// validateEphemeralContainers: each as a container, with a name unique among all the
// pod's containers, a targetContainerName naming one of its other containers, and only
// the fields an ephemeral container may have.
func validateEphemeralContainers(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	if len(spec.EphemeralContainers) == 0 {
		return nil
	}
	volumes, _ := validateVolumes(spec.Volumes, field.NewPath("spec", "volumes")) // their errors are validatePodSpec's
	others, all := map[string]bool{}, map[string]bool{}
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range list {
			others[c.Name], all[c.Name] = true, true
		}
	}
	var errs field.ErrorList
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i]
		ip := p.Index(i)
		c := (*corev1.Container)(&ec.EphemeralContainerCommon)
		errs = append(errs, validateContainer(c, volumes, spec.TerminationGracePeriodSeconds, false, ip)...)
		if all[ec.Name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), ec.Name))
		} else {
			all[ec.Name] = true
		}
		if ec.TargetContainerName != "" && !others[ec.TargetContainerName] {
			errs = append(errs, field.NotFound(ip.Child("targetContainerName"), ec.TargetContainerName))
		}
		errs = append(errs, allowedFieldsOnly(reflect.ValueOf(ec.EphemeralContainerCommon), allowedEphemeralFields, ephemeralForbiddenMsg, ip)...)
		for j, vm := range ec.VolumeMounts {
			if vm.SubPath != "" {
				errs = append(errs, field.Forbidden(ip.Child("volumeMounts").Index(j).Child("subPath"), ephemeralForbiddenMsg))
			}
			if vm.SubPathExpr != "" {
				errs = append(errs, field.Forbidden(ip.Child("volumeMounts").Index(j).Child("subPathExpr"), ephemeralForbiddenMsg))
			}
		}
	}
	return errs
}

// allowedFieldsOnly refuses each field of v, a struct, that is set and not allowed, by
// its name with a lower-case first letter (Kubernetes' validateFieldAllowList).
func allowedFieldsOnly(v reflect.Value, allowed map[string]bool, msg string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if allowed[f.Name] || v.Field(i).IsZero() {
			continue
		}
		r, n := utf8.DecodeRuneInString(f.Name)
		errs = append(errs, field.Forbidden(p.Child(string(unicode.ToLower(r))+f.Name[n:]), msg))
	}
	return errs
}

// ValidateResize checks pod, written through pods/resize over old, as Kubernetes'
// ValidatePodResize: the pod as a whole; the same containers in the same order; only
// the cpu and memory of app containers and sidecars changed, none removed; the QoS class
// kept.
func ValidateResize(old, pod *corev1.Pod) error {
	errs := validateObject(pod)
	sp := field.NewPath("spec")
	if old.Spec.OS != nil && old.Spec.OS.Name == corev1.Windows {
		return asError(field.ErrorList{field.Forbidden(field.NewPath(""), "windows pods cannot be resized")})
	}
	if quota.QOSClass(&old.Spec) != quota.QOSClass(&pod.Spec) {
		errs = append(errs, field.Invalid(sp, pod.Status.QOSClass, "Pod QOS Class may not change as a result of resizing"))
	}
	if order := resizeOrder(old, pod, sp); len(order) > 0 {
		return asError(append(errs, order...))
	}
	for i := range old.Spec.InitContainers {
		if isSidecar(&old.Spec.InitContainers[i]) {
			errs = append(errs, resourcesKept(&pod.Spec.InitContainers[i].Resources, &old.Spec.InitContainers[i].Resources, sp.Child("initContainers").Index(i).Child("resources"))...)
		}
	}
	for i := range old.Spec.Containers {
		errs = append(errs, resourcesKept(&pod.Spec.Containers[i].Resources, &old.Spec.Containers[i].Resources, sp.Child("containers").Index(i).Child("resources"))...)
	}
	// What is left once cpu and memory are taken back must be what old has.
	rest := pod.Spec.DeepCopy()
	for i := range rest.Containers {
		keepOtherResources(&rest.Containers[i], &old.Spec.Containers[i])
		if !equality.Semantic.DeepEqual(rest.Containers[i], old.Spec.Containers[i]) {
			errs = append(errs, field.Forbidden(sp, "only cpu and memory resources are mutable"))
		}
	}
	for i := range rest.InitContainers {
		c, o := &rest.InitContainers[i], &old.Spec.InitContainers[i]
		changed := !equality.Semantic.DeepEqual(*c, *o)
		switch {
		case isSidecar(o):
			keepOtherResources(c, o)
			if !equality.Semantic.DeepEqual(*c, *o) {
				errs = append(errs, field.Forbidden(sp.Child("initContainers").Index(i), "only cpu and memory resources for init or sidecar containers are mutable"))
			}
		case changed:
			errs = append(errs, field.Forbidden(sp, "resources for non-sidecar init containers are immutable"))
		}
		*c = *o
	}
	if len(errs) == 0 && !equality.Semantic.DeepEqual(*rest, old.Spec) {
		errs = append(errs, field.Forbidden(sp, "only cpu and memory resources are mutable"))
	}
	return asError(errs)
}

// isSidecar: an init container that keeps running (restartPolicy Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// resizeOrder refuses containers added, removed, renamed or reordered by a resize.
func resizeOrder(old, pod *corev1.Pod, sp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, l := range []struct {
		name     string
		old, new []corev1.Container
	}{{"containers", old.Spec.Containers, pod.Spec.Containers}, {"initContainers", old.Spec.InitContainers, pod.Spec.InitContainers}} {
		if len(l.old) != len(l.new) {
			errs = append(errs, field.Forbidden(sp.Child(l.name), l.name+" may not be added or removed on resize"))
			continue
		}
		for i := range l.old {
			if l.old[i].Name != l.new[i].Name {
				errs = append(errs, field.Forbidden(sp.Child(l.name).Index(i).Child("name"), l.name+" may not be renamed or reordered on resize"))
			}
		}
	}
	return errs
}

// resourcesKept refuses a request or limit a resize removes.
func resourcesKept(next, old *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if removed(next.Requests, old.Requests) {
		errs = append(errs, field.Forbidden(p.Child("requests"), "resource requests cannot be removed"))
	}
	if removed(next.Limits, old.Limits) {
		errs = append(errs, field.Forbidden(p.Child("limits"), "resource limits cannot be removed"))
	}
	return errs
}

func removed(next, old corev1.ResourceList) bool {
	for name := range old {
		if _, ok := next[name]; !ok {
			return true
		}
	}
	return false
}

// keepOtherResources puts old's cpu and memory and resize policy back into c: what a
// resize may change of a container, so that what is left to compare is the rest.
func keepOtherResources(c, old *corev1.Container) {
	c.Resources.Requests = withCPUMemoryOf(c.Resources.Requests, old.Resources.Requests)
	c.Resources.Limits = withCPUMemoryOf(c.Resources.Limits, old.Resources.Limits)
	c.ResizePolicy = old.ResizePolicy
}

// withCPUMemoryOf is list with its cpu and memory as from has them (absent where from
// has none).
func withCPUMemoryOf(list, from corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range list {
		if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			out[name] = q
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := from[name]; ok {
			out[name] = q
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
