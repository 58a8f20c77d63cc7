package apiserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// extensionServer is a stand-in for an extension API server (wardle.example.com/v1alpha1
// flunders, as Kubernetes' sample-apiserver) on an address of this machine's over TLS
// with a CA of its own, that records what each request came with. Not on loopback: an
// EndpointSlice's address may not be one (Kubernetes' validation).
type extensionServer struct {
	ln     net.Listener
	ip     string
	srv    *http.Server
	caPEM  []byte
	mu     sync.Mutex
	got    []extensionRequest
	nextEv chan struct{} // closed to send a watch's second event
}

type extensionRequest struct {
	method, path string
	proto        int
	header       http.Header
	peer         *x509.Certificate
}

const wardle = "/apis/wardle.example.com/v1alpha1"

func startExtensionServer(t *testing.T) *extensionServer {
	t.Helper()
	ca := newWebhookCA(t, "api.wardle.svc")
	ip := hostIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	es := &extensionServer{ln: ln, ip: ip, caPEM: ca.bundle, nextEv: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(wardle, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(&metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "wardle.example.com/v1alpha1", APIResources: []metav1.APIResource{
				{Name: "flunders", SingularName: "flunder", Namespaced: true, Kind: "Flunder", Verbs: metav1.Verbs{"get", "list", "watch", "create", "delete"}},
				{Name: "flunders/status", Namespaced: true, Kind: "Flunder", Verbs: metav1.Verbs{"get", "update"}},
			}})
	})
	flunder := func(name string) map[string]any {
		return map[string]any{"apiVersion": "wardle.example.com/v1alpha1", "kind": "Flunder", "metadata": map[string]any{"name": name, "namespace": "default"}}
	}
	mux.HandleFunc(wardle+"/namespaces/default/flunders", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "1" {
			json.NewEncoder(w).Encode(map[string]any{"apiVersion": "wardle.example.com/v1alpha1", "kind": "FlunderList",
				"metadata": map[string]any{"resourceVersion": "1"}, "items": []any{flunder("one")}})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.Encode(map[string]any{"type": "ADDED", "object": flunder("one")})
		w.(http.Flusher).Flush()
		select {
		case <-es.nextEv:
		case <-r.Context().Done():
			return
		}
		enc.Encode(map[string]any{"type": "ADDED", "object": flunder("two")})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	// An upgrade (as exec's and attach's): 101, then the bytes echoed.
	mux.HandleFunc(wardle+"/namespaces/default/flunders/one/echo", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "skiff-echo") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: skiff-echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		line, err := rw.ReadString('\n')
		if err == nil {
			rw.WriteString("echo " + line)
			rw.Flush()
		}
	})
	es.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		er := extensionRequest{method: r.Method, path: r.URL.Path, proto: r.ProtoMajor, header: r.Header.Clone()}
		if len(r.TLS.PeerCertificates) > 0 {
			er.peer = r.TLS.PeerCertificates[0]
		}
		es.mu.Lock()
		es.got = append(es.got, er)
		es.mu.Unlock()
		mux.ServeHTTP(w, r)
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.cert}, ClientAuth: tls.RequestClientCert}}
	go es.srv.ServeTLS(es.ln, "", "")
	t.Cleanup(func() { es.srv.Close() })
	return es
}

// hostIP is an IPv4 address of this machine's that is not loopback; the test is skipped
// without one.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no IPv4 address of this machine's but loopback for an endpoint")
	return ""
}

func (es *extensionServer) port() int32 { return int32(es.ln.Addr().(*net.TCPAddr).Port) }

// requests are the requests of path the server got (the aggregator's checks apart).
func (es *extensionServer) requests(path string) []extensionRequest {
	es.mu.Lock()
	defer es.mu.Unlock()
	var out []extensionRequest
	for _, r := range es.got {
		if r.path == path && r.header.Get("X-Remote-User") != "system:kube-aggregator" {
			out = append(out, r)
		}
	}
	return out
}

// apiServiceCondition is the Available condition of the APIService, as the admin reads it.
func apiServiceCondition(rc *restClient, name string) apiregistrationv1.APIServiceCondition {
	r := rc.do("GET", "/apis/apiregistration.k8s.io/v1/apiservices/"+name, "", "", nil)
	s := decodeJSON[apiregistrationv1.APIService](rc.t, r.body)
	for _, c := range s.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return c
		}
	}
	return apiregistrationv1.APIServiceCondition{}
}

func waitAvailable(t *testing.T, rc *restClient, name string, status apiregistrationv1.ConditionStatus, reason string) apiregistrationv1.APIServiceCondition {
	t.Helper()
	var c apiregistrationv1.APIServiceCondition
	waitfor.Condition(t, 30*time.Second, fmt.Sprintf("APIService %s Available %s (%s)", name, status, reason), func() (bool, string) {
		c = apiServiceCondition(rc, name)
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%+v", c)
	})
	return c
}

// TestAggregator: an APIService naming a Service is served by the extension server
// behind it: authorized here first, then proxied with the front-proxy certificate and
// the user in X-Remote-* headers (none of the caller's own, no Authorization), watches
// streamed; discovery lists it; its Available condition follows the Service, its
// endpoints and the server; no endpoint is a 503; extension servers find
// kube-system/extension-apiserver-authentication and may read it.
func TestAggregator(t *testing.T) {
	dir := apicluster.Certs(t)
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice,wardle-users\n" + auth.HashToken("bob-token") + ",bob,others")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks, Configure: func(cfg *apiserver.Config) {
		cfg.Aggregator.AvailabilityInterval, cfg.Aggregator.DiscoveryTTL = 200*time.Millisecond, 200*time.Millisecond
	}})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	alice := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "alice-token")
	bob := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "bob-token")
	es := startExtensionServer(t)

	// The ConfigMap extension servers authenticate requests by, and the Role that lets
	// them read it.
	cm := decodeJSON[corev1.ConfigMap](t, admin.want(admin.do("GET", "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", "", "", nil), 200, "the ConfigMap").body)
	fpCA, err := pki.ReadCerts(filepath.Join(dir, pki.FrontProxyCACertFile))
	if err != nil {
		t.Fatal(err)
	}
	clusterCA, _ := pki.ReadCerts(filepath.Join(dir, pki.CACertFile))
	for k, want := range map[string]string{
		"client-ca-file":                     string(pki.EncodeCert(clusterCA[0])),
		"requestheader-client-ca-file":       string(pki.EncodeCert(fpCA[0])),
		"requestheader-allowed-names":        `["front-proxy-client"]`,
		"requestheader-username-headers":     `["X-Remote-User"]`,
		"requestheader-group-headers":        `["X-Remote-Group"]`,
		"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
	} {
		if cm.Data[k] != want {
			t.Errorf("extension-apiserver-authentication %s = %q, want %q", k, cm.Data[k], want)
		}
	}
	role := decodeJSON[rbacv1.Role](t, admin.want(admin.do("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/extension-apiserver-authentication-reader", "", "", nil), 200, "the reader Role").body)
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, []string{"extension-apiserver-authentication"}) {
		t.Errorf("extension-apiserver-authentication-reader rules %+v", role.Rules)
	}
	admin.want(admin.do("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:auth-delegator", "", "", nil), 200, "system:auth-delegator")
	// An extension server reads it as its informers do, a list and a watch of that one
	// ConfigMap by fieldSelector metadata.name: authorized as of that ConfigMap (RBAC's
	// resourceNames), as Kubernetes' RequestInfo takes it; every ConfigMap is not.
	admin.want(admin.do("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings", "application/json", "", &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "bob-reads-the-configmap", Namespace: "kube-system"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "bob"}},
	}), 201, "bind the reader Role to bob")
	cms := "/api/v1/namespaces/kube-system/configmaps"
	one := "fieldSelector=metadata.name%3Dextension-apiserver-authentication"
	waitfor.Condition(t, 30*time.Second, "bob lists the ConfigMap by name", func() (bool, string) {
		r := bob.do("GET", cms+"?"+one, "", "", nil)
		return r.code == 200 && len(decodeJSON[corev1.ConfigMapList](t, r.body).Items) == 1, fmt.Sprintf("HTTP %d: %.300s", r.code, r.body)
	})
	bob.want(bob.do("GET", cms+"?watch=1&timeoutSeconds=1&"+one, "", "", nil), 200, "bob watches the ConfigMap by name")
	bob.want(bob.do("GET", cms, "", "", nil), 403, "bob lists every ConfigMap of kube-system")

	// The APIService first: its Service is not there yet.
	const name = "v1alpha1.wardle.example.com"
	admin.want(admin.do("POST", "/apis/apiregistration.k8s.io/v1/apiservices", "application/json", "", &apiregistrationv1.APIService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregistrationv1.APIServiceSpec{Group: "wardle.example.com", Version: "v1alpha1", CABundle: es.caPEM,
			Service:              &apiregistrationv1.ServiceReference{Namespace: "wardle", Name: "api", Port: ptrTo(int32(443))},
			GroupPriorityMinimum: 2000, VersionPriority: 200},
	}), 201, "create the APIService")
	waitAvailable(t, admin, name, apiregistrationv1.ConditionFalse, "ServiceNotFound")
	st := alice.want(alice.do("GET", wardle+"/namespaces/default/flunders", "", "", nil), 403, "alice before her role").status()
	if st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, `cannot list flunders`) {
		t.Errorf("alice before her role: %+v", st)
	}

	admin.want(admin.do("POST", "/api/v1/namespaces", "application/json", "", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "wardle"}}), 201, "namespace")
	admin.want(admin.do("POST", "/api/v1/namespaces/wardle/services", "application/json", "", &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(es.port())}}}}), 201, "service")
	waitAvailable(t, admin, name, apiregistrationv1.ConditionFalse, "EndpointsNotFound")
	st = admin.want(admin.do("GET", wardle+"/namespaces/default/flunders", "", "", nil), 503, "no endpoint").status()
	if st.Reason != metav1.StatusReasonServiceUnavailable || !strings.Contains(st.Message, `cannot find endpoints for service/api in "wardle"`) {
		t.Errorf("no endpoint: %+v", st)
	}
	slice := &discoveryv1.EndpointSlice{TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  metav1.ObjectMeta{Name: "api-1", Labels: map[string]string{discoveryv1.LabelServiceName: "api"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{es.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptrTo("https"), Port: ptrTo(es.port()), Protocol: ptrTo(corev1.ProtocolTCP)}}}
	admin.want(admin.do("POST", "/apis/discovery.k8s.io/v1/namespaces/wardle/endpointslices", "application/json", "", slice), 201, "endpoint slice")
	if c := waitAvailable(t, admin, name, apiregistrationv1.ConditionTrue, "Passed"); c.Message != "all checks passed" {
		t.Errorf("Available: %+v", c)
	}

	// bob has no role: refused here, never proxied. alice may read flunders.
	admin.want(admin.do("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "application/json", "", &rbacv1.ClusterRole{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: metav1.ObjectMeta{Name: "flunder-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"wardle.example.com"}, Resources: []string{"flunders"}}}}), 201, "role")
	admin.want(admin.do("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "application/json", "", &rbacv1.ClusterRoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: metav1.ObjectMeta{Name: "flunder-readers"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flunder-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "wardle-users"}}}), 201, "binding")
	flunders := wardle + "/namespaces/default/flunders"
	waitfor.Condition(t, 30*time.Second, "alice may list flunders", func() (bool, string) {
		r := alice.do("GET", flunders, "", "", nil)
		return r.code == 200, fmt.Sprintf("%d %s", r.code, r.body)
	})
	st = bob.want(bob.do("GET", flunders, "", "", nil), 403, "bob").status()
	if !strings.Contains(st.Message, `user "bob" cannot list flunders`) {
		t.Errorf("bob: %+v", st)
	}
	st = alice.want(alice.do("DELETE", flunders+"/one", "", "", nil), 403, "alice deletes").status()
	if !strings.Contains(st.Message, `cannot delete flunders`) {
		t.Errorf("alice deletes: %+v", st)
	}

	// What the extension server saw: alice, her groups, the front proxy's certificate;
	// not her token, not the X-Remote-User she sent herself.
	req, _ := http.NewRequest("GET", alice.base+flunders, nil)
	req.Header.Set("X-Remote-User", "mallory")
	req.Header.Set("X-Remote-Group", "system:masters")
	req.Header.Set("X-Remote-Extra-Scopes", "all")
	resp, err := alice.c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("alice with headers of her own: %v %v", err, resp)
	}
	var list struct{ Items []map[string]any }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Items) != 1 {
		t.Errorf("the list through the proxy: %+v", list)
	}
	got := es.requests(flunders)
	if len(got) == 0 {
		t.Fatal("the extension server got no request")
	}
	for _, r := range got {
		h := r.header
		if h.Get("X-Remote-User") != "alice" || !slices.Contains(h.Values("X-Remote-Group"), "wardle-users") || slices.Contains(h.Values("X-Remote-Group"), "system:masters") ||
			h.Get("X-Remote-Extra-Scopes") != "" || h.Get("Authorization") != "" {
			t.Errorf("the extension server got headers %v", h)
		}
		if r.proto != 2 {
			t.Errorf("proxied over HTTP/%d, want HTTP/2", r.proto)
		}
		roots := x509.NewCertPool()
		roots.AddCert(fpCA[0])
		if r.peer == nil || r.peer.Subject.CommonName != pki.FrontProxyClient {
			t.Fatalf("the client certificate the extension server saw: %v", r.peer)
		}
		if _, err := r.peer.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("the front-proxy certificate does not verify with the front-proxy CA: %v", err)
		}
	}
	es.mu.Lock()
	all := slices.Clone(es.got)
	es.mu.Unlock()
	for _, r := range all {
		if r.path == flunders+"/one" {
			t.Errorf("bob's or alice's refused request reached the extension server: %+v", r)
		}
	}

	// A watch is streamed: the first event arrives before the second is sent.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := alice.watch(ctx, flunders+"?watch=1")
	for i, want := range []string{"one", "two"} {
		select {
		case ev := <-events:
			if ev.Type != "ADDED" || ev.Object.Name != want {
				t.Errorf("watch event %d: %+v", i, ev)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no watch event %d through the proxy", i)
		}
		if i == 0 {
			close(es.nextEv)
		}
	}
	cancel()

	// An upgrade request, over HTTP/1.1, relayed both ways.
	tc := apicluster.ClientTLS(t, dir, "admin")
	tc.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", c.Addr(0), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(conn, "GET %s/one/echo HTTP/1.1\r\nHost: skiff\r\nConnection: Upgrade\r\nUpgrade: skiff-echo\r\n\r\n", flunders)
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the proxy: %v %+v", err, up)
	}
	fmt.Fprint(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Errorf("the upgraded stream said %q, %v", line, err)
	}
	conn.Close()

	// Discovery: /apis and /apis/GROUP list the group, /apis/GROUP/VERSION is the
	// extension server's, aggregated discovery has its resources.
	groups := decodeJSON[metav1.APIGroupList](t, alice.want(alice.do("GET", "/apis", "", "application/json", nil), 200, "/apis").body)
	if i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "wardle.example.com" }); i < 0 ||
		groups.Groups[i].PreferredVersion.GroupVersion != "wardle.example.com/v1alpha1" {
		t.Errorf("/apis lists %+v", groups.Groups)
	}
	g := decodeJSON[metav1.APIGroup](t, alice.want(alice.do("GET", "/apis/wardle.example.com", "", "", nil), 200, "/apis/GROUP").body)
	if g.Kind != "APIGroup" || len(g.Versions) != 1 || g.Versions[0].Version != "v1alpha1" {
		t.Errorf("/apis/wardle.example.com = %+v", g)
	}
	rl := decodeJSON[metav1.APIResourceList](t, alice.want(alice.do("GET", wardle, "", "", nil), 200, "/apis/GROUP/VERSION").body)
	if len(rl.APIResources) != 2 || rl.APIResources[0].Name != "flunders" {
		t.Errorf("%s = %+v", wardle, rl)
	}
	agg := decodeJSON[apidiscoveryv2.APIGroupDiscoveryList](t, alice.want(alice.do("GET", "/apis", "", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", nil), 200, "aggregated").body)
	i := slices.IndexFunc(agg.Items, func(g apidiscoveryv2.APIGroupDiscovery) bool { return g.Name == "wardle.example.com" })
	if i < 0 || len(agg.Items[i].Versions) != 1 || agg.Items[i].Versions[0].Freshness != apidiscoveryv2.DiscoveryFreshnessCurrent ||
		len(agg.Items[i].Versions[0].Resources) != 1 || agg.Items[i].Versions[0].Resources[0].Resource != "flunders" ||
		len(agg.Items[i].Versions[0].Resources[0].Subresources) != 1 {
		t.Errorf("aggregated discovery of wardle.example.com: %+v", agg.Items)
	}

	// The extension server goes: Available turns False, discovery says Stale, requests
	// are refused with a 503 saying why.
	es.srv.Close()
	waitAvailable(t, admin, name, apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck")
	st = alice.want(alice.do("GET", flunders, "", "", nil), 503, "server gone").status()
	if !strings.Contains(st.Message, "APIService "+name+" is not available") || !strings.Contains(st.Message, "FailedDiscoveryCheck") {
		t.Errorf("server gone: %+v", st)
	}
	waitfor.Condition(t, 30*time.Second, "aggregated discovery says Stale", func() (bool, string) {
		agg := decodeJSON[apidiscoveryv2.APIGroupDiscoveryList](t, alice.do("GET", "/apis", "", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", nil).body)
		i := slices.IndexFunc(agg.Items, func(g apidiscoveryv2.APIGroupDiscovery) bool { return g.Name == "wardle.example.com" })
		return i >= 0 && agg.Items[i].Versions[0].Freshness == apidiscoveryv2.DiscoveryFreshnessStale, fmt.Sprintf("%+v", agg.Items)
	})
	// And back, on the same address.
	ln, err := net.Listen("tcp", net.JoinHostPort(es.ip, strconv.Itoa(int(es.port()))))
	if err != nil {
		t.Skipf("the extension server's port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: es.srv.Handler, TLSConfig: es.srv.TLSConfig}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	waitAvailable(t, admin, name, apiregistrationv1.ConditionTrue, "Passed")
	alice.want(alice.do("GET", flunders, "", "", nil), 200, "server back")
}
