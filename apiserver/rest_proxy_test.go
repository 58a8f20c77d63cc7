package apiserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
)

// echoServer serves HTTP on the loopback (a simulated pod's network is the host's):
// each answer says what it received; /moved redirects to /there. It stops when the
// test ends.
func echoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			// An upgrade: the connection echoes what it reads.
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			buf.Flush()
			io.Copy(conn, buf)
			return
		}
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/there", http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Access-Control-Allow-Origin", "*") // kube-apiserver's proxy drops CORS headers
		fmt.Fprintf(w, "%s %s body=%q authorization=%q forwarded=%q", r.Method, r.URL.RequestURI(), body,
			r.Header.Get("Authorization"), r.Header.Get("X-Forwarded-Uri"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRESTProxy: the pods, services and nodes proxy subresources, to a simulated
// node's pod through its kubelet's port-forward stream: every method, the query and
// body passed on, the path under proxy the pod's, redirects rewritten under the proxy's
// path, and the errors kube-apiserver gives.
func TestRESTProxy(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	logsNode(t, cs, "w1", nil)
	port := echoServer(t)
	createPod(t, ctx, cs, "web", "w1", corev1.Container{Name: "app", Image: "busybox",
		Command: []string{"sh", "-c", "echo hello from web; sleep 3600"}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}})
	createPod(t, ctx, cs, "pending", "")
	waitRunning(t, ctx, conn, "web")
	rc := newREST(t, c.Addr(0), true)
	rc.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	pods := "/api/v1/namespaces/default/pods/"
	for _, tc := range []struct {
		method, path, body, want string
	}{
		{"GET", pods + "web/proxy/a/b?x=1&y=2", "", `GET /a/b?x=1&y=2 body="" authorization="" forwarded="/api/v1/namespaces/default/pods/web/proxy/a/b"`},
		{"GET", pods + "web/proxy/", "", `GET / body=""`},
		{"GET", pods + fmt.Sprintf("web:%d/proxy/dir/", port), "", `GET /dir/ body=""`},
		{"GET", pods + fmt.Sprintf("http:web:%d/proxy/p", port), "", `GET /p body=""`},
		{"GET", pods + "web:http/proxy/named", "", `GET /named body=""`},
		{"POST", pods + "web/proxy/form?q=1", "posted", `POST /form?q=1 body="posted"`},
		{"PUT", pods + "web/proxy/put", "put", `PUT /put body="put"`},
		{"PATCH", pods + "web/proxy/patch", "patched", `PATCH /patch body="patched"`},
		{"DELETE", pods + "web/proxy/gone", "", `DELETE /gone body=""`},
		{"OPTIONS", pods + "web/proxy/opts", "", `OPTIONS /opts body=""`},
	} {
		r := rc.want(rc.do(tc.method, tc.path, "text/plain", "", tc.body), 200, tc.method+" "+tc.path)
		if !strings.HasPrefix(string(r.body), tc.want) {
			t.Errorf("%s %s: %s, want it to start with %s", tc.method, tc.path, r.body, tc.want)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s %s: the pod's CORS header passed on", tc.method, tc.path)
		}
	}
	if r := rc.want(rc.do("HEAD", pods+"web/proxy/head", "", "", nil), 200, "HEAD"); len(r.body) != 0 {
		t.Errorf("HEAD through the proxy: a body %q", r.body)
	}
	// The pod's redirect, under the proxy's path; the proxy's own root, with its slash.
	if r := rc.want(rc.do("GET", pods+"web/proxy/moved", "", "", nil), http.StatusFound, "a redirect"); r.header.Get("Location") != "/api/v1/namespaces/default/pods/web/proxy/there" {
		t.Errorf("redirect to %q, want it under the proxy's path", r.header.Get("Location"))
	}
	if r := rc.want(rc.do("GET", pods+"web/proxy?a=b", "", "", nil), http.StatusMovedPermanently, "the proxy's root"); r.header.Get("Location") != "/api/v1/namespaces/default/pods/web/proxy/?a=b" {
		t.Errorf("the proxy's root redirects to %q", r.header.Get("Location"))
	}

	// An upgraded connection (HTTP/1.1, as WebSocket's), relayed both ways.
	raw, err := net.Dial("tcp", c.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET %sweb/proxy/up HTTP/1.1\r\nHost: skiff\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", pods)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the proxy: %v, %v", resp, err)
	}
	for _, msg := range []string{"first\n", strings.Repeat("x", 100_000) + "\n"} {
		fmt.Fprint(raw, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("through the upgraded connection: %d bytes back of %d, %v", len(got), len(msg), err)
		}
	}
	raw.Close()

	// A Service's proxy, to a ready pod endpoint of its EndpointSlices.
	svc := func(name string) {
		_, err := cs.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "web", Port: 80}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	svc("websvc")
	svc("empty")
	_, err = cs.EndpointSlices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "websvc-1", Labels: map[string]string{discoveryv1.LabelServiceName: "websvc"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("web"), Port: ptrTo(int32(port)), Protocol: ptrTo(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.42.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(false)}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "pending"}},
			{Addresses: []string{"10.42.0.8"}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	services := "/api/v1/namespaces/default/services/"
	for _, p := range []string{"websvc:web/proxy/s?v=1", "websvc:80/proxy/s?v=1", "http:websvc:web/proxy/s?v=1"} {
		r := rc.want(rc.do("POST", services+p, "text/plain", "", "to the service"), 200, "POST services/"+p)
		if !strings.HasPrefix(string(r.body), `POST /s?v=1 body="to the service"`) {
			t.Errorf("services/%s: %s", p, r.body)
		}
	}

	// A node's proxy: the kubelet's containerLogs.
	if r := rc.want(rc.do("GET", "/api/v1/nodes/w1/proxy/containerLogs/default/web/app?tailLines=1", "", "", nil), 200, "containerLogs"); string(r.body) != "hello from web\n" {
		t.Errorf("containerLogs through the node's proxy: %q", r.body)
	}

	// Errors, as metav1.Status with Kubernetes' words.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	for _, tc := range []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", pods + "nope/proxy/", 404, `pods "nope" not found`},
		{"GET", pods + "web:nope/proxy/", 404, `pod "web" has no port named "nope"`},
		{"GET", pods + "web:70000/proxy/", 400, `port: Invalid value: "70000": must be between 1 and 65535, inclusive`},
		{"GET", pods + "ftp:web:80/proxy/", 400, `invalid pod request "ftp:web:80"`},
		{"GET", pods + "pending/proxy/", 400, `pod "pending" is not scheduled to a node yet: nothing to proxy to`},
		{"GET", pods + fmt.Sprintf("web:%d/proxy/", deadPort), 503, "error trying to reach service: "},
		{"GET", "/api/v1/pods/web/proxy/", 404, "the server could not find the requested resource"},
		{"TRACE", pods + "web/proxy/", 405, "the server does not allow this method on the requested resource"},
		{"GET", services + "nope/proxy/", 404, `services "nope" not found`},
		{"GET", services + "empty/proxy/", 503, `no endpoints available for service "empty"`},
		{"GET", services + "websvc/proxy/", 503, `no endpoints available for service "websvc"`}, // its one port has a name
		{"GET", services + "websvc:81/proxy/", 503, `no service port 81 found for service "websvc"`},
		{"GET", "/api/v1/nodes/nope/proxy/containerLogs/default/web/app", 404, `nodes "nope" not found`},
		{"GET", "/api/v1/nodes/w1/proxy/pods", 404, `the kubelet of node w1 serves no "/pods" through Skiff's proxy`},
		{"GET", "/api/v1/nodes/w1:1/proxy/containerLogs/default/web/app", 400, `Skiff proxies to node w1's kubelet alone`},
		{"GET", "/api/v1/nodes/w1/proxy/containerLogs/default/nope/app", 404, `pods "nope" not found`},
	} {
		r := rc.do(tc.method, tc.path, "", "", nil)
		st := r.status()
		if r.code != tc.code || st.Kind != "Status" || int(st.Code) != tc.code || !strings.Contains(st.Message, tc.msg) {
			t.Errorf("%s %s: HTTP %d %s, want %d with %q", tc.method, tc.path, r.code, r.body, tc.code, tc.msg)
		}
	}
	if r := rc.do("GET", pods+fmt.Sprintf("web:%d/proxy/", deadPort), "", "", nil); !strings.Contains(string(r.body), "connection refused") {
		t.Errorf("a port nobody listens on: %s", r.body)
	}
}

// TestRESTProxyAuthorization: a proxy reaches a pod's ports, a Service's pods or a
// node's kubelet with the API server's reach: an administrator's, whatever the method,
// and the caller's credentials stay with the API server.
func TestRESTProxyAuthorization(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	toks, err := auth.ParseTokens(auth.HashToken("dev-token") + ",dev,developers\n" + auth.HashToken("ops-token") + ",ops," + pki.GroupAdmin + "\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := c.Dial(t, "admin", client.Options{})
	cs := client.NewClientset(conn)
	kubeletCerts, err := pki.NewReloader(filepath.Join(dir, "kubelet-w1.crt"), filepath.Join(dir, "kubelet-w1.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	logsNode(t, client.NewClientset(c.Dial(t, "kubelet-w1", client.Options{})), "w1", kubeletCerts.KubeletServerTLS())
	port := echoServer(t)
	createPod(t, ctx, cs, "web", "w1", corev1.Container{Name: "app", Image: "busybox",
		Command: []string{"sleep", "3600"}, Ports: []corev1.ContainerPort{{ContainerPort: int32(port)}}})
	waitRunning(t, ctx, conn, "web")
	path := "/api/v1/namespaces/default/pods/web/proxy/x"

	ops := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "ops-token")
	if r := ops.want(ops.do("GET", path, "", "", nil), 200, "an administrator's token"); !strings.HasPrefix(string(r.body), `GET /x body="" authorization=""`) {
		t.Errorf("through the proxy, with the caller's token: %s", r.body)
	}
	for _, who := range []struct {
		name string
		rc   *restClient
		user string
	}{
		{"a user outside skiff:admin", newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "dev-token"), "dev"},
		{"the node's kubelet", newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), ""), "system:node:w1"},
		{"the controller-manager", newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "controller-manager"), ""), "system:controller-manager"},
	} {
		for _, m := range []struct{ method, verb string }{{"GET", "get"}, {"POST", "create"}, {"DELETE", "delete"}} {
			r := who.rc.do(m.method, path, "", "", nil)
			want := fmt.Sprintf(`user %q cannot %s pods/proxy "default/web"`, who.user, m.verb)
			if r.code != 403 || !strings.Contains(r.status().Message, want) {
				t.Errorf("%s, %s: HTTP %d %s, want 403 %q", who.name, m.method, r.code, r.body, want)
			}
		}
	}
}
