package k8sclients

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
)

// TestKubectlWebhooks: kubectl applies a ValidatingWebhookConfiguration whose webhook
// (served by this test, behind a CA of its own in caBundle) refuses ConfigMaps labelled
// deny=true; kubectl lists it with Kubernetes' columns, sees its denial in Kubernetes'
// words and its warning, and creates what it allows.
func TestKubectlWebhooks(t *testing.T) {
	s := startSkiff(t)
	caPEM, cert := servingCert(t, "webhook test CA", "webhook", "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rev admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&rev); err != nil || rev.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var cm corev1.ConfigMap
		json.Unmarshal(rev.Request.Object.Raw, &cm)
		resp := &admissionv1.AdmissionResponse{UID: rev.Request.UID, Allowed: cm.Labels["deny"] != "true"}
		if resp.Allowed {
			resp.Warnings = []string{"configmap " + cm.Name + " checked by the webhook"}
		} else {
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "ConfigMaps labelled deny=true are refused"}
		}
		rev.Request, rev.Response = nil, resp
		json.NewEncoder(w).Encode(&rev)
	})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	config := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: deny-labelled
webhooks:
- name: deny.skiff.test
  clientConfig:
    url: https://%s/validate
    caBundle: %s
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["configmaps"]
  sideEffects: None
  admissionReviewVersions: ["v1"]
  failurePolicy: Fail
`, ln.Addr(), base64.StdEncoding.EncodeToString(caPEM))
	if out, err := s.runEnv(nil, config, "apply", "-f", "-"); err != nil || !strings.Contains(out, "validatingwebhookconfiguration.admissionregistration.k8s.io/deny-labelled created") {
		t.Fatalf("apply the configuration: %v %s", err, out)
	}
	s.wantOut(`(?m)^NAME\s+WEBHOOKS\s+AGE\ndeny-labelled\s+1\s+\S+\n$`, "get", "validatingwebhookconfigurations")

	cm := func(name, labels string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  labels: {%s}\ndata:\n  a: b\n", name, labels)
	}
	out, errOut, err := s.runStreams(nil, cm("refused", "deny: \"true\""), "apply", "-f", "-")
	if err == nil || !strings.Contains(errOut, `admission webhook "deny.skiff.test" denied the request: ConfigMaps labelled deny=true are refused`) {
		t.Errorf("a denied ConfigMap: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = s.runStreams(nil, cm("allowed", "app: web"), "apply", "-f", "-")
	if err != nil || !strings.Contains(out, "configmap/allowed created") || !strings.Contains(errOut, "Warning: configmap allowed checked by the webhook") {
		t.Errorf("an allowed ConfigMap: %v\n%s%s", err, out, errOut)
	}
	if out, err := s.run("delete", "validatingwebhookconfiguration", "deny-labelled"); err != nil {
		t.Fatalf("delete the configuration: %v %s", err, out)
	}
	if out, err := s.runEnv(nil, cm("refused", "deny: \"true\""), "apply", "-f", "-"); err != nil || !strings.Contains(out, "configmap/refused created") {
		t.Errorf("once the configuration is gone: %v %s", err, out)
	}
}

// servingCert is a TLS server certificate for hosts, CN cn, issued by a new CA of the
// test's own named caName (valid an hour), and that CA's certificate (PEM): what a
// webhook's or an APIService's caBundle names.
func servingCert(t *testing.T, caName, cn string, hosts ...string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	ca, err := pki.NewCA(caName, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(pki.Request{CommonName: cn, Hosts: hosts, Server: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = tls.X509KeyPair(pair.CertPEM, pair.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM(), cert
}
