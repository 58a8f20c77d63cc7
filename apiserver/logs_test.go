package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
)

// syncBuffer is a bytes.Buffer safe to read while a follower writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logsNode runs a simulated node's kubelet on cs and its log server on loopback (over
// logTLS when set) until the test ends.
func logsNode(t *testing.T, cs *client.Clientset, node string, logTLS *tls.Config) *sim.Runtime {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt := sim.New(sim.Config{})
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP, cfg.LogPort = node, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	cfg.RelistPeriod, cfg.Workers = 50*time.Millisecond, 2
	cfg.RootDir = t.TempDir() // not the host's /var/lib/skiff/kubelet: termination logs are written there
	log := hclog.New(&hclog.LoggerOptions{Name: node, Level: hclog.Warn, Output: testLogWriter{t}})
	cfg.Logger = log
	k, err := kubelet.New(cs, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(log)
	ls.Register(node, rt)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := ls.Serve(ctx, ln, logTLS); err != nil {
			t.Errorf("log server of %s: %v", node, err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return rt
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func createPod(t *testing.T, ctx context.Context, cs *client.Clientset, name, node string, containers ...corev1.Container) {
	t.Helper()
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sh", "-c", "echo hello from " + name + "; sleep 3600"}}}
	}
	_, err := cs.Pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: node, RestartPolicy: corev1.RestartPolicyNever, Containers: containers},
	})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

// waitLogs waits until the pod's logs contain want (its container may not have started
// yet) and returns them.
func waitLogs(t *testing.T, ctx context.Context, conn *client.Conn, pod, want string) string {
	t.Helper()
	for {
		var b bytes.Buffer
		err := conn.Logs(ctx, "default", pod, client.LogOptions{}, &b)
		if err == nil && strings.Contains(b.String(), want) {
			return b.String()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("logs of pod %s: %q, %v; want %q", pod, b.String(), err, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func wantLogsError(t *testing.T, ctx context.Context, conn *client.Conn, pod, container string, code codes.Code, msg string) {
	t.Helper()
	err := conn.Logs(ctx, "default", pod, client.LogOptions{Container: container}, &bytes.Buffer{})
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Errorf("logs of pod %s container %q: got %v, want %v containing %q", pod, container, err, code, msg)
	}
}

// TestPodLogs reads a container's output through the API server, from a simulated
// node's kubelet: what it wrote, then, following, what it writes until it exits.
func TestPodLogs(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	rt := logsNode(t, cs, "w1", nil)

	createPod(t, ctx, cs, "web", "w1")
	got := waitLogs(t, ctx, conn, "web", "hello from web\n")
	if !strings.HasPrefix(got, "sim: container app started (image busybox, attempt 0)") {
		t.Errorf("logs of web = %q", got)
	}
	node, err := cs.Nodes.Get(ctx, "", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if port := node.Status.DaemonEndpoints.KubeletEndpoint.Port; port == 0 {
		t.Errorf("node w1 publishes no kubelet endpoint: %v", node.Status)
	}

	// The same over REST (pods/log): the output, its last lines, and previous, which
	// reaches the kubelet (web has no previous instance).
	rc := newREST(t, c.Addr(0), false)
	logPath := "/api/v1/namespaces/default/pods/web/log"
	if r := rc.want(rc.do("GET", logPath, "", "", nil), 200, "pods/log"); !strings.Contains(string(r.body), "hello from web\n") {
		t.Errorf("REST logs of web = %q", r.body)
	}
	if r := rc.want(rc.do("GET", logPath+"?tailLines=1&container=app", "", "", nil), 200, "pods/log tailLines"); string(r.body) != "hello from web\n" {
		t.Errorf("REST logs of web, tailLines=1 = %q", r.body)
	}
	if st := rc.want(rc.do("GET", logPath+"?previous=true", "", "", nil), 400, "pods/log previous").status(); !strings.Contains(st.Message, `previous terminated container "app" in pod "web" not found`) {
		t.Errorf("REST previous logs of web: %+v", st)
	}
	// timestamps, sinceSeconds, sinceTime and limitBytes reach the kubelet as the gRPC
	// API's options do (kubectl logs --timestamps, --since, --since-time, --limit-bytes).
	plain := string(rc.want(rc.do("GET", logPath, "", "", nil), 200, "pods/log").body)
	stamped := string(rc.want(rc.do("GET", logPath+"?timestamps=true", "", "", nil), 200, "pods/log timestamps").body)
	if lines := strings.Split(strings.TrimSuffix(stamped, "\n"), "\n"); len(lines) != strings.Count(plain, "\n") {
		t.Errorf("REST logs of web, timestamps: %q for %q", stamped, plain)
	} else {
		for _, l := range lines {
			ts, rest, _ := strings.Cut(l, " ")
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.Contains(plain, rest+"\n") {
				t.Errorf("REST logs of web, timestamps: line %q (%v)", l, err)
			}
		}
	}
	if r := rc.want(rc.do("GET", logPath+"?limitBytes=5", "", "", nil), 200, "pods/log limitBytes"); string(r.body) != plain[:5] {
		t.Errorf("REST logs of web, limitBytes=5 = %q, want %q", r.body, plain[:5])
	}
	if r := rc.want(rc.do("GET", logPath+"?sinceSeconds=3600", "", "", nil), 200, "pods/log sinceSeconds"); string(r.body) != plain {
		t.Errorf("REST logs of web, sinceSeconds=3600 = %q, want %q", r.body, plain)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := rc.want(rc.do("GET", logPath+"?sinceTime="+future, "", "", nil), 200, "pods/log sinceTime"); len(r.body) != 0 {
		t.Errorf("REST logs of web since %s = %q, want nothing", future, r.body)
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if r := rc.want(rc.do("GET", logPath+"?sinceTime="+past, "", "", nil), 200, "pods/log sinceTime"); string(r.body) != plain {
		t.Errorf("REST logs of web since %s = %q, want %q", past, r.body, plain)
	}
	// Invalid options are 422 Invalid (Kubernetes' PodLogOptions validation), unreadable
	// ones 400.
	for _, c := range []struct {
		query string
		code  int
		msg   string
	}{
		{"sinceSeconds=0", 422, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{"limitBytes=0", 422, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"sinceSeconds=5&sinceTime=" + past, 422, "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"limitBytes=ten", 400, `limitBytes: Invalid value: "ten": must be an integer`},
		{"sinceTime=yesterday", 400, `sinceTime: Invalid value: "yesterday": must be an RFC 3339 time`},
	} {
		if st := rc.want(rc.do("GET", logPath+"?"+c.query, "", "", nil), c.code, "pods/log "+c.query).status(); !strings.Contains(st.Message, c.msg) {
			t.Errorf("REST logs of web, %s: %q, want %q", c.query, st.Message, c.msg)
		}
	}

	// Following: new lines arrive as they are written; the stream ends with the container.
	var followed syncBuffer
	done := make(chan error, 1)
	go func() { done <- conn.Logs(ctx, "default", "web", client.LogOptions{Follow: true}, &followed) }()
	ctrs, _ := rt.List(ctx)
	if len(ctrs) != 1 {
		t.Fatalf("containers on w1: %+v", ctrs)
	}
	if err := rt.Write(ctrs[0].ID, "request 1 served"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(followed.String(), "hello from web\nrequest 1 served\n") {
		select {
		case err := <-done:
			t.Fatalf("follow ended early: %v with %q", err, followed.String())
		case <-ctx.Done():
			t.Fatalf("follow has %q", followed.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := rt.Exit(ctrs[0].ID, 3); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
	if !strings.HasSuffix(followed.String(), "request 1 served\nsim: container app exited with code 3\n") {
		t.Errorf("followed %q", followed.String())
	}

	// Errors name the problem.
	createPod(t, ctx, cs, "two", "w1",
		corev1.Container{Name: "a", Image: "busybox"}, corev1.Container{Name: "b", Image: "busybox"})
	createPod(t, ctx, cs, "pending", "")
	wantLogsError(t, ctx, conn, "nope", "", codes.NotFound, `pods "nope" not found`)
	wantLogsError(t, ctx, conn, "pending", "", codes.FailedPrecondition, `pod "pending" is not scheduled to a node yet`)
	wantLogsError(t, ctx, conn, "two", "", codes.InvalidArgument, "a container name must be specified for pod two, choose one of: [a b]")
	wantLogsError(t, ctx, conn, "two", "c", codes.InvalidArgument, "container c is not valid for pod two: choose one of: [a b]")
	waitLogs(t, ctx, conn, "web", "exited with code 3") // -c of the only container works too
	if err := conn.Logs(ctx, "default", "two", client.LogOptions{Container: "b"}, &bytes.Buffer{}); err != nil && status.Code(err) != codes.FailedPrecondition {
		t.Errorf("logs of two/b: %v", err)
	}
	// An init container (a sidecar's logs) is named as Kubernetes names it, listed first.
	if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "inits"},
		Spec: corev1.PodSpec{NodeName: "w1", InitContainers: []corev1.Container{{Name: "setup", Image: "busybox"}},
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	wantLogsError(t, ctx, conn, "inits", "c", codes.InvalidArgument, "container c is not valid for pod inits: choose one of: [setup app]")
	if err := conn.Logs(ctx, "default", "inits", client.LogOptions{Container: "setup"}, &bytes.Buffer{}); err != nil && status.Code(err) != codes.FailedPrecondition {
		t.Errorf("logs of inits/setup: %v", err)
	}

	// A node whose kubelet cannot be reached, and one that publishes no endpoint.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	for name, port := range map[string]int32{"dead": int32(deadPort), "silent": 0} {
		n, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		n.Status = corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		if _, err := cs.Nodes.UpdateStatus(ctx, n); err != nil {
			t.Fatal(err)
		}
		createPod(t, ctx, cs, "on-"+name, name)
	}
	wantLogsError(t, ctx, conn, "on-dead", "", codes.Unavailable, "kubelet of node dead at 127.0.0.1:"+strconv.Itoa(deadPort)+" is unreachable")
	wantLogsError(t, ctx, conn, "on-silent", "", codes.FailedPrecondition, "node silent publishes no kubelet endpoint")
}

// dialAs connects to c's first member as certificate name of dir until the test ends.
func dialAs(t *testing.T, c *apicluster.Cluster, dir, name string) *client.Conn {
	t.Helper()
	servers, opts, err := client.Resolve(client.Settings{Server: c.Addr(0), CAFile: filepath.Join(dir, pki.CACertFile),
		CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.Dial(servers, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestPodLogsAuthorization: in a TLS cluster the API server reads logs from the kubelet
// over mutual TLS; reading them is authorized like reading the pod: an administrator
// may, a kubelet may for its own node's pods only.
func TestPodLogsAuthorization(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	as := func(name string) *client.Conn { return dialAs(t, c, dir, name) }
	kubeletCerts, err := pki.NewReloader(filepath.Join(dir, "kubelet-w1.crt"), filepath.Join(dir, "kubelet-w1.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	logsNode(t, client.NewClientset(as("kubelet-w1")), "w1", kubeletCerts.KubeletServerTLS())
	admin := as("admin")
	createPod(t, ctx, client.NewClientset(admin), "web", "w1")

	waitLogs(t, ctx, admin, "web", "hello from web\n")
	waitLogs(t, ctx, as("kubelet-w1"), "web", "hello from web\n")
	err = as("kubelet-w2").Logs(ctx, "default", "web", client.LogOptions{}, &bytes.Buffer{})
	wantDenied(t, "kubelet w2 reading logs of a pod on w1", err, codes.PermissionDenied,
		`user "system:node:w2" cannot get pods/log "default/web": pod is bound to node "w1"`)
	err = as("scheduler").Logs(ctx, "default", "web", client.LogOptions{}, &bytes.Buffer{})
	wantDenied(t, "scheduler reading logs", err, codes.PermissionDenied, `user "system:scheduler" cannot get pods/log "default/web"`)
}

// TestKubeletServingCertificate: a kubelet's log server serves with a serving
// certificate of its own (not its client certificate), which the API server verifies
// (the node's identity, server usage, the cluster CA) before it asks for logs; the
// kubelet renews it through its client certificate's connection like the client one
// (CreateCertificateSigningRequest naming it), for the same names and usage; another
// node cannot renew it, and a log server presenting another node's is refused.
func TestKubeletServingCertificate(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile)
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	as := func(name string) *client.Conn { return dialAs(t, c, dir, name) }
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	// w1's serving certificate, of an hour, 50 minutes into its life: due.
	tmp := t.TempDir()
	crt, key := filepath.Join(tmp, "serving.crt"), filepath.Join(tmp, "serving.key")
	req := pki.InitOptions{Nodes: []string{"w1"}}.Leaves()["kubelet-w1-serving"]
	req.NotBefore, req.Validity = time.Now().Add(-50*time.Minute), time.Hour
	old, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.WriteFiles(crt, key); err != nil {
		t.Fatal(err)
	}
	serving, err := pki.NewReloader(crt, key, filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	kubeletConn := as("kubelet-w1")
	logsNode(t, client.NewClientset(kubeletConn), "w1", serving.KubeletServerTLS())
	admin := as("admin")
	createPod(t, ctx, client.NewClientset(admin), "web", "w1")
	waitLogs(t, ctx, admin, "web", "hello from web\n")

	// Renewed through the kubelet's client connection.
	m := &client.CertificateManager{Conn: kubeletConn, CertFile: crt, KeyFile: key, CAFile: filepath.Join(dir, pki.CACertFile),
		Serving: true, Logger: hclog.NewNullLogger()}
	if _, err := m.RenewIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	renewed, err := pki.LoadPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Cert.SerialNumber.Cmp(old.Cert.SerialNumber) == 0 || renewed.Cert.Subject.String() != old.Cert.Subject.String() ||
		!slices.Equal(renewed.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || !slices.Equal(renewed.Cert.DNSNames, []string{"w1"}) ||
		renewed.Cert.NotAfter.Sub(renewed.Cert.NotBefore) != time.Hour {
		t.Fatalf("renewed serving certificate: %v, usages %v, names %v, %v to %v", renewed.Cert.Subject, renewed.Cert.ExtKeyUsage,
			renewed.Cert.DNSNames, renewed.Cert.NotBefore, renewed.Cert.NotAfter)
	}
	var b bytes.Buffer
	if err := admin.Logs(ctx, "default", "web", client.LogOptions{}, &b); err != nil || !strings.Contains(b.String(), "hello from web\n") {
		t.Fatalf("logs through the renewed serving certificate: %q, %v", b.String(), err)
	}

	// Another node cannot have it renewed.
	csr, _, err := pki.NewRequest(renewed.Cert)
	if err != nil {
		t.Fatal(err)
	}
	_, err = as("kubelet-w2").CreateCertificateSigningRequest(ctx, csr, renewed.CertPEM, 0)
	wantDenied(t, "w2 renewing w1's serving certificate", err, codes.PermissionDenied, "a certificate may be renewed only for its own identity")

	// A log server that presents another node's serving certificate is refused.
	w2, err := pki.LoadPair(filepath.Join(dir, "kubelet-w2-serving.crt"), filepath.Join(dir, "kubelet-w2-serving.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.WriteFiles(crt, key); err != nil {
		t.Fatal(err)
	}
	err = admin.Logs(ctx, "default", "web", client.LogOptions{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "kubelet certificate of node w1: it is") || !strings.Contains(err.Error(), "system:node:w2") {
		t.Fatalf("logs from a kubelet presenting w2's serving certificate: %v", err)
	}
}
