package skiffctl_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/test/apicluster"
)

// The fields the API server adds to what a user applies: server-owned metadata, the
// status, and the defaults Kubernetes itself fills for the fields Skiff acts on. Paths
// use [*] for any list element.
var serverOwned = []string{
	"metadata.uid", "metadata.resourceVersion", "metadata.creationTimestamp", "metadata.generation",
	"metadata.namespace", "status",
	// What apply itself adds, as kubectl apply does: the configuration it applied.
	"metadata.annotations.kubectl.kubernetes.io/last-applied-configuration",
}

var defaultsByKind = map[string][]string{
	// The Priority admission gives every pod its class's priority and preemption policy
	// (0 and PreemptLowerPriority without one), as Kubernetes' does.
	"Pod": append(podDefaults(""), "spec.priority", "spec.preemptionPolicy"),
	"Deployment": append(podDefaults("spec.template."), "spec.replicas", "spec.strategy.type",
		"spec.strategy.rollingUpdate.maxSurge", "spec.strategy.rollingUpdate.maxUnavailable",
		"spec.revisionHistoryLimit", "spec.progressDeadlineSeconds"),
	"ReplicaSet": append(podDefaults("spec.template."), "spec.replicas"),
	"Namespace":  {"spec.finalizers", "metadata.labels.kubernetes.io/metadata.name"},
	"ConfigMap":  nil,
	"Node":       nil,
	"Lease":      nil,
	"Secret":     nil,
	// automountServiceAccountToken is the manifest's own.
	"ServiceAccount": nil,
}

func podDefaults(prefix string) []string {
	var out []string
	for _, p := range []string{"spec.restartPolicy", "spec.terminationGracePeriodSeconds", "spec.dnsPolicy",
		"spec.enableServiceLinks", "spec.securityContext", "spec.tolerations[*].operator",
		"spec.volumes[*].configMap.defaultMode", "spec.volumes[*].secret.defaultMode", "spec.volumes[*].downwardAPI.defaultMode",
		"spec.volumes[*].projected.defaultMode", "spec.volumes[*].hostPath.type", "spec.volumes[*].downwardAPI.items[*].fieldRef.apiVersion"} {
		out = append(out, prefix+p)
	}
	for _, c := range []string{"containers", "initContainers"} {
		for _, p := range []string{"imagePullPolicy", "ports[*].protocol", "terminationMessagePath", "terminationMessagePolicy",
			"resources.requests", "env[*].valueFrom.fieldRef.apiVersion",
			"livenessProbe.timeoutSeconds", "livenessProbe.periodSeconds", "livenessProbe.successThreshold", "livenessProbe.failureThreshold",
			"readinessProbe.timeoutSeconds", "readinessProbe.periodSeconds", "readinessProbe.successThreshold", "readinessProbe.failureThreshold",
			"startupProbe.timeoutSeconds", "startupProbe.periodSeconds", "startupProbe.successThreshold", "startupProbe.failureThreshold",
			"livenessProbe.httpGet.scheme", "readinessProbe.httpGet.scheme", "startupProbe.httpGet.scheme",
			"livenessProbe.httpGet.path", "readinessProbe.httpGet.path", "startupProbe.httpGet.path"} {
			out = append(out, prefix+"spec."+c+"[*]."+p)
		}
	}
	return out
}

// quantityPath: values there are quantities, which Kubernetes stores in canonical form
// (cpu: 0.5 reads back as 500m): compared as quantities.
var quantityPath = regexp.MustCompile(`\.resources\.(requests|limits)\.[^.]+$`)

var index = regexp.MustCompile(`\[\d+\]`)

// TestManifestsReadBackUnchanged applies Kubernetes-documentation manifests of every kind
// Skiff has, reads each back with -o json, and finds every field of the input unchanged;
// the only new fields are the server's own and the defaults listed above.
func TestManifestsReadBackUnchanged(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	files, err := filepath.Glob("testdata/roundtrip/*.yaml")
	if err != nil || len(files) < 12 {
		t.Fatalf("manifests: %v %v", files, err)
	}
	// Namespaces first: other manifests live in them.
	sort.SliceStable(files, func(i, j int) bool {
		return strings.Contains(files[i], "namespace") && !strings.Contains(files[j], "namespace")
	})
	kinds := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]any{}
			if err := yaml.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			kind := in["kind"].(string)
			md := in["metadata"].(map[string]any)
			kinds[kind] = true
			must(t, s, "apply", "-f", f)
			args := []string{"get", strings.ToLower(kind), md["name"].(string), "-o", "json"}
			if ns, ok := md["namespace"].(string); ok {
				args = append(args, "-n", ns)
			}
			out := map[string]any{}
			if err := json.Unmarshal([]byte(must(t, s, args...)), &out); err != nil {
				t.Fatal(err)
			}
			for _, p := range compare("", in, out) {
				t.Errorf("%s: %s", kind, p)
			}
			allowed := append(append([]string{}, serverOwned...), defaultsByKind[kind]...)
			for _, p := range added("", in, out) {
				if !allowedPath(index.ReplaceAllString(p, "[*]"), allowed) {
					t.Errorf("%s: the server added %s, which is neither its own nor a default Kubernetes fills", kind, p)
				}
			}
		})
	}
	for _, k := range []string{"Pod", "Deployment", "ReplicaSet", "ConfigMap", "Namespace", "Node", "Lease", "Secret", "ServiceAccount"} {
		if !kinds[k] {
			t.Errorf("no manifest of kind %s", k)
		}
	}

	// A misspelled field names its path; a Kubernetes field Skiff does not act on says so.
	bad := strings.Replace(mustRead(t, "testdata/roundtrip/01-nginx-deployment.yaml"), "image: nginx:1.14.2", "image: nginx:1.14.2\n        imagePullPolcy: Always", 1)
	fails(t, s, bad, "spec.template.spec.containers[0].imagePullPolcy: unknown field", "apply", "-f", "-")
	claims := strings.Replace(mustRead(t, "testdata/roundtrip/01-nginx-deployment.yaml"), "containers:", "resourceClaims: [{name: gpu, resourceClaimName: gpu}]\n      containers:", 1)
	fails(t, s, claims, "spec.template.spec.resourceClaims: Forbidden: not supported by Skiff", "apply", "-f", "-")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compare reports every leaf of in that out does not hold with the same value.
func compare(path string, in, out any) []string {
	switch iv := in.(type) {
	case map[string]any:
		om, ok := out.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: a mapping became %v", path, out)}
		}
		var diffs []string
		for k, v := range iv {
			diffs = append(diffs, compare(join(path, k), v, om[k])...)
		}
		return diffs
	case []any:
		ol, ok := out.([]any)
		if !ok || len(ol) != len(iv) {
			return []string{fmt.Sprintf("%s: a list of %d became %v", path, len(iv), out)}
		}
		var diffs []string
		for i := range iv {
			diffs = append(diffs, compare(fmt.Sprintf("%s[%d]", path, i), iv[i], ol[i])...)
		}
		return diffs
	}
	if quantityPath.MatchString(path) {
		a, aerr := resource.ParseQuantity(fmt.Sprint(in))
		b, berr := resource.ParseQuantity(fmt.Sprint(out))
		if aerr == nil && berr == nil && a.Cmp(b) == 0 {
			return nil
		}
	}
	if fmt.Sprint(in) != fmt.Sprint(out) {
		return []string{fmt.Sprintf("%s: %v read back as %v", path, in, out)}
	}
	return nil
}

// added lists the paths of the leaves of out that in does not have; empty values (a zero
// struct printed as {}) are not additions.
func added(path string, in, out any) []string {
	switch ov := out.(type) {
	case map[string]any:
		im, _ := in.(map[string]any)
		var paths []string
		for k, v := range ov {
			iv, ok := im[k]
			switch {
			case ok:
				paths = append(paths, added(join(path, k), iv, v)...)
			case empty(v):
			case isMap(v):
				paths = append(paths, added(join(path, k), nil, v)...)
			default:
				paths = append(paths, join(path, k))
			}
		}
		return paths
	case []any:
		il, _ := in.([]any)
		var paths []string
		for i := range ov {
			if i < len(il) {
				paths = append(paths, added(fmt.Sprintf("%s[%d]", path, i), il[i], ov[i])...)
			}
		}
		return paths
	}
	return nil
}

func isMap(v any) bool { _, ok := v.(map[string]any); return ok }

func empty(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for _, x := range t {
			if !empty(x) {
				return false
			}
		}
		return true
	case []any:
		return len(t) == 0
	}
	return v == nil
}

func allowedPath(p string, allowed []string) bool {
	for _, a := range allowed {
		if p == a || strings.HasPrefix(p, a+".") || strings.HasPrefix(p, a+"[") {
			return true
		}
	}
	return false
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
