package apiserver

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// wireSamples holds an object of every kind, with a note of noteLen bytes (so the
// stored value crosses the varint size boundaries), as clients write them.
func wireSamples(t *testing.T, noteLen int) []kinds.Object {
	t.Helper()
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: "5f0e3c1a-0000-4000-8000-000000000001", Generation: 1,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)),
			Labels:            map[string]string{"app": "web"}, Annotations: map[string]string{"note": strings.Repeat("x", noteLen)}}
	}
	objs := []kinds.Object{
		&corev1.Pod{ObjectMeta: meta("default", "web-1"), Spec: corev1.PodSpec{NodeName: "w1",
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5"}},
		&corev1.Node{ObjectMeta: meta("", "w1"), Spec: corev1.NodeSpec{Unschedulable: true}},
		&appsv1.ReplicaSet{ObjectMeta: meta("default", "web-abc"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2)}},
		&corev1.PodTemplate{ObjectMeta: meta("default", "tmpl"), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}},
		&nodev1.RuntimeClass{ObjectMeta: meta("", "runc"), Handler: "runc"},
		&schedulingv1.PriorityClass{ObjectMeta: meta("", "high"), Value: 1000, PreemptionPolicy: new(corev1.PreemptLowerPriority)},
		&certificatesv1.CertificateSigningRequest{ObjectMeta: meta("", "jane"), Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: []byte("-----BEGIN CERTIFICATE REQUEST-----\n"), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}, ExpirationSeconds: ptr.To[int32](3600), Username: "admin"},
			Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{
				{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AdminApproved"}}}},
		&certificatesv1.ClusterTrustBundle{ObjectMeta: meta("", "example.com:signer:roots"), Spec: certificatesv1.ClusterTrustBundleSpec{
			SignerName: "example.com/signer", TrustBundle: "-----BEGIN CERTIFICATE-----\n"}},
		&certificatesv1.PodCertificateRequest{ObjectMeta: meta("default", "web-abcde"), Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: "example.com/pods", PodName: "web", PodUID: "pod-uid", ServiceAccountName: "default", ServiceAccountUID: "sa-uid",
			NodeName: "w1", NodeUID: "node-uid", MaxExpirationSeconds: ptr.To[int32](86400), StubPKCS10Request: []byte{0x30, 0x82}},
			Status: certificatesv1.PodCertificateRequestStatus{Conditions: []metav1.Condition{{Type: "Denied", Status: metav1.ConditionTrue, Reason: "UnsupportedKeyType"}}}},
		&apiextensionsv1.CustomResourceDefinition{ObjectMeta: meta("", "crontabs.stable.example.com"), Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "crontabs", Singular: "crontab", Kind: "CronTab", ShortNames: []string{"ct"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}}},
			Status: apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}}},
		&networkingv1.IngressClass{ObjectMeta: meta("", "nginx"), Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		&networkingv1.Ingress{ObjectMeta: meta("default", "web"), Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx")}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: meta("", "injector"), Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:9443/inject")},
			SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: meta("", "policy"), Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "policy.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "default", Name: "policy"}}, SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: meta("", "max-replicas"), Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 5"}}}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: meta("", "max-replicas"), Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "max-replicas", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}},
		&admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: meta("", "owner"), Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			Mutations: []admissionregistrationv1.Mutation{{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: `Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`}}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy}},
		&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: meta("", "owner"), Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: "owner"}},
		&flowcontrolv1.FlowSchema{ObjectMeta: meta("", "probes"), Spec: flowcontrolv1.FlowSchemaSpec{MatchingPrecedence: 1000,
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "exempt"}}},
		&flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: meta("", "exempt"), Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementExempt}},
		&networkingv1.ServiceCIDR{ObjectMeta: meta("", "kubernetes"), Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.43.0.0/16"}}},
		&networkingv1.IPAddress{ObjectMeta: meta("", "10.43.0.1"), Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}}},
		&storagemigrationv1.StorageVersionMigration{ObjectMeta: meta("", "secrets"), Spec: storagemigrationv1.StorageVersionMigrationSpec{
			Resource: metav1.GroupResource{Resource: "secrets"}}},
		&apiregistrationv1.APIService{ObjectMeta: meta("", "v1.apps"), Spec: apiregistrationv1.APIServiceSpec{Group: "apps", Version: "v1",
			GroupPriorityMinimum: 17800, VersionPriority: 15}},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("default", "web"), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, MaxReplicas: 5}},
		&storagev1.CSINode{ObjectMeta: meta("", "w1"), Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{}}},
		&rbacv1.Role{ObjectMeta: meta("default", "reader"), Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}},
		&rbacv1.ClusterRole{ObjectMeta: meta("", "view"), AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}}}}},
		&rbacv1.RoleBinding{ObjectMeta: meta("default", "reader"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: meta("", "viewers"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "default"}}},
		&corev1.ReplicationController{ObjectMeta: meta("default", "legacy"), Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2),
			Selector: map[string]string{"name": "legacy"}}},
		&appsv1.Deployment{ObjectMeta: meta("default", "web"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}},
		&corev1.ConfigMap{ObjectMeta: meta("default", "cfg"), Data: map[string]string{"k": "v"}},
		&corev1.Event{ObjectMeta: meta("default", "web-1.17f"), Reason: "Started",
			EventTime: metav1.NewMicroTime(time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC))},
		&coordinationv1.Lease{ObjectMeta: meta("kube-node-lease", "w1"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("w1")}},
		&corev1.Namespace{ObjectMeta: meta("", "team"), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		// The wire carries a Secret's plaintext: what is stored encrypted is opened first.
		&corev1.Secret{ObjectMeta: meta("default", "db"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("s3cret")}},
		&corev1.ServiceAccount{ObjectMeta: meta("default", "default"), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}},
		&policyv1.PodDisruptionBudget{ObjectMeta: meta("default", "web"), Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1, ExpectedPods: 2}},
		&corev1.Service{ObjectMeta: meta("default", "web"), Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20",
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: meta("default", "web-abcde"), AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}},
		&corev1.Endpoints{ObjectMeta: meta("default", "web"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5", NodeName: ptr.To("w1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}},
		&corev1.ResourceQuota{ObjectMeta: meta("default", "compute"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": resource.MustParse("10")}},
			Status: corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{"pods": resource.MustParse("10")}, Used: corev1.ResourceList{"pods": resource.MustParse("3")}}},
		&corev1.LimitRange{ObjectMeta: meta("default", "limits"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}}},
		&appsv1.DaemonSet{ObjectMeta: meta("default", "agent"), Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3}},
		&appsv1.StatefulSet{ObjectMeta: meta("default", "db"), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), ServiceName: "db"}},
		&appsv1.ControllerRevision{ObjectMeta: meta("default", "db-6d4f"), Revision: 2, Data: runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}},
		&batchv1.Job{ObjectMeta: meta("default", "pi"), Spec: batchv1.JobSpec{Completions: ptr.To[int32](10)}},
		&batchv1.CronJob{ObjectMeta: meta("default", "nightly"), Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *"}},
		&corev1.PersistentVolume{ObjectMeta: meta("", "pv-1"), Spec: corev1.PersistentVolumeSpec{StorageClassName: "local-path"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("default", "data-db-0"), Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1"}},
		&storagev1.StorageClass{ObjectMeta: meta("", "local-path"), Provisioner: "skiff.io/local-path"},
	}
	have := map[*kinds.Info]bool{}
	for _, obj := range objs {
		have[kinds.Of(obj)] = true
	}
	for _, in := range kinds.All() {
		if !have[in] {
			t.Fatalf("no sample of %s: add one", in.Kind)
		}
	}
	return objs
}

// stored is obj as the store holds it (encode: no resourceVersion).
func stored(t *testing.T, obj kinds.Object) []byte {
	t.Helper()
	value, _, _, err := encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// atRevision is obj as the API serves it at revision rev: its kind set, resourceVersion rev.
func atRevision(obj kinds.Object, rev int64) kinds.Object {
	want := obj.DeepCopyObject().(kinds.Object)
	kinds.SetTypeMeta(want)
	want.SetResourceVersion(strconv.FormatInt(rev, 10))
	return want
}

// wantObject fails t unless env, an Object envelope as a client parses it, holds want.
func wantObject(t *testing.T, what string, env []byte, want kinds.Object) {
	t.Helper()
	var o apiv1.Object
	if err := proto.Unmarshal(env, &o); err != nil {
		t.Fatalf("%s: the envelope does not parse: %v", what, err)
	}
	got, err := kinds.Unwrap(&o)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("%s: decodes to\n%v\nwant\n%v", what, got, want)
	}
}

// Buffers are sized with wireObjectSize: it must be exactly what appendWireObject writes,
// and what it writes is the stored object with its resourceVersion.
func TestWireObject(t *testing.T) {
	for _, noteLen := range []int{0, 1, 127, 128, 16 << 10, 1<<20 + 512<<10} {
		for _, obj := range wireSamples(t, noteLen) {
			info, value := kinds.Of(obj), stored(t, obj)
			for _, rev := range []int64{1, 1 << 40, math.MaxInt64} {
				what := info.Kind + " of " + strconv.Itoa(len(value)) + " bytes at revision " + strconv.FormatInt(rev, 10)
				prepared := kinds.PrepareResourceVersion(value, rev)
				b := appendWireObject(nil, info, prepared)
				if got, want := len(b), wireObjectSize(info, prepared); got != want {
					t.Errorf("%s: appended %d bytes, wireObjectSize says %d", what, got, want)
				}
				wantObject(t, what, b, atRevision(obj, rev))
			}
		}
	}
}

// storedObject, the reply to a write, reaches the client as the stored object with its
// resourceVersion.
func TestStoredObject(t *testing.T) {
	for _, obj := range wireSamples(t, 10) {
		info := kinds.Of(obj)
		b, err := proto.Marshal(storedObject(info, stored(t, obj), 42))
		if err != nil {
			t.Fatal(err)
		}
		wantObject(t, info.Kind, b, atRevision(obj, 42))
	}
}

// encodeWatchResponse writes what marshalling the RawWatchResponse would, and each event
// decodes to the stored object with its resourceVersion; a bookmark's object is an object
// of the kind carrying only the resourceVersion.
func TestEncodeWatchResponse(t *testing.T) {
	for _, obj := range wireSamples(t, 300) {
		info := kinds.Of(obj)
		value := stored(t, obj)
		changed := obj.DeepCopyObject().(kinds.Object)
		changed.SetLabels(map[string]string{"app": "web", "tier": "front"})
		evs := []store.Event{
			{Type: store.Added, Revision: 7, Object: store.Object{Value: value, ModRevision: 7}},
			{Type: store.Modified, Revision: 8, Object: store.Object{Value: stored(t, changed), ModRevision: 8}},
			{Type: store.Deleted, Revision: 1 << 40, Object: store.Object{Value: value, ModRevision: 1 << 40}},
			{Type: store.Bookmark, Revision: 1<<40 + 1, Object: store.Object{Key: store.Key{Kind: info.Kind}, ModRevision: 1<<40 + 1}},
		}
		bookmark := info.New()
		wants := []kinds.Object{atRevision(obj, 7), atRevision(changed, 8), atRevision(obj, 1<<40), atRevision(bookmark, 1<<40+1)}

		want := &apiv1.RawWatchResponse{}
		for _, ev := range evs {
			v := ev.Object.Value
			if ev.Type == store.Bookmark {
				v = kinds.MustEncode(bookmark)
			}
			want.Events = append(want.Events, &apiv1.RawWatchEvent{Type: ev.Type.String(),
				Object: appendWireObject(nil, info, kinds.PrepareResourceVersion(v, ev.Object.ModRevision))})
		}
		wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		msg := encodeWatchResponse(info, evs)
		got := msg.data.Materialize()
		msg.data.Free()
		if !bytes.Equal(got, wantBytes) {
			t.Fatalf("%s: encoded %d bytes, differ from the marshalled RawWatchResponse's %d", info.Kind, len(got), len(wantBytes))
		}

		var resp apiv1.RawWatchResponse
		if err := proto.Unmarshal(got, &resp); err != nil || len(resp.Events) != len(evs) {
			t.Fatalf("%s: %d events, %v", info.Kind, len(resp.Events), err)
		}
		for i, ev := range resp.Events {
			if ev.Type != evs[i].Type.String() {
				t.Errorf("%s: event %d is %s, want %s", info.Kind, i, ev.Type, evs[i].Type)
			}
			wantObject(t, info.Kind+" "+ev.Type, ev.Object, wants[i])
		}
	}
}
