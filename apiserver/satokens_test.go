package apiserver_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestServiceAccountTokens: a TokenRequest over REST issues a token bound to a pod;
// the token authenticates as the account (SelfSubjectReview) and reads OIDC discovery;
// it is refused once its pod is gone. A kubelet gets tokens over gRPC only for the pods
// bound to its node, bound to them.
func TestServiceAccountTokens(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, ServiceAccountAdmission: true})
	ctx := testCtx(t)
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default"}}
	kinds.SetTypeMeta(sa)
	admin.want(admin.do("POST", "/api/v1/namespaces/default/serviceaccounts", "application/json", "", sa), 201, "create account")
	mk := func(name, node string) *corev1.Pod {
		p := boundPod(name, node)
		p.Spec.ServiceAccountName = "robot"
		kinds.SetTypeMeta(p)
		return decodeJSONPod(t, admin.want(admin.do("POST", "/api/v1/namespaces/default/pods", "application/json", "", p), 201, "create "+name).body)
	}
	onW1, onW2, unbound := mk("on-w1", "w1"), mk("on-w2", "w2"), mk("unbound", "")

	tokenPath := "/api/v1/namespaces/default/serviceaccounts/robot/token"
	request := func(rc *restClient, pod *corev1.Pod, seconds int64) reply {
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
		if pod != nil {
			tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
		}
		return rc.do("POST", tokenPath, "application/json", "", tr)
	}
	st := admin.want(request(admin, unbound, 60), 422, "a 60 s token").status()
	if !strings.Contains(st.Message, "may not specify a duration less than 10 minutes") {
		t.Errorf("60 s token: %s", st.Message)
	}
	before := time.Now()
	tr := decodeJSON[authenticationv1.TokenRequest](t, admin.want(request(admin, unbound, 3600), 201, "token request").body)
	if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.Time.Before(before.Add(59*time.Minute)) {
		t.Fatalf("token request status %+v", tr.Status)
	}
	if len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != serviceaccount.DefaultIssuer {
		t.Errorf("default audiences %v", tr.Spec.Audiences)
	}

	// The token is the account.
	robot := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), tr.Status.Token)
	review := decodeJSON[authenticationv1.SelfSubjectReview](t, robot.want(robot.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		"application/json", "", `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`), 201, "whoami").body)
	ui := review.Status.UserInfo
	if ui.Username != "system:serviceaccount:default:robot" ||
		strings.Join(ui.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:default,system:authenticated" {
		t.Errorf("whoami = %+v", ui)
	}
	// Authorization is RBAC's: without rights an account reads no pods.
	robot.want(robot.do("GET", "/api/v1/namespaces/default/pods", "", "", nil), 403, "an account without rights")
	// OIDC discovery.
	oidc := decodeJSON[serviceaccount.OpenIDConfiguration](t, robot.want(robot.do("GET", "/.well-known/openid-configuration", "", "", nil), 200, "discovery").body)
	if oidc.Issuer != serviceaccount.DefaultIssuer || oidc.JWKSURI != serviceaccount.DefaultIssuer+"/openid/v1/jwks" {
		t.Errorf("discovery %+v", oidc)
	}
	jwks := robot.want(robot.do("GET", "/openid/v1/jwks", "", "", nil), 200, "jwks")
	if !strings.Contains(string(jwks.body), `"kty":"EC"`) || jwks.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("jwks %s %s", jwks.header.Get("Content-Type"), jwks.body)
	}

	// Its pod gone, the token is refused.
	admin.want(admin.do("DELETE", "/api/v1/namespaces/default/pods/unbound", "", "", nil), 200, "delete pod")
	st = robot.want(robot.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", "application/json", "", `{}`), 401, "whoami, pod deleted").status()
	if !strings.Contains(st.Message, "pod default/unbound has been deleted") {
		t.Errorf("token of a deleted pod: %s", st.Message)
	}

	// A kubelet: over gRPC, for its own pods only, bound to them.
	w1 := client.NewClientset(c.Dial(t, "kubelet-w1", client.Options{}))
	own := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", Name: onW1.Name, UID: onW1.UID}}}
	got, err := w1.Conn.CreateToken(ctx, "default", "robot", own)
	if err != nil || got.Status.Token == "" {
		t.Fatalf("kubelet's token for its pod: %v", err)
	}
	claims := decodeClaims(t, got.Status.Token)
	if claims.Kubernetes.Pod.UID != string(onW1.UID) || claims.Kubernetes.Node == nil || claims.Kubernetes.Node.Name != "w1" {
		t.Errorf("kubelet's token claims %+v", claims.Kubernetes)
	}
	other := own.DeepCopy()
	other.Spec.BoundObjectRef.Name, other.Spec.BoundObjectRef.UID = onW2.Name, onW2.UID
	if _, err := w1.Conn.CreateToken(ctx, "default", "robot", other); !client.IsForbidden(err) ||
		!strings.Contains(err.Error(), "bound to a pod scheduled on a different node") {
		t.Errorf("kubelet's token for another node's pod: %v", err)
	}
	unboundTR := &authenticationv1.TokenRequest{}
	if _, err := w1.Conn.CreateToken(ctx, "default", "robot", unboundTR); !client.IsForbidden(err) {
		t.Errorf("kubelet's token bound to nothing: %v", err)
	}
	if _, err := w1.Conn.CreateToken(ctx, "default", "default", own); !client.IsForbidden(err) {
		t.Errorf("kubelet's token of an account none of its pods runs as: %v", err)
	}
}

// TestServiceAccountTokenMount: the ServiceAccount admission mounts Kubernetes'
// kube-api-access volume in every container unless automountServiceAccountToken is
// false on the pod or its account.
func TestServiceAccountTokenMount(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, ServiceAccountAdmission: true})
	ctx := testCtx(t)
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	for _, sa := range []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Namespace: "default"}, AutomountServiceAccountToken: new(false)},
	} {
		if _, err := cs.ServiceAccounts.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, account string
		pod           *bool
		want          bool
	}{
		{"mounted", "robot", nil, true},
		{"pod-says-no", "robot", new(false), false},
		{"account-says-no", "quiet", nil, false},
		{"pod-overrides-account", "quiet", new(true), true},
	} {
		p := podWithAccount("default", tc.name, tc.account)
		p.Spec.AutomountServiceAccountToken = tc.pod
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
		got, err := cs.Pods.Create(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var vol *corev1.Volume
		for i := range got.Spec.Volumes {
			if strings.HasPrefix(got.Spec.Volumes[i].Name, "kube-api-access-") {
				vol = &got.Spec.Volumes[i]
			}
		}
		if (vol != nil) != tc.want {
			t.Errorf("%s: volume %v, want one: %v", tc.name, vol, tc.want)
			continue
		}
		if vol == nil {
			continue
		}
		src := vol.Projected.Sources
		if len(vol.Name) != len("kube-api-access-")+5 || len(src) != 3 || src[0].ServiceAccountToken == nil ||
			*src[0].ServiceAccountToken.ExpirationSeconds != 3607 || src[0].ServiceAccountToken.Path != "token" ||
			src[1].ConfigMap == nil || src[1].ConfigMap.Name != "kube-root-ca.crt" || src[1].ConfigMap.Items[0].Path != "ca.crt" ||
			src[2].DownwardAPI == nil || src[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
			t.Errorf("%s: volume %s: %s", tc.name, vol.Name, fmt.Sprint(src))
		}
		for _, ctr := range append(got.Spec.InitContainers, got.Spec.Containers...) {
			m := ctr.VolumeMounts
			if len(m) != 1 || m[0].Name != vol.Name || m[0].MountPath != apiserver.ServiceAccountMountPath || !m[0].ReadOnly {
				t.Errorf("%s: container %s mounts %+v", tc.name, ctr.Name, m)
			}
		}
	}
}

func decodeJSONPod(t *testing.T, b []byte) *corev1.Pod {
	t.Helper()
	p := decodeJSON[corev1.Pod](t, b)
	return &p
}

// decodeClaims reads a token's claims, unverified.
func decodeClaims(t *testing.T, token string) serviceaccount.Claims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64RawURL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON[serviceaccount.Claims](t, b)
}

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestServiceAccountTokensFromCaches: a kubelet's TokenRequest reads the account and
// the pod from the member's caches (its local copy of accounts, the node graph), not
// linearizably from the store: once the member has a pod, its tokens cost no read
// barrier. A pod created through the leader a moment before, which a follower's graph
// has not seen yet, still gets its token there (the store answers what the graph
// misses); a pod just deleted gets none from the member that applied the delete (the
// graph answers only once it has what its member applied).
func TestServiceAccountTokensFromCaches(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir, ServiceAccountAdmission: true})
	ctx := testCtx(t)
	leader := c.Leader()
	follower := (leader + 1) % 3
	admin := dialSecure(t, c.Addr(leader), apicluster.ClientTLS(t, dir, "admin"), "")
	if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default"}})}); err != nil {
		t.Fatal(err)
	}
	kubelets := []apiv1.ResourcesClient{dialSecure(t, c.Addr(leader), apicluster.ClientTLS(t, dir, "kubelet-w1"), ""),
		dialSecure(t, c.Addr(follower), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")}
	token := func(kubelet apiv1.ResourcesClient, p *corev1.Pod) error {
		raw, err := (&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
			APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out, err := kubelet.CreateToken(ctx, &apiv1.CreateTokenRequest{Namespace: "default", Name: "robot", Raw: raw})
		if err != nil {
			return err
		}
		var tr authenticationv1.TokenRequest
		if err := tr.Unmarshal(out.GetRaw()); err != nil {
			t.Fatal(err)
		}
		if c := decodeClaims(t, tr.Status.Token); c.Kubernetes.Pod == nil || c.Kubernetes.Pod.UID != string(p.UID) ||
			c.Kubernetes.Node == nil || c.Kubernetes.Node.Name != "w1" {
			t.Errorf("token of %s: claims %+v", p.Name, c.Kubernetes)
		}
		return nil
	}

	// Each pod's token asked of the follower as soon as the leader has made the pod.
	var pods []*corev1.Pod
	for i := range 20 {
		p := boundPod(fmt.Sprintf("p%d", i), "w1")
		p.Spec.ServiceAccountName = "robot"
		created, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, p)})
		if err != nil {
			t.Fatal(err)
		}
		p = unwrap[*corev1.Pod](t, created)
		if err := token(kubelets[1], p); err != nil {
			t.Fatalf("token of %s, just made, from the follower: %v", p.Name, err)
		}
		pods = append(pods, p)
	}

	// Once the members have the pods, their tokens read no store. (A member's own
	// background reads may count: fewer than one per request.)
	barriers := func() (n int64) {
		for i := range 3 {
			n += c.Server(i).Store().ReadBarriers()
		}
		return n
	}
	waitfor.Condition(t, 30*time.Second, "tokens without read barriers", func() (bool, string) {
		before := barriers()
		for _, p := range pods {
			for _, k := range kubelets {
				if err := token(k, p); err != nil {
					t.Fatalf("token of %s: %v", p.Name, err)
				}
			}
		}
		n := barriers() - before
		return n < int64(len(pods)), fmt.Sprintf("%d tokens waited for %d read barriers", 2*len(pods), n)
	})

	// A pod deleted through the member that applies it: its token is refused there at
	// once after, though the graph follows the store a moment later.
	for _, p := range pods {
		if _, err := admin.Delete(ctx, &apiv1.DeleteRequest{Kind: kinds.Pod, Namespace: "default", Name: p.Name, GracePeriodSeconds: new(int64(0))}); err != nil {
			t.Fatal(err)
		}
		// NotFound; the last one's PermissionDenied: then no pod of the node runs as the
		// account, and the node authorizer refuses first.
		if err := token(kubelets[0], p); status.Code(err) != codes.NotFound && status.Code(err) != codes.PermissionDenied {
			t.Errorf("token of %s, just deleted: %v, want it refused", p.Name, err)
		}
	}
}
