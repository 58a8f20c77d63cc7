package k8sclients

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestProxyToContainerdPod reads a real container's web server through the REST API's
// proxy subresources, as Kubernetes' conformance suite does: client-go's ProxyGet and
// kubectl get --raw, to the pod (pods/NAME[:PORT]/proxy), to a Service of it
// (services/NAME:PORT/proxy) and to its node's kubelet (nodes/NAME/proxy/containerLogs).
// A kubelet on a private containerd (root and the containerd binaries, else it skips)
// runs busybox httpd; the API server reaches it through the kubelet's port-forward
// stream.
func TestProxyToContainerdPod(t *testing.T) {
	socket := containerdtest.Start(t)
	const image = "docker.io/library/busybox:skiff-test"
	data, err := containerd.BusyboxArchive("/bin/busybox", image)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)

	// The node: a kubelet on containerd and its server (logs, streams) on the loopback.
	const node, ns = "proxy-w1", "default"
	rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: "skiff-proxy", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	containerdtest.RemoveCgroups(t, "/skiff-proxy")
	t.Cleanup(func() { rt.Close() })
	if _, err := rt.Import(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: node, Level: hclog.Warn, Output: testWriter{t}})
	ls := kubelet.NewLogServer(log)
	ls.Register(node, rt)
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP, cfg.LogPort, cfg.RootDir, cfg.Logger = node, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, t.TempDir(), log
	k, err := kubelet.New(cs, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.Run(kctx) }()
	go func() { defer wg.Done(); ls.Serve(kctx, ln, nil) }()
	t.Cleanup(func() {
		// No container left behind: the pod deleted, its containers gone, then the kubelet
		// stopped. (The test's context has ended.)
		ctx := context.Background()
		cs.Pods.Delete(ctx, ns, "web", client.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
		waitfor.Condition(t, time.Minute, "the pod's containers removed", func() (bool, string) {
			l, err := rt.List(ctx)
			return err == nil && len(l) == 0, fmt.Sprint(len(l), " containers, ", err)
		})
		stop()
		wg.Wait()
	})

	port := freeport.Loopback(t, 1)[0] // the pod shares the host's network
	if _, err := cs.Pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: true, Containers: []corev1.Container{{
			Name: "httpd", Image: image, ImagePullPolicy: corev1.PullNever,
			Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /www && echo hello through the proxy > /www/index.html && echo serving && exec httpd -f -p 127.0.0.1:%d -h /www", port)},
			Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 2*time.Minute, "pod web running", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, ns, "web")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	// A Service of the pod and the EndpointSlice its controller would write (none runs here).
	if _, err := cs.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.EndpointSlices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(port)), Protocol: ptr(corev1.ProtocolTCP)}},
		// The address is the pod's for the Service's clients; the proxy goes to the pod the
		// endpoint names, through its kubelet (and a loopback address is no endpoint's).
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web"}}},
	}); err != nil {
		t.Fatal(err)
	}

	const want = "hello through the proxy\n"
	kcs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + c.Addr(0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ scheme, port string }{{"", ""}, {"", fmt.Sprint(port)}, {"http", fmt.Sprint(port)}} {
		if got, err := kcs.CoreV1().Pods(ns).ProxyGet(p.scheme, "web", p.port, "index.html", nil).DoRaw(ctx); err != nil || string(got) != want {
			t.Errorf("client-go ProxyGet(%q, web, %q, index.html): %q, %v", p.scheme, p.port, got, err)
		}
	}
	for _, p := range []string{"http", "80"} {
		if got, err := kcs.CoreV1().Services(ns).ProxyGet("", "web", p, "index.html", nil).DoRaw(ctx); err != nil || string(got) != want {
			t.Errorf("client-go services ProxyGet(web, %q, index.html): %q, %v", p, got, err)
		}
	}

	// kubectl get --raw, with a kubeconfig of this insecure cluster.
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, c.Addr(0))), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl := &skiff{t: t, kubeconfig: kubeconfig, home: filepath.Join(dir, "home"), kubectl: kubectlBinary(t)}
	for _, path := range []string{
		fmt.Sprintf("/api/v1/namespaces/%s/pods/web:%d/proxy/index.html", ns, port),
		fmt.Sprintf("/api/v1/namespaces/%s/services/web:http/proxy/index.html", ns),
	} {
		if out := kubectl.must("get", "--raw", path); out != want {
			t.Errorf("kubectl get --raw %s: %q", path, out)
		}
	}
	if out := kubectl.must("get", "--raw", "/api/v1/nodes/"+node+"/proxy/containerLogs/"+ns+"/web/httpd"); out != "serving\n" {
		t.Errorf("kubectl get --raw of the node's containerLogs: %q", out)
	}
	if out, err := kubectl.run("get", "--raw", "/api/v1/namespaces/"+ns+"/services/web:https/proxy/"); err == nil ||
		!strings.Contains(out, `no endpoints available for service \"web:https\"`) && !strings.Contains(out, `no endpoints available for service "web:https"`) {
		t.Errorf("kubectl get --raw of a Service's port it does not have: %v, %s", err, out)
	}
}
