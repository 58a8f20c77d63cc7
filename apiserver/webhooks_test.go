package apiserver_test

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
)

// webhookCA is a CA of the test's own and a serving certificate it signed for names.
type webhookCA struct {
	bundle []byte // the CA's PEM, a webhook configuration's caBundle
	cert   tls.Certificate
}

func newWebhookCA(t testing.TB, hosts ...string) webhookCA {
	t.Helper()
	ca, err := pki.NewCA("webhook test CA", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: "webhook", Hosts: hosts, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return webhookCA{bundle: ca.CertPEM(), cert: cert}
}

// webhookServer answers AdmissionReviews with its handlers, by path, and keeps the
// requests it got.
type webhookServer struct {
	url string
	mu  sync.Mutex
	got map[string][]*admissionv1.AdmissionRequest
}

// serveWebhooks serves handlers over TLS with ca's certificate on ln, until the test ends.
func serveWebhooks(t testing.TB, ln net.Listener, ca webhookCA, handlers map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) *webhookServer {
	ws := &webhookServer{url: "https://" + ln.Addr().String(), got: map[string][]*admissionv1.AdmissionRequest{}}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var rev admissionv1.AdmissionReview
			if err := json.NewDecoder(r.Body).Decode(&rev); err != nil || rev.Request == nil {
				http.Error(w, fmt.Sprintf("bad review: %v", err), http.StatusBadRequest)
				return
			}
			ws.mu.Lock()
			ws.got[path] = append(ws.got[path], rev.Request)
			ws.mu.Unlock()
			resp := h(rev.Request)
			if resp == nil { // hang until the caller gives up
				<-r.Context().Done()
				return
			}
			resp.UID = rev.Request.UID
			rev.Request, rev.Response = nil, resp
			json.NewEncoder(w).Encode(&rev)
		})
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.cert}}, ErrorLog: nil}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ws
}

func (ws *webhookServer) requests(path string) []*admissionv1.AdmissionRequest {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]*admissionv1.AdmissionRequest(nil), ws.got[path]...)
}

func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// configMapRule is a rule on configmaps for ops.
func configMapRule(ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{Operations: ops, Rule: admissionregistrationv1.Rule{
		APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}
}

func validatingHook(name, url string, ca []byte, policy admissionregistrationv1.FailurePolicyType, timeout int32,
	rules []admissionregistrationv1.RuleWithOperations) *admissionregistrationv1.ValidatingWebhookConfiguration {
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: name + ".skiff.test", Rules: rules,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca}, FailurePolicy: &policy,
			SideEffects: new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: &timeout}}}
	kinds.SetTypeMeta(c)
	return c
}

// TestWebhooksREST: admission webhooks over the REST and gRPC APIs, with a webhook
// server of the test's own behind its own CA: a mutating webhook labels each ConfigMap
// created (seen in what is stored and answered), a validating webhook refuses one
// labelled deny=true in Kubernetes' words and warns about the others (the Warning
// header), a dry run tells the webhooks so and stores nothing, a dead webhook refuses
// writes under failurePolicy Fail and is skipped under Ignore, a webhook that does not
// answer in timeoutSeconds likewise; webhooks never see the configurations' own
// writes, and a configuration's deletion counts from the next request.
func TestWebhooksREST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	ca := newWebhookCA(t, "127.0.0.1")
	patchType := admissionv1.PatchTypeJSONPatch
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/label": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm corev1.ConfigMap
			json.Unmarshal(r.Object.Raw, &cm)
			patch := `[{"op":"add","path":"/metadata/labels","value":{"webhook":"mutated"}}]`
			if cm.Labels != nil {
				patch = `[{"op":"add","path":"/metadata/labels/webhook","value":"mutated"}]`
			}
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType, Patch: []byte(patch)}
		},
		"/deny": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm corev1.ConfigMap
			json.Unmarshal(r.Object.Raw, &cm)
			if cm.Labels["deny"] == "true" {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden, Message: "deny=true is not welcome here"}}
			}
			return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"configmap " + r.Name + " looked at"}}
		},
		"/everything": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "nothing passes"}}
		},
		"/hang": func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return nil },
	})
	const (
		mutatingBase   = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
		validatingBase = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
		cms            = "/api/v1/namespaces/default/configmaps"
	)
	label := ws.url + "/label"
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "label"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "label.skiff.test", Rules: configMapRule(admissionregistrationv1.Create),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &label, CABundle: ca.bundle},
			SideEffects:  new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}}
	kinds.SetTypeMeta(mutating)
	got := decodeJSON[admissionregistrationv1.MutatingWebhookConfiguration](t, rc.want(rc.do("POST", mutatingBase, "application/json", "", mutating), 201, "mutating configuration").body)
	if h := got.Webhooks[0]; h.FailurePolicy == nil || *h.FailurePolicy != admissionregistrationv1.Fail || *h.TimeoutSeconds != 10 ||
		*h.ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy || *h.MatchPolicy != admissionregistrationv1.Equivalent ||
		h.NamespaceSelector == nil || *h.Rules[0].Scope != admissionregistrationv1.AllScopes {
		t.Errorf("defaults: %+v", h)
	}
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("deny", ws.url+"/deny", ca.bundle, admissionregistrationv1.Fail, 10,
		configMapRule(admissionregistrationv1.Create, admissionregistrationv1.Update))), 201, "validating configuration")

	cm := func(name string, labels map[string]string) *corev1.ConfigMap {
		o := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		kinds.SetTypeMeta(o)
		return o
	}
	r := rc.want(rc.do("POST", cms, "application/json", "", cm("plain", nil)), 201, "a ConfigMap")
	if out := decodeJSON[corev1.ConfigMap](t, r.body); out.Labels["webhook"] != "mutated" {
		t.Errorf("the mutating webhook's label is missing: %v", out.Labels)
	}
	if w := r.header.Values("Warning"); len(w) != 1 || !strings.Contains(w[0], "configmap plain looked at") {
		t.Errorf("Warning headers: %q", w)
	}
	stored := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("GET", cms+"/plain", "", "", nil), 200, "stored").body)
	if stored.Labels["webhook"] != "mutated" {
		t.Errorf("stored without the webhook's label: %v", stored.Labels)
	}
	reqs := ws.requests("/deny")
	if len(reqs) != 1 {
		t.Fatalf("the validating webhook got %d requests", len(reqs))
	}
	if rq := reqs[0]; rq.Operation != admissionv1.Create || rq.Name != "plain" || rq.Namespace != "default" || rq.Kind.Kind != "ConfigMap" ||
		rq.Resource.Resource != "configmaps" || rq.DryRun == nil || *rq.DryRun || !strings.Contains(string(rq.Object.Raw), `"webhook":"mutated"`) ||
		!strings.Contains(string(rq.Options.Raw), `"kind":"CreateOptions"`) && len(rq.Options.Raw) == 0 {
		t.Errorf("the validating webhook's request: %+v", rq)
	}

	st := rc.want(rc.do("POST", cms, "application/json", "", cm("refused", map[string]string{"deny": "true"})), 403, "denied").status()
	if want := `admission webhook "deny.skiff.test" denied the request: deny=true is not welcome here`; st.Message != want || st.Reason != metav1.StatusReasonForbidden {
		t.Errorf("denial: %q (%s), want %q", st.Message, st.Reason, want)
	}
	rc.want(rc.do("GET", cms+"/refused", "", "", nil), 404, "a denied ConfigMap")

	// An update: the validating webhook sees the old object and the new.
	stored.Labels["deny"] = "true"
	before := len(ws.requests("/deny"))
	st = rc.want(rc.do("PUT", cms+"/plain", "application/json", "", stored), 403, "denied update").status()
	if !strings.Contains(st.Message, `admission webhook "deny.skiff.test" denied the request`) {
		t.Errorf("update denial: %s", st.Message)
	}
	reqs = ws.requests("/deny")
	if rq := reqs[len(reqs)-1]; rq.Operation != admissionv1.Update || len(rq.OldObject.Raw) == 0 {
		t.Errorf("the update's request: %+v", rq)
	}
	if n := len(reqs) - before; n != 1 { // the update's second, linearizable read of the same revision is not sent again
		t.Errorf("one update, %d reviews", n)
	}

	// The gRPC API goes through the same chain.
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	configMaps := client.For[*corev1.ConfigMap](conn)
	if out, err := configMaps.Create(ctx, cm("grpc", nil)); err != nil || out.Labels["webhook"] != "mutated" {
		t.Errorf("gRPC create: %v, labels %v", err, out.GetLabels())
	}
	if _, err := configMaps.Create(ctx, cm("grpc-refused", map[string]string{"deny": "true"})); err == nil ||
		!strings.Contains(err.Error(), `admission webhook "deny.skiff.test" denied the request: deny=true is not welcome here`) {
		t.Errorf("gRPC denial: %v", err)
	}

	// A dry run: the webhooks are told, nothing is stored.
	before = len(ws.requests("/deny"))
	r = rc.want(rc.do("POST", cms+"?dryRun=All", "application/json", "", cm("dry", nil)), 201, "a dry run")
	if out := decodeJSON[corev1.ConfigMap](t, r.body); out.Labels["webhook"] != "mutated" {
		t.Errorf("dry run without the webhook's label: %v", out.Labels)
	}
	if reqs := ws.requests("/deny"); len(reqs) != before+1 || reqs[before].DryRun == nil || !*reqs[before].DryRun {
		t.Errorf("the dry run's review does not say dryRun")
	}
	rc.want(rc.do("GET", cms+"/dry", "", "", nil), 404, "a dry run's ConfigMap")

	// A dead webhook: Fail refuses, Ignore lets the write through.
	dead := listenLocal(t)
	deadURL := "https://" + dead.Addr().String() + "/"
	dead.Close()
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("dead", deadURL, ca.bundle, admissionregistrationv1.Ignore, 10,
		configMapRule(admissionregistrationv1.Create))), 201, "a dead webhook, Ignore")
	rc.want(rc.do("POST", cms, "application/json", "", cm("past-the-dead", nil)), 201, "a create past a dead webhook (Ignore)")
	dc := decodeJSON[admissionregistrationv1.ValidatingWebhookConfiguration](t, rc.want(rc.do("GET", validatingBase+"/dead", "", "", nil), 200, "dead").body)
	dc.Webhooks[0].FailurePolicy = new(admissionregistrationv1.Fail)
	rc.want(rc.do("PUT", validatingBase+"/dead", "application/json", "", dc), 200, "a dead webhook, Fail")
	st = rc.want(rc.do("POST", cms, "application/json", "", cm("stopped-by-the-dead", nil)), 500, "a create stopped by a dead webhook (Fail)").status()
	if !strings.Contains(st.Message, `failed calling webhook "dead.skiff.test"`) {
		t.Errorf("a dead webhook's failure: %s", st.Message)
	}
	rc.want(rc.do("DELETE", validatingBase+"/dead", "", "", nil), 200, "delete the dead webhook")
	rc.want(rc.do("POST", cms, "application/json", "", cm("after-the-dead", nil)), 201, "a create once the dead webhook is gone")

	// A webhook that does not answer within its timeout.
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("hang", ws.url+"/hang", ca.bundle, admissionregistrationv1.Fail, 1,
		configMapRule(admissionregistrationv1.Create))), 201, "a hanging webhook")
	start := time.Now()
	st = rc.want(rc.do("POST", cms, "application/json", "", cm("timed-out", nil)), 500, "a create past a hanging webhook (Fail)").status()
	// The URL carries the timeout, as client-go's requests do (AdmissionWebhook's "should
	// honor timeout" looks for it).
	if !strings.Contains(st.Message, `failed calling webhook "hang.skiff.test"`) || !strings.Contains(st.Message, "deadline exceeded") ||
		!strings.Contains(st.Message, `/hang?timeout=1s"`) {
		t.Errorf("timeout: %s", st.Message)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a 1 s timeout took %v", d)
	}
	rc.want(rc.do("DELETE", validatingBase+"/hang", "", "", nil), 200, "delete the hanging webhook")

	// A webhook on everything does not see the configurations' own writes: it can be
	// removed.
	all := validatingHook("everything", ws.url+"/everything", ca.bundle, admissionregistrationv1.Fail, 10,
		[]admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"*"},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}}}})
	rc.want(rc.do("POST", validatingBase, "application/json", "", all), 201, "a webhook on everything")
	st = rc.want(rc.do("POST", cms, "application/json", "", cm("nothing-passes", nil)), 400, "refused by everything").status()
	if st.Message != `admission webhook "everything.skiff.test" denied the request: nothing passes` {
		t.Errorf("refused by everything: %s", st.Message)
	}
	rc.want(rc.do("DELETE", validatingBase+"/everything", "", "", nil), 200, "delete the webhook on everything")
	if n := len(ws.requests("/everything")); n != 1 {
		t.Errorf("the webhook on everything saw %d requests, want 1 (not its configuration's)", n)
	}
	rc.want(rc.do("POST", cms, "application/json", "", cm("everything-gone", nil)), 201, "a create once everything is gone")
}

// TestWebhookConfigurationValidation: Kubernetes' refusals, in its words; the kinds in
// aggregated discovery, OpenAPI v3 and kubectl's table.
func TestWebhookConfigurationValidation(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const base = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
	good := func() *admissionregistrationv1.ValidatingWebhookConfiguration {
		return validatingHook("v", "https://127.0.0.1:9/x", nil, admissionregistrationv1.Fail, 10, configMapRule(admissionregistrationv1.Create))
	}
	for _, tc := range []struct {
		name string
		edit func(*admissionregistrationv1.ValidatingWebhook)
		want string
	}{
		{"no sideEffects", func(h *admissionregistrationv1.ValidatingWebhook) { h.SideEffects = nil },
			"webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"},
		{"http", func(h *admissionregistrationv1.ValidatingWebhook) { h.ClientConfig.URL = new("http://127.0.0.1/") },
			`webhooks[0].clientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]`},
		{"neither url nor service", func(h *admissionregistrationv1.ValidatingWebhook) { h.ClientConfig.URL = nil },
			"webhooks[0].clientConfig: Required value: exactly one of url or service is required"},
		{"timeout", func(h *admissionregistrationv1.ValidatingWebhook) { h.TimeoutSeconds = new(int32(31)) },
			"webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"},
		{"name", func(h *admissionregistrationv1.ValidatingWebhook) { h.Name = "short" },
			`webhooks[0].name: Invalid value: "short": should be a domain with at least three segments separated by dots`},
		{"review versions", func(h *admissionregistrationv1.ValidatingWebhook) { h.AdmissionReviewVersions = []string{"v2"} },
			`webhooks[0].admissionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1`},
		{"operations", func(h *admissionregistrationv1.ValidatingWebhook) {
			h.Rules[0].Operations = []admissionregistrationv1.OperationType{"PATCH"}
		},
			`webhooks[0].rules[0].operations[0]: Unsupported value: "PATCH"`},
		{"resources", func(h *admissionregistrationv1.ValidatingWebhook) { h.Rules[0].Resources = []string{"*", "pods"} },
			`webhooks[0].rules[0].resources: Invalid value: ["*","pods"]: if '*' is present, must not specify other resources without subresources`},
		{"matchConditions", func(h *admissionregistrationv1.ValidatingWebhook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "object.metadata.name"}}
		}, `webhooks[0].matchConditions[0].expression: Invalid value: "object.metadata.name": must evaluate to bool`},
		{"matchConditions' names", func(h *admissionregistrationv1.ValidatingWebhook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "true"}, {Name: "c", Expression: "true"}}
		}, `webhooks[0].matchConditions[1].name: Duplicate value: "c"`},
	} {
		cfg := good()
		cfg.Name = strings.ReplaceAll(tc.name, " ", "-")
		tc.edit(&cfg.Webhooks[0])
		st := rc.want(rc.do("POST", base, "application/json", "", cfg), 422, tc.name).status()
		if !strings.Contains(st.Message, tc.want) {
			t.Errorf("%s: %s\nwant %s", tc.name, st.Message, tc.want)
		}
	}
	// Served as every kind: aggregated discovery and OpenAPI v3 name them.
	agg := string(rc.want(rc.do("GET", "/apis", "", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", nil), 200, "aggregated /apis").body)
	if !strings.Contains(agg, `"resource":"mutatingwebhookconfigurations"`) || !strings.Contains(agg, `"resource":"validatingwebhookconfigurations"`) {
		t.Errorf("aggregated discovery without the webhook configurations")
	}
	v3 := string(rc.want(rc.do("GET", "/openapi/v3/apis/admissionregistration.k8s.io/v1", "", "", nil), 200, "OpenAPI v3").body)
	if !strings.Contains(v3, "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration") {
		t.Errorf("OpenAPI v3 of admissionregistration.k8s.io/v1 without ValidatingWebhookConfiguration")
	}
	table := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base, "", "application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	if len(table.ColumnDefinitions) != 3 || table.ColumnDefinitions[1].Name != "Webhooks" {
		t.Errorf("columns: %+v", table.ColumnDefinitions)
	}
}

// TestWebhookService: a webhook configuration that names a Service is called at a ready
// endpoint of it, its certificate verified as SERVICE.NAMESPACE.svc against caBundle.
// The webhook runs in a network namespace the test makes, joined to this one by a veth
// pair, as a pod's address is reachable from the node its API server runs on (an
// EndpointSlice may not hold a loopback address).
func TestWebhookService(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "skwh-" + hex.EncodeToString(b)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() }) // takes the veth pair along
	subnet := fmt.Sprintf("10.253.%d", b[0])
	ip("link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
	ip("addr", "add", subnet+".1/30", "dev", name)
	ip("link", "set", name, "up")
	ip("-n", name, "addr", "add", subnet+".2/30", "dev", "eth0")
	ip("-n", name, "link", "set", "eth0", "up")
	ip("-n", name, "link", "set", "lo", "up")

	// The webhook's socket, made by a thread inside the namespace.
	lnc := make(chan any, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			defer unix.Close(fd)
			if err = unix.Unshare(unix.CLONE_FS); err == nil {
				err = unix.Setns(fd, unix.CLONE_NEWNET)
			}
		}
		if err != nil {
			lnc <- err
			return
		}
		ln, err := net.Listen("tcp", subnet+".2:8443")
		if err != nil {
			lnc <- err
			return
		}
		lnc <- ln
	}()
	var ln net.Listener
	switch v := (<-lnc).(type) {
	case error:
		t.Fatalf("listen in %s: %v", name, v)
	case net.Listener:
		ln = v
	}
	ca := newWebhookCA(t, "hook.default.svc")
	patchType := admissionv1.PatchTypeJSONPatch
	ws := serveWebhooks(t, ln, ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/label": func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType,
				Patch: []byte(`[{"op":"add","path":"/metadata/labels","value":{"via":"service"}}]`)}
		},
	})

	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	if _, err := client.For[*corev1.Service](conn).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hook"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*discoveryv1.EndpointSlice](conn).Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default",
		Name: "hook-1", Labels: map[string]string{discoveryv1.LabelServiceName: "hook"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{subnet + ".2"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		Ports:     []discoveryv1.EndpointPort{{Name: new("https"), Port: new(int32(8443)), Protocol: new(corev1.ProtocolTCP)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*admissionregistrationv1.MutatingWebhookConfiguration](conn).Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "by-service"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "by-service.skiff.test",
			Rules: configMapRule(admissionregistrationv1.Create), SideEffects: new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: ca.bundle, Service: &admissionregistrationv1.ServiceReference{
				Namespace: "default", Name: "hook", Path: new("/label")}}}}}); err != nil {
		t.Fatal(err)
	}
	out, err := client.For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "labelled"}})
	if err != nil || out.Labels["via"] != "service" {
		t.Fatalf("a ConfigMap past the Service's webhook: %v, labels %v", err, out.GetLabels())
	}
	if n := len(ws.requests("/label")); n != 1 {
		t.Errorf("the webhook got %d requests", n)
	}
}
