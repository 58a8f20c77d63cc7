package skiffctl_test

import (
	"testing"

	"github.com/skiffhq/skiff/test/apicluster"
)

// TestExpose: expose makes a Service of a deployment's selector and ports, a pod's
// labels, or another Service's, as kubectl expose does; the API server allocates its IP.
func TestExpose(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	must(t, s, "create", "deployment", "web", "--image=busybox:1.36", "--port=8080")
	contains(t, "expose deployment", must(t, s, "expose", "deployment", "web", "--port=80", "--target-port=8080"), "service/web exposed")
	contains(t, "the service", must(t, s, "get", "svc", "web", "-o", "yaml"),
		"app: web", "port: 80", "targetPort: 8080", "protocol: TCP", "type: ClusterIP", "clusterIP: ")
	// Ports by introspection, another name, a node port.
	contains(t, "expose deploy/web as NodePort", must(t, s, "expose", "deploy/web", "--name=web-np", "--type=NodePort"),
		"service/web-np exposed")
	contains(t, "the node port service", must(t, s, "get", "svc", "web-np", "-o", "yaml"), "port: 8080", "targetPort: 8080", "nodePort: ", "type: NodePort")
	// A service of a service.
	contains(t, "expose service", must(t, s, "expose", "svc", "web", "--name=web2", "--dry-run=client", "-o", "yaml"),
		"name: web2", "app: web", "port: 80")
	// A pod without ports and no --port; a deployment with expressions in its selector.
	must(t, s, "run", "box", "--image=busybox:1.36", "--", "sleep", "60")
	fails(t, s, "", "couldn't find port via --port flag or introspection", "expose", "pod", "box")
	contains(t, "expose pod with --port", must(t, s, "expose", "pod", "box", "--port=9000"), "service/box exposed")
	contains(t, "the pod's service", must(t, s, "get", "svc", "box", "-o", "yaml"), "run: box", "port: 9000")
	fails(t, s, "", `deployment "nope" not found`, "expose", "deployment", "nope", "--port=80")
	must(t, s, "create", "configmap", "settings", "--from-literal=a=b")
	fails(t, s, "", "cannot expose a ConfigMap", "expose", "configmap", "settings", "--port=80")
}
