package apiserver_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// TestConnectAdmission: pods/exec, pods/attach, pods/portforward and pods/proxy go
// through the admission webhooks and the ValidatingAdmissionPolicies whose rules name
// CONNECT and the subresource, over REST and gRPC alike, as Kubernetes sends them: an
// AdmissionReview of operation CONNECT, its object the request's options (v1
// PodExecOptions, PodAttachOptions, PodPortForwardOptions, PodProxyOptions), resource
// v1 pods and the subresource; a refusal refuses the request, before the upgrade, in
// Kubernetes' words (the conformance test "should be able to deny attaching pod"'s); a
// mutating webhook's patch of the options is what runs.
func TestConnectAdmission(t *testing.T) {
	addr, conn := simPod(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc := newREST(t, addr, false)
	ca := newWebhookCA(t, "127.0.0.1")
	patchType := admissionv1.PatchTypeJSONPatch
	deny := func(msg string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden, Message: msg}}
	}
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/deny": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			switch r.SubResource {
			case "attach":
				return deny("attaching to pod '" + r.Name + "' is not allowed") // the conformance test's webhook
			case "exec":
				var o corev1.PodExecOptions
				if json.Unmarshal(r.Object.Raw, &o) == nil && slices.Contains(o.Command, "forbidden") {
					return deny("no forbidden commands")
				}
			case "portforward":
				var o corev1.PodPortForwardOptions
				if json.Unmarshal(r.Object.Raw, &o) == nil && slices.Contains(o.Ports, 9999) {
					return deny("not port 9999")
				}
			case "proxy":
				return deny("no proxying")
			}
			return allow
		},
		// echo before runs as echo after.
		"/rewrite": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var o corev1.PodExecOptions
			if json.Unmarshal(r.Object.Raw, &o) == nil && slices.Equal(o.Command, []string{"echo", "before"}) {
				return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType, Patch: []byte(`[{"op":"replace","path":"/command/1","value":"after"}]`)}
			}
			return allow
		},
	})
	connect := func(resources ...string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: resources}}}
	}
	const (
		mutatingBase   = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
		validatingBase = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
		web            = "/api/v1/namespaces/default/pods/web"
	)
	rewriteURL := ws.url + "/rewrite"
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rewrite"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "rewrite.skiff.test", Rules: connect("pods/exec"),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &rewriteURL, CABundle: ca.bundle},
			SideEffects:  new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}}
	kinds.SetTypeMeta(mutating)
	rc.want(rc.do("POST", mutatingBase, "application/json", "", mutating), 201, "the mutating configuration")
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("deny", ws.url+"/deny", ca.bundle, admissionregistrationv1.Fail, 10,
		connect("pods/attach", "pods/exec", "pods/portforward", "pods/proxy"))), 201, "the validating configuration")
	rc.want(rc.do("POST", policiesBase, "application/json", "", policy("no-rm", admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: connect("pods/exec")[0]}}},
		Validations: []admissionregistrationv1.Validation{{Expression: "object.kind == 'PodExecOptions' && request.operation == 'CONNECT' && object.command[0] != 'rm'",
			Message: "rm is not run here"}}})), 201, "the policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("no-rm-binding", "no-rm", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
		ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}})), 201, "the policy's binding")

	// REST: refused before the upgrade (the requests do not ask for one).
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{web + "/attach?stdin=true&stdout=true&container=c", 403, `admission webhook "deny.skiff.test" denied the request: attaching to pod 'web' is not allowed`},
		{web + "/exec?stdout=true&command=forbidden", 403, `admission webhook "deny.skiff.test" denied the request: no forbidden commands`},
		{web + "/exec?stdout=true&command=rm&command=-rf", 422, `pods "web" is forbidden: ValidatingAdmissionPolicy 'no-rm' with binding 'no-rm-binding' denied request: rm is not run here`},
		{web + "/portforward?ports=9999", 403, `admission webhook "deny.skiff.test" denied the request: not port 9999`},
		{web + "/proxy/index.html", 403, `admission webhook "deny.skiff.test" denied the request: no proxying`},
	} {
		if st := rc.want(rc.do("POST", c.path, "", "", nil), c.code, c.path).status(); st.Message != c.msg {
			t.Errorf("POST %s: %q, want %q", c.path, st.Message, c.msg)
		}
	}
	// Allowed: an exec runs, as the mutating webhook rewrote it.
	w := wsExec(t, addr, "exec", "v4.channel.k8s.io", execQuery("echo", "before"))
	if got, st := channelsUntilStatus(t, w); got[1] != "after\n" {
		t.Errorf("REST exec of echo before, rewritten: channels %q, status %s", got, st)
	}

	// gRPC (skiffctl exec, attach, port-forward): the same admission.
	_, _, err := execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"forbidden"}})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || st.Message() != `admission webhook "deny.skiff.test" denied the request: no forbidden commands` {
		t.Errorf("gRPC exec of forbidden: %v", err)
	}
	err = conn.Attach(ctx, "default", "web", client.ExecOptions{Stdout: new(strings.Builder)})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "attaching to pod 'web' is not allowed") {
		t.Errorf("gRPC attach: %v", err)
	}
	if _, err := conn.PortForward(ctx, "default", "web", 9999); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC port-forward to 9999: %v", err)
	}
	if out, _, err := execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"echo", "before"}}); err != nil || out != "after\n" {
		t.Errorf("gRPC exec of echo before, rewritten: %q, %v", out, err)
	}

	// The reviews.
	var sawExec, sawAttach, sawForward, sawProxy bool
	for _, rq := range ws.requests("/deny") {
		want := map[string]string{"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions", "proxy": "PodProxyOptions"}[rq.SubResource]
		if rq.Operation != admissionv1.Connect || rq.Kind != (metav1.GroupVersionKind{Version: "v1", Kind: want}) ||
			rq.Resource != (metav1.GroupVersionResource{Version: "v1", Resource: "pods"}) || rq.Name != "web" || rq.Namespace != "default" ||
			!strings.Contains(string(rq.Object.Raw), `"kind":"`+want+`"`) || len(rq.OldObject.Raw) != 0 {
			t.Errorf("the %s's AdmissionReview: op %s kind %v resource %v %s/%s\n%s", rq.SubResource, rq.Operation, rq.Kind, rq.Resource, rq.Namespace, rq.Name, rq.Object.Raw)
		}
		switch rq.SubResource {
		case "exec":
			sawExec = sawExec || strings.Contains(string(rq.Object.Raw), `"command":["echo","after"]`)
		case "attach":
			sawAttach = true
		case "portforward":
			sawForward = true
		case "proxy":
			sawProxy = strings.Contains(string(rq.Object.Raw), `"path":"/index.html"`)
		}
	}
	if !sawExec || !sawAttach || !sawForward || !sawProxy {
		t.Errorf("reviews seen: exec (rewritten) %t, attach %t, portforward %t, proxy %t", sawExec, sawAttach, sawForward, sawProxy)
	}
}
