package kubelet

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
)

// objects is what a container's configuration reads besides its pod: ConfigMaps and
// Secrets of the pod's namespace (objects.go caches them).
type objects interface {
	configMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// envResult is a container's environment, and the keys envFrom skipped because they are
// no variable names (Kubernetes warns of them in an event).
type envResult struct {
	env     []string
	skipped []string
}

// containerEnv is a container's environment as Kubernetes' kubelet makes it: envFrom's
// variables first (later sources win), then env in order, each value with $(VAR)
// references to variables defined before it expanded. A reference that cannot be
// resolved (a missing ConfigMap, Secret or key that is not optional) is an error, which
// keeps the container in CreateContainerConfigError, worded as Kubernetes words it.
// The services' variables (servicelinks.go) come last, those the container does not
// define itself; a $(VAR) may name them.
func containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, objs objects, hostIP, podIP string, allocatable corev1.ResourceList, services map[string]string) (envResult, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	var res envResult
	for _, from := range c.EnvFrom {
		var data map[string]string
		var what string
		switch {
		case from.ConfigMapRef != nil:
			ref := from.ConfigMapRef
			what = "configMap " + pod.Namespace + "/" + ref.Name
			cm, err := objs.configMap(ctx, pod.Namespace, ref.Name)
			if err != nil {
				if isNotFound(err) && ref.Optional != nil && *ref.Optional {
					continue
				}
				return res, notFoundAs(err, "configmap", ref.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			ref := from.SecretRef
			what = "secret " + pod.Namespace + "/" + ref.Name
			s, err := objs.secret(ctx, pod.Namespace, ref.Name)
			if err != nil {
				if isNotFound(err) && ref.Optional != nil && *ref.Optional {
					continue
				}
				return res, notFoundAs(err, "secret", ref.Name)
			}
			data = make(map[string]string, len(s.Data))
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		var bad []string
		for _, k := range slices.Sorted(maps.Keys(data)) {
			name := from.Prefix + k
			if len(utilvalidation.IsRelaxedEnvVarName(name)) > 0 {
				bad = append(bad, k)
				continue
			}
			set(name, data[k])
		}
		if len(bad) > 0 {
			res.skipped = append(res.skipped, fmt.Sprintf("Keys [%s] from the EnvFrom %s were skipped since they are considered invalid environment variable names.", strings.Join(bad, ", "), what))
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if vf := e.ValueFrom; vf != nil {
			var err error
			var ok bool
			v, ok, err = envValueFrom(ctx, pod, c, vf, objs, hostIP, podIP, allocatable)
			if err != nil {
				return res, err
			}
			if !ok {
				continue // an optional reference that is not there
			}
		} else {
			v = expandWith(v, vars, services)
		}
		set(e.Name, v)
	}
	res.env = make([]string, 0, len(order)+len(services))
	for _, k := range order {
		res.env = append(res.env, k+"="+vars[k])
	}
	for _, k := range slices.Sorted(maps.Keys(services)) {
		if _, ok := vars[k]; !ok {
			res.env = append(res.env, k+"="+services[k])
		}
	}
	return res, nil
}

func envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vf *corev1.EnvVarSource, objs objects, hostIP, podIP string, allocatable corev1.ResourceList) (string, bool, error) {
	switch {
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := objs.configMap(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if isNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, notFoundAs(err, "configmap", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if b, bok := cm.BinaryData[ref.Key]; bok {
				return string(b), true, nil
			}
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, true, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := objs.secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if isNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, notFoundAs(err, "secret", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), true, nil
	case vf.FieldRef != nil:
		v, err := fieldValue(pod, vf.FieldRef.FieldPath, hostIP, podIP)
		return v, err == nil, err
	case vf.ResourceFieldRef != nil:
		v, err := resourceValue(pod, c, vf.ResourceFieldRef, allocatable)
		return v, err == nil, err
	}
	return "", false, nil
}

// notFoundAs words a missing object as Kubernetes' kubelet does (`configmap "x" not
// found`); other errors pass.
func notFoundAs(err error, kind, name string) error {
	if isNotFound(err) {
		return fmt.Errorf("%s %q not found", kind, name)
	}
	return err
}

// fieldValue is a downward API field of the pod (Kubernetes' ExtractFieldPathAsString,
// with the pod's and host's IP).
func fieldValue(pod *corev1.Pod, path, hostIP, podIP string) (string, error) {
	if field, key, ok := strings.Cut(path, "['"); ok && strings.HasSuffix(key, "']") {
		key = strings.TrimSuffix(key, "']")
		switch field {
		case "metadata.labels":
			return pod.Labels[key], nil
		case "metadata.annotations":
			return pod.Annotations[key], nil
		}
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	case "status.podIP", "status.podIPs":
		// The node's address for a hostNetwork pod or without a pod network.
		return podIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// formatMap writes labels or annotations as the downward API's files hold them:
// key="value" lines, sorted, values quoted as Go does.
func formatMap(m map[string]string) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceValue is a downward API resource of a container (Kubernetes'
// ExtractContainerResourceValue): its limit, which defaults to the node's allocatable,
// or its request, divided by the divisor and rounded up.
func resourceValue(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	if ref.ContainerName != "" {
		c = nil
		for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range list {
				if list[i].Name == ref.ContainerName {
					c = &list[i]
				}
			}
		}
		if c == nil {
			return "", fmt.Errorf("container %q not found in pod %s/%s", ref.ContainerName, pod.Namespace, pod.Name)
		}
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	res := corev1.ResourceName(name)
	var q resource.Quantity
	var ok bool
	if kind == "limits" {
		q, ok = c.Resources.Limits[res]
		if !ok {
			q, ok = allocatable[res]
		}
	} else {
		q, ok = c.Resources.Requests[res]
	}
	if !ok && kind == "requests" {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if res == corev1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// expand replaces $(VAR) with VAR's value when defined, as Kubernetes expands env
// values, commands and args: $$ is a literal $, and an unknown reference stays as is.
func expand(s string, vars map[string]string) string { return expandWith(s, vars, nil) }

// expandWith is expand with the variables of vars, then of more (Kubernetes'
// MappingFuncFor(env, serviceEnv)).
func expandWith(s string, vars, more map[string]string) string {
	return expandFunc(s, func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		v, ok := more[name]
		return v, ok
	})
}

// expandFunc is Kubernetes' expansion.Expand: each $(NAME) becomes mapping's value,
// and stays as written when mapping has none; $$ is a $.
func expandFunc(s string, mapping func(name string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			if v, ok := mapping(s[i+2 : i+2+end]); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// expandAll expands each of args with env's variables.
func expandAll(args []string, env []string) []string {
	if len(args) == 0 {
		return args
	}
	vars := envMap(env)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expand(a, vars)
	}
	return out
}

// envMap is an environment of NAME=VALUE strings as a map.
func envMap(env []string) map[string]string {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

// expandSubPath is a volumeMount's subPathExpr expanded with the container's environment,
// as Kubernetes' kubelet expands it (ExpandContainerVolumeMounts, makeMounts): a variable
// that is not set, or empty, is an error, and so is a path that is absolute or goes up.
func expandSubPath(expr string, vars map[string]string) (string, error) {
	var missing []string
	sub := expandFunc(expr, func(name string) (string, bool) {
		v, ok := vars[name]
		if (!ok || v == "") && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return v, true
	})
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", fmt.Errorf("missing value for %s", strings.Join(missing, ", "))
	}
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	if slices.Contains(strings.Split(sub, "/"), "..") {
		return "", fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
	}
	return sub, nil
}
