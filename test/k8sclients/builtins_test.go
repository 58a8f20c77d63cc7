package k8sclients

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// builtinsCluster is one API server that restores its built-in objects every 100 ms,
// and client-go's typed and dynamic clients of it.
func builtinsCluster(t *testing.T) (*kubernetes.Clientset, *dynamic.DynamicClient) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		cfg.BuiltinsInterval = 100 * time.Millisecond
	}})
	cfg := &rest.Config{Host: "https://" + c.Addr(0), UserAgent: "k8sclients-test", QPS: -1, Timeout: 30 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, pki.CACertFile),
			CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key")}}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return clientset(t, dir, c.Addr(0)), dc
}

// wantInvalid fails unless err is a 422 whose message has each of words.
func wantInvalid(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Errorf("%s: want Invalid, got %v", what, err)
		return
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q lacks %q", what, err, w)
		}
	}
}

// TestFlowControlKinds: FlowSchemas and PriorityLevelConfigurations are served as the
// conformance tests use them (discovery with their status subresources, every verb,
// the status written alone), with Kubernetes' defaults and validation; the mandatory
// exempt and catch-all objects exist, their specs are fixed, and one deleted comes back.
func TestFlowControlKinds(t *testing.T) {
	cs, dc := builtinsCluster(t)
	ctx := ctxT(t, 2*time.Minute)

	res, err := cs.Discovery().ServerResourcesForGroupVersion("flowcontrol.apiserver.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res.APIResources {
		names = append(names, r.Name)
	}
	for _, want := range []string{"flowschemas", "flowschemas/status", "prioritylevelconfigurations", "prioritylevelconfigurations/status"} {
		if !slices.Contains(names, want) {
			t.Errorf("flowcontrol.apiserver.k8s.io/v1 lists %v, not %s", names, want)
		}
	}

	fsc, plc := cs.FlowcontrolV1().FlowSchemas(), cs.FlowcontrolV1().PriorityLevelConfigurations()
	waitfor.Condition(t, 30*time.Second, "the mandatory objects", func() (bool, string) {
		for _, name := range []string{"exempt", "catch-all"} {
			fs, err := fsc.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if fs.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] != "true" {
				return false, fmt.Sprintf("flowschema %s annotations %v", name, fs.Annotations)
			}
			if _, err := plc.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
	catchAll, err := fsc.Get(ctx, "catch-all", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	catchAll.Spec.MatchingPrecedence = 5000
	_, err = fsc.Update(ctx, catchAll, metav1.UpdateOptions{})
	wantInvalid(t, "a mandatory schema's spec changed", err, "spec of 'catch-all' must equal the fixed value")
	if err := fsc.Delete(ctx, "exempt", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := plc.Delete(ctx, "catch-all", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the deleted mandatory objects restored", func() (bool, string) {
		fs, err := fsc.Get(ctx, "exempt", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if fs.Spec.MatchingPrecedence != 1 || fs.Spec.PriorityLevelConfiguration.Name != "exempt" {
			return false, fmt.Sprintf("exempt restored as %+v", fs.Spec)
		}
		pl, err := plc.Get(ctx, "catch-all", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return pl.Spec.Limited != nil && *pl.Spec.Limited.NominalConcurrencyShares == 5, fmt.Sprintf("catch-all restored as %+v", pl.Spec)
	})

	// A FlowSchema through every verb, as the conformance test does.
	label := map[string]string{"test": "fs"}
	fs := &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-example-fs-", Labels: label},
		Spec: flowcontrolv1.FlowSchemaSpec{PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
			DistinguisherMethod: &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:         []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "someone"}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}}}}}
	for range 2 {
		if _, err := fsc.Create(ctx, fs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	created, err := fsc.Create(ctx, fs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.MatchingPrecedence != 1000 || created.Generation != 1 {
		t.Errorf("created: matchingPrecedence %d (want the default 1000), generation %d", created.Spec.MatchingPrecedence, created.Generation)
	}
	patched, err := fsc.Patch(ctx, created.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"matchingPrecedence":9999}}`), metav1.PatchOptions{})
	if err != nil || patched.Spec.MatchingPrecedence != 9999 || patched.Generation != 2 {
		t.Fatalf("patch: %v %+v", err, patched)
	}
	st, err := dc.Resource(flowcontrolv1.SchemeGroupVersion.WithResource("flowschemas")).Get(ctx, created.Name, metav1.GetOptions{}, "status")
	if err != nil || st.GetUID() != created.UID || st.GetKind() != "FlowSchema" {
		t.Fatalf("get status: %v %v", err, st)
	}
	statusPatched, err := fsc.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"status":{"conditions":[{"type":"PatchStatusFailed","status":"False","reason":"e2e"}]}}`), metav1.PatchOptions{}, "status")
	if err != nil || len(statusPatched.Status.Conditions) != 1 || statusPatched.Generation != 2 {
		t.Fatalf("patch status: %v %+v", err, statusPatched)
	}
	statusPatched.Status.Conditions = append(statusPatched.Status.Conditions, statusPatched.Status.Conditions[0])
	_, err = fsc.UpdateStatus(ctx, statusPatched, metav1.UpdateOptions{})
	wantInvalid(t, "a condition twice", err, "status.conditions[1].type: Duplicate value")
	// A spec update keeps the status; the status is not written on create.
	statusPatched.Status.Conditions = nil
	statusPatched.Spec.MatchingPrecedence = 9000
	updated, err := fsc.Update(ctx, statusPatched, metav1.UpdateOptions{})
	if err != nil || updated.Spec.MatchingPrecedence != 9000 || len(updated.Status.Conditions) != 1 {
		t.Fatalf("update: %v %+v", err, updated)
	}
	withStatus := fs.DeepCopy()
	withStatus.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Dangling", Status: "True"}}
	if c, err := fsc.Create(ctx, withStatus, metav1.CreateOptions{}); err != nil || len(c.Status.Conditions) != 0 {
		t.Errorf("create with a status: %v %+v", err, c)
	}
	bad := fs.DeepCopy()
	bad.Spec.MatchingPrecedence = 1
	bad.Spec.Rules[0].Subjects[0].Kind = "Robot"
	bad.Spec.Rules[0].NonResourceRules[0].NonResourceURLs = []string{"/a/*/b"}
	_, err = fsc.Create(ctx, bad, metav1.CreateOptions{})
	wantInvalid(t, "a bad FlowSchema", err, "only the schema named 'exempt' may have matchingPrecedence 1",
		`spec.rules[0].subjects[0].kind: Unsupported value: "Robot"`, "wildcard can only do suffix matching")
	if err := fsc.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "test=fs"}); err != nil {
		t.Fatal(err)
	}
	if l, err := fsc.List(ctx, metav1.ListOptions{LabelSelector: "test=fs"}); err != nil || len(l.Items) != 0 {
		t.Errorf("after deletecollection: %v %d left", err, len(l.Items))
	}

	// A PriorityLevelConfiguration: defaults and validation.
	pl := &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "queued"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{LimitResponse: flowcontrolv1.LimitResponse{
				Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &flowcontrolv1.QueuingConfiguration{}}}}}
	got, err := plc.Create(ctx, pl, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := got.Spec.Limited; *l.NominalConcurrencyShares != 30 || *l.LendablePercent != 0 ||
		*l.LimitResponse.Queuing != (flowcontrolv1.QueuingConfiguration{Queues: 64, HandSize: 8, QueueLengthLimit: 50}) {
		t.Errorf("defaults: %+v %+v", l, l.LimitResponse.Queuing)
	}
	got.Spec.Limited.LimitResponse.Queuing.HandSize = 65
	got.Spec.Type = flowcontrolv1.PriorityLevelEnablementExempt
	_, err = plc.Update(ctx, got, metav1.UpdateOptions{})
	wantInvalid(t, "a bad priority level", err, "must be 'Exempt' if and only if `name` is 'exempt'", "spec.limited: Forbidden")
}

// TestServiceCIDRAndIPAddress: the default ServiceCIDR "kubernetes" is the Services'
// range, Ready, with its status subresource; ranges are validated and fixed;
// IPAddresses are named by their address, with a fixed parent, through every verb.
func TestServiceCIDRAndIPAddress(t *testing.T) {
	cs, dc := builtinsCluster(t)
	ctx := ctxT(t, 2*time.Minute)
	scs := cs.NetworkingV1().ServiceCIDRs()
	waitfor.Condition(t, 30*time.Second, "the default ServiceCIDR ready", func() (bool, string) {
		sc, err := scs.Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := len(sc.Status.Conditions) == 1 && sc.Status.Conditions[0].Type == "Ready" && sc.Status.Conditions[0].Status == "True"
		return ready && slices.Equal(sc.Spec.CIDRs, []string{apiserver.DefaultServiceCIDR}), fmt.Sprintf("%+v", sc)
	})
	st, err := dc.Resource(networkingv1.SchemeGroupVersion.WithResource("servicecidrs")).Get(ctx, "kubernetes", metav1.GetOptions{}, "status")
	if err != nil || st.GetKind() != "ServiceCIDR" {
		t.Fatalf("status: %v %v", err, st)
	}
	if err := scs.Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the default ServiceCIDR restored", func() (bool, string) {
		_, err := scs.Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	_, err = scs.Create(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "two"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/24", "10.97.0.0/24"}}}, metav1.CreateOptions{})
	wantInvalid(t, "two IPv4 ranges", err, "may specify no more than one IP for each IP family")
	extra, err := scs.Create(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "extra"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/24"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	extra.Spec.CIDRs = []string{"10.98.0.0/24"}
	_, err = scs.Update(ctx, extra, metav1.UpdateOptions{})
	wantInvalid(t, "a range changed", err, "spec.cidrs[0]", "field is immutable")
	extra.Spec.CIDRs = []string{"10.96.0.0/24", "fd00::/108"}
	if _, err := scs.Update(ctx, extra, metav1.UpdateOptions{}); err != nil {
		t.Errorf("a second family added: %v", err)
	}

	ips := cs.NetworkingV1().IPAddresses()
	parent := &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"}
	for name, kind := range map[string]string{"255.255.255.255": "broadcast", "fe80::42:1dff:fe84:f9e2": "link-local"} {
		ip := &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"type": kind}},
			Spec: networkingv1.IPAddressSpec{ParentRef: parent}}
		if _, err := ips.Create(ctx, ip, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	_, err = ips.Create(ctx, &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "not-an-ip"}}, metav1.CreateOptions{})
	wantInvalid(t, "a bad IPAddress", err, "metadata.name", "must be a valid IP address", "spec.parentRef: Required value")
	patched, err := ips.Patch(ctx, "255.255.255.255", types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["patched"] != "true" {
		t.Fatalf("patch: %v %+v", err, patched)
	}
	patched.Spec.ParentRef = &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "web"}
	_, err = ips.Update(ctx, patched, metav1.UpdateOptions{})
	wantInvalid(t, "a parent changed", err, "spec.parentRef", "field is immutable")
	if l, err := ips.List(ctx, metav1.ListOptions{LabelSelector: "type=broadcast"}); err != nil || len(l.Items) != 1 {
		t.Fatalf("list: %v %+v", err, l)
	}
	if err := ips.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "type=link-local"}); err != nil {
		t.Fatal(err)
	}
	if err := ips.Delete(ctx, "255.255.255.255", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := ips.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("after the deletes: %v %+v", err, l)
	}
}

// TestStorageVersionMigrationAndAPIService: StorageVersionMigrations are stored with a
// fixed spec and a status whose finished conditions stay; the local APIServices of the
// served groups are listed, Available, and come back when deleted.
func TestStorageVersionMigrationAndAPIService(t *testing.T) {
	cs, dc := builtinsCluster(t)
	ctx := ctxT(t, 2*time.Minute)
	svms := cs.StoragemigrationV1().StorageVersionMigrations()
	m, err := svms.Create(ctx, &storagemigrationv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "foo"},
		Spec: storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Resource: "foo"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Spec.Resource.Resource = "bar"
	_, err = svms.Update(ctx, m, metav1.UpdateOptions{})
	wantInvalid(t, "the spec changed", err, "spec: Invalid value", "field is immutable")
	m.Spec.Resource.Resource = "foo"
	m.Status.Conditions = []metav1.Condition{{Type: string(storagemigrationv1.MigrationSucceeded), Status: metav1.ConditionTrue,
		Reason: "Done", LastTransitionTime: metav1.Now()}}
	m, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Status.Conditions[0].Status = metav1.ConditionFalse
	_, err = svms.UpdateStatus(ctx, m, metav1.UpdateOptions{})
	wantInvalid(t, "success undone", err, "Success condition cannot be set to false once it is true")
	_, err = svms.Create(ctx, &storagemigrationv1.StorageVersionMigration{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: storagemigrationv1.StorageVersionMigrationSpec{Resource: metav1.GroupResource{Group: "Not_A_Group"}}}, metav1.CreateOptions{})
	wantInvalid(t, "a bad migration", err, "spec.resource.resource: Required value", "spec.resource.group")

	apiServices := dc.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"})
	waitfor.Condition(t, 30*time.Second, "the local APIServices", func() (bool, string) {
		l, err := apiServices.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		available := map[string]bool{}
		for _, s := range l.Items {
			conds, _, _ := unstructured.NestedSlice(s.Object, "status", "conditions")
			for _, c := range conds {
				c := c.(map[string]any)
				if c["type"] == "Available" && c["status"] == "True" && c["reason"] == "Local" {
					available[s.GetName()] = true
				}
			}
			if _, ok := s.Object["spec"].(map[string]any)["service"]; ok {
				return false, s.GetName() + " has a service"
			}
		}
		for _, want := range []string{"v1.", "v1.apps", "v1.flowcontrol.apiserver.k8s.io", "v1.storagemigration.k8s.io", "v1.networking.k8s.io"} {
			if !available[want] {
				return false, fmt.Sprintf("%s not available: %v", want, available)
			}
		}
		return true, ""
	})
	if err := apiServices.Delete(ctx, "v1.apps", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "v1.apps restored", func() (bool, string) {
		s, err := apiServices.Get(ctx, "v1.apps", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		spec := s.Object["spec"].(map[string]any)
		return spec["group"] == "apps" && spec["groupPriorityMinimum"] == int64(17800), fmt.Sprintf("%v", spec)
	})
}
