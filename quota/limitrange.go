package quota

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// LimitRangerAnnotation records on a pod the defaults a LimitRange gave it.
const LimitRangerAnnotation = "kubernetes.io/limit-ranger"

// DefaultPod is the mutating half of Kubernetes' LimitRanger: every container and init
// container of a new pod that does not say how much it asks for (a request) or may use
// (a limit) of a resource gets the Container items' defaultRequest and default, and the
// pod an annotation saying which it got.
func DefaultPod(ranges []*corev1.LimitRange, pod *corev1.Pod) {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	for _, lr := range ranges {
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypeContainer {
				continue
			}
			maps.Copy(requests, item.DefaultRequest)
			maps.Copy(limits, item.Default)
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return
	}
	var notes []string
	merge := func(c *corev1.Container, what string) {
		set := func(list *corev1.ResourceList, defaults corev1.ResourceList, which string) {
			var names []string
			for _, name := range slices.Sorted(maps.Keys(defaults)) {
				if _, ok := (*list)[name]; ok {
					continue
				}
				if *list == nil {
					*list = corev1.ResourceList{}
				}
				(*list)[name] = defaults[name].DeepCopy()
				names = append(names, string(name))
			}
			if len(names) > 0 {
				notes = append(notes, fmt.Sprintf("%s %s for %s %s", strings.Join(names, ", "), which, what, c.Name))
			}
		}
		set(&c.Resources.Requests, requests, "request")
		set(&c.Resources.Limits, limits, "limit")
	}
	for i := range pod.Spec.Containers {
		merge(&pod.Spec.Containers[i], "container")
	}
	for i := range pod.Spec.InitContainers {
		merge(&pod.Spec.InitContainers[i], "init container")
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[LimitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

// CheckPod is the validating half of Kubernetes' LimitRanger: each container and init
// container against the Container items' min, max and maxLimitRequestRatio, and the pod
// (its containers' sum, or an init container's if more) against the Pod items'. The
// error lists every violation of the first LimitRange violated, in Kubernetes' words;
// the caller says which pod is forbidden.
func CheckPod(ranges []*corev1.LimitRange, pod *corev1.Pod) error {
	for _, lr := range ranges {
		var errs []error
		for _, item := range lr.Spec.Limits {
			switch item.Type {
			case corev1.LimitTypeContainer:
				for i := range pod.Spec.Containers {
					c := &pod.Spec.Containers[i]
					errs = append(errs, checkItem(&item, c.Resources.Requests, c.Resources.Limits)...)
				}
				for i := range pod.Spec.InitContainers {
					c := &pod.Spec.InitContainers[i]
					errs = append(errs, checkItem(&item, c.Resources.Requests, c.Resources.Limits)...)
				}
			case corev1.LimitTypePod:
				errs = append(errs, checkItem(&item, PodRequests(pod), PodLimits(pod))...)
			}
		}
		if err := aggregate(errs); err != nil {
			return err
		}
	}
	return nil
}

// CheckClaim is Kubernetes' LimitRanger for a PersistentVolumeClaim: the storage it
// requests against the PersistentVolumeClaim items' min and max (a claim's limits are
// not the user's ask, so only its requests count), every violation of the first
// LimitRange violated, in Kubernetes' words; the caller says which claim is forbidden.
func CheckClaim(ranges []*corev1.LimitRange, pvc *corev1.PersistentVolumeClaim) error {
	requests := pvc.Spec.Resources.Requests
	for _, lr := range ranges {
		var errs []error
		for _, item := range lr.Spec.Limits {
			if item.Type != corev1.LimitTypePersistentVolumeClaim {
				continue
			}
			per := string(item.Type)
			for _, name := range slices.Sorted(maps.Keys(item.Min)) {
				if err := minConstraint(per, name, item.Min[name], requests, nil); err != nil {
					errs = append(errs, err)
				}
			}
			for _, name := range slices.Sorted(maps.Keys(item.Max)) {
				max := item.Max[name]
				req, ok := requests[name]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s.  No request is specified", name, per, max.String()))
				case req.Cmp(max) > 0:
					errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, per, max.String(), req.String()))
				}
			}
		}
		if err := aggregate(errs); err != nil {
			return err
		}
	}
	return nil
}

// aggregate joins errors as apimachinery's Aggregate prints them: one alone, several
// in brackets.
func aggregate(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New("[" + strings.Join(msgs, ", ") + "]")
}

// checkItem checks requests and limits against one LimitRange item.
func checkItem(item *corev1.LimitRangeItem, requests, limits corev1.ResourceList) []error {
	var errs []error
	per := string(item.Type)
	for _, name := range slices.Sorted(maps.Keys(item.Min)) {
		if err := minConstraint(per, name, item.Min[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(item.Max)) {
		if err := maxConstraint(per, name, item.Max[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(item.MaxLimitRequestRatio)) {
		if err := ratioConstraint(per, name, item.MaxLimitRequestRatio[name], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func minConstraint(per string, name corev1.ResourceName, min resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	switch {
	case !hasReq:
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, per, min.String())
	case req.Cmp(min) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, per, min.String(), req.String())
	case hasLim && lim.Cmp(min) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, per, min.String(), lim.String())
	}
	return nil
}

func maxConstraint(per string, name corev1.ResourceName, max resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	switch {
	case !hasLim:
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, per, max.String())
	case lim.Cmp(max) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, per, max.String(), lim.String())
	case hasReq && req.Cmp(max) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, per, max.String(), req.String())
	}
	return nil
}

func ratioConstraint(per string, name corev1.ResourceName, ratio resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	if !hasReq || req.IsZero() {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, per, ratio.String())
	}
	if !hasLim || lim.IsZero() {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, per, ratio.String())
	}
	// In thousandths where they fit, as Kubernetes compares them.
	reqV, limV, max := float64(req.Value()), float64(lim.Value()), float64(ratio.Value())
	if req.Value() <= resource.MaxMilliValue && lim.Value() <= resource.MaxMilliValue && ratio.Value() <= resource.MaxMilliValue {
		reqV, limV, max = float64(req.MilliValue()), float64(lim.MilliValue()), float64(ratio.MilliValue())/1000
	}
	if observed := limV / reqV; observed > max {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, per, ratio.String(), observed)
	}
	return nil
}
