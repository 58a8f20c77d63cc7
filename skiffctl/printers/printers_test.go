package printers

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func meta(name string, d time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "42",
		CreationTimestamp: ago(d), Labels: map[string]string{"app": "web"}}
}

func fixtures() map[string][]kinds.Object {
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}}}}
	running := &corev1.Pod{ObjectMeta: meta("web-1", 90*time.Second), Spec: corev1.PodSpec{NodeName: "w1", Containers: tmpl.Spec.Containers},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5", StartTime: ptr.To(ago(80 * time.Second)),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Ready: true, RestartCount: 2,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(70 * time.Second)}}}}}}
	crashing := &corev1.Pod{ObjectMeta: meta("web-2", 5*time.Minute), Spec: corev1.PodSpec{NodeName: "w2", Containers: tmpl.Spec.Containers},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "web", RestartCount: 5,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}
	pending := &corev1.Pod{ObjectMeta: meta("web-3", 3*time.Hour), Spec: corev1.PodSpec{Containers: tmpl.Spec.Containers}}
	deleting := &corev1.Pod{ObjectMeta: meta("web-4", 50*time.Hour), Spec: corev1.PodSpec{Containers: tmpl.Spec.Containers},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	deleting.DeletionTimestamp = ptr.To(ago(time.Second))
	maxSurge, maxUnavailable := intstr.FromString("25%"), intstr.FromInt32(1)
	dep := &appsv1.Deployment{ObjectMeta: meta("web", 10*24*time.Hour), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: tmpl,
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable}}},
		Status: appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"}}}}
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("web-5d4f8b", 10*24*time.Hour), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3),
		Selector: dep.Spec.Selector, Template: tmpl}, Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2}}
	rs.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(dep)}
	resources := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("24Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", CreationTimestamp: ago(7 * time.Hour),
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""}},
		Spec: corev1.NodeSpec{Unschedulable: true, Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: resources, Allocatable: resources.DeepCopy(),
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: ago(5 * time.Second)}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "skiff-0.1", ContainerRuntimeVersion: "containerd://1.6.20", OSImage: "Debian"}}}
	ev := &corev1.Event{ObjectMeta: meta("web-1.1", time.Minute), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1"},
		Reason: "Scheduled", Message: "Successfully assigned default/web-1 to w1", Type: corev1.EventTypeNormal, Count: 1,
		Source: corev1.EventSource{Component: "scheduler", Host: "cp1"}, FirstTimestamp: ago(time.Minute), LastTimestamp: ago(time.Minute)}
	minAvailable, maxUnavail := intstr.FromInt32(2), intstr.FromString("25%")
	pdbs := []kinds.Object{
		&policyv1.PodDisruptionBudget{ObjectMeta: meta("web", 2*time.Hour), Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable,
			Selector: dep.Spec.Selector}, Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1, CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3}},
		&policyv1.PodDisruptionBudget{ObjectMeta: meta("db", 3*time.Minute), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &maxUnavail,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
	}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", UID: "uid-team", ResourceVersion: "7", CreationTimestamp: ago(time.Hour),
		DeletionTimestamp: ptr.To(ago(time.Minute))}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating, Conditions: []corev1.NamespaceCondition{
			{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, LastTransitionTime: ago(time.Minute), Reason: "SomeResourcesRemain",
				Message: "Some resources are remaining: configmaps. has 1 resource instances"},
			{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue, LastTransitionTime: ago(time.Minute), Reason: "SomeFinalizersRemain",
				Message: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"}}}}
	jobTmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: tmpl.Spec.Containers}}
	jobSel := &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: "uid-pi"}}
	jobs := []kinds.Object{
		&batchv1.Job{ObjectMeta: meta("pi", 10*time.Minute), Spec: batchv1.JobSpec{Completions: ptr.To[int32](10), Parallelism: ptr.To[int32](3),
			CompletionMode: ptr.To(batchv1.IndexedCompletion), BackoffLimit: ptr.To[int32](6), Suspend: ptr.To(false),
			TTLSecondsAfterFinished: ptr.To[int32](3600), ActiveDeadlineSeconds: ptr.To[int64](900),
			Selector: jobSel, Template: jobTmpl}, Status: batchv1.JobStatus{Succeeded: 10, Ready: ptr.To[int32](0), CompletedIndexes: "0-9",
			StartTime:      ptr.To(ago(10 * time.Minute)),
			CompletionTime: ptr.To(ago(8 * time.Minute)), Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue}, {Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}},
		&batchv1.Job{ObjectMeta: meta("queue", 2*time.Minute), Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](4), Selector: jobSel, Template: jobTmpl},
			Status: batchv1.JobStatus{Active: 4, StartTime: ptr.To(ago(90 * time.Second))}},
		&batchv1.Job{ObjectMeta: meta("held", time.Minute), Spec: batchv1.JobSpec{Completions: ptr.To[int32](1), Parallelism: ptr.To[int32](1),
			Selector: jobSel, Template: jobTmpl, Suspend: ptr.To(true)},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}}},
	}
	cronJobs := []kinds.Object{
		&batchv1.CronJob{ObjectMeta: meta("nightly", 3*24*time.Hour), Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr.To("Europe/Paris"),
			ConcurrencyPolicy: batchv1.ForbidConcurrent, SuccessfulJobsHistoryLimit: ptr.To[int32](3), FailedJobsHistoryLimit: ptr.To[int32](1),
			StartingDeadlineSeconds: ptr.To[int64](200), Suspend: ptr.To(false), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}},
			Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "nightly-1"}}, LastScheduleTime: ptr.To(ago(5 * time.Hour))}},
		&batchv1.CronJob{ObjectMeta: meta("fresh", time.Minute), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", Suspend: ptr.To(true),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}}},
	}
	q := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	quotas := []kinds.Object{&corev1.ResourceQuota{ObjectMeta: meta("compute", time.Hour),
		Spec: corev1.ResourceQuotaSpec{Hard: q("pods", "10", "requests.cpu", "2", "limits.memory", "2Gi"),
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort}},
		Status: corev1.ResourceQuotaStatus{Hard: q("pods", "10", "requests.cpu", "2", "limits.memory", "2Gi"),
			Used: q("pods", "3", "requests.cpu", "750m", "limits.memory", "0")}}}
	limitRanges := []kinds.Object{&corev1.LimitRange{ObjectMeta: meta("limits", time.Hour), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
		{Type: corev1.LimitTypeContainer, Min: q("cpu", "100m"), Max: q("cpu", "2", "memory", "1Gi"), Default: q("cpu", "2", "memory", "1Gi"),
			DefaultRequest: q("cpu", "250m", "memory", "1Gi"), MaxLimitRequestRatio: q("cpu", "4")},
		{Type: corev1.LimitTypePod, Max: q("memory", "4Gi")}}}}}
	lb := &corev1.Service{ObjectMeta: meta("front", time.Hour), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		ClusterIP: "10.43.7.9", ClusterIPs: []string{"10.43.7.9"}, Selector: map[string]string{"app": "front"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), NodePort: 31080, Protocol: corev1.ProtocolTCP},
			{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(5353), NodePort: 31053, Protocol: corev1.ProtocolUDP}},
		SessionAffinity: corev1.ServiceAffinityClientIP, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: 31999},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}}}}
	services := []kinds.Object{
		&corev1.Service{ObjectMeta: meta("web", time.Hour), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.20",
			Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: meta("db", time.Hour), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone}},
		&corev1.Service{ObjectMeta: meta("ext", time.Hour), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
		&corev1.Service{ObjectMeta: meta("pending", time.Hour), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.21",
			Ports: []corev1.ServicePort{{Port: 443, NodePort: 30443, Protocol: corev1.ProtocolTCP}}}},
		lb,
	}
	slices := []kinds.Object{
		&discoveryv1.EndpointSlice{ObjectMeta: meta("web-x7k2p", time.Hour), AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Port: ptr.To(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}, {Addresses: []string{"10.42.1.7"}},
				{Addresses: []string{"10.42.1.8"}}, {Addresses: []string{"10.42.2.3"}}, {Addresses: []string{"10.42.2.4"}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: meta("db-c8d9q", time.Hour), AddressType: discoveryv1.AddressTypeIPv4},
	}
	eps := []kinds.Object{
		// Two ports of the same addresses, and a not-ready address kubectl leaves out.
		&corev1.Endpoints{ObjectMeta: meta("web", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.42.0.5"}, {IP: "10.42.1.7"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.2.3"}},
			Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP}}}}},
		// A headless Service's subset without ports.
		&corev1.Endpoints{ObjectMeta: meta("db", time.Hour), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.0.9"}}}}},
		&corev1.Endpoints{ObjectMeta: meta("empty", time.Hour)},
	}
	return map[string][]kinds.Object{
		"services":             services,
		"endpointslices":       slices,
		"endpoints":            eps,
		"jobs":                 jobs,
		"cronjobs":             cronJobs,
		"resourcequotas":       quotas,
		"limitranges":          limitRanges,
		"poddisruptionbudgets": pdbs,
		"namespaces":           {terminating},
		"pods":                 {running, crashing, pending, deleting},
		"deployments":          {dep},
		"replicasets":          {rs},
		"replicationcontrollers": {&corev1.ReplicationController{ObjectMeta: meta("legacy", 2*time.Hour), Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](3), Selector: map[string]string{"app": "web"}, Template: &tmpl},
			Status: corev1.ReplicationControllerStatus{Replicas: 2, ReadyReplicas: 1, Conditions: []corev1.ReplicationControllerCondition{
				{Type: corev1.ReplicationControllerReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate"}}}}},
		"nodes":      {node},
		"events":     {ev},
		"configmaps": {&corev1.ConfigMap{ObjectMeta: meta("settings", time.Hour), Data: map[string]string{"a": "1", "b": "2"}}},
		"daemonsets": {&appsv1.DaemonSet{ObjectMeta: meta("agent", time.Hour), Spec: appsv1.DaemonSetSpec{Selector: dep.Spec.Selector,
			Template: func() corev1.PodTemplateSpec {
				t := *tmpl.DeepCopy()
				t.Spec.NodeSelector = map[string]string{"role": "worker"}
				return t
			}()},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}}},
		"statefulsets": {&appsv1.StatefulSet{ObjectMeta: meta("db", 2*time.Hour), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Template: tmpl},
			Status: appsv1.StatefulSetStatus{ReadyReplicas: 2}}},
		"controllerrevisions": {func() kinds.Object {
			r := &appsv1.ControllerRevision{ObjectMeta: meta("db-6d4f8", 2*time.Hour), Revision: 2}
			r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptr.To(true)}}
			return r
		}()},
		"persistentvolumes": {&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-1", CreationTimestamp: ago(time.Hour)},
			Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				ClaimRef: &corev1.ObjectReference{Namespace: "default", Name: "data-db-0"}, StorageClassName: "local-path"},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}}},
		"persistentvolumeclaims": {&corev1.PersistentVolumeClaim{ObjectMeta: meta("data-db-0", time.Hour), Spec: corev1.PersistentVolumeClaimSpec{
			VolumeName: "pvc-1", StorageClassName: ptr.To("local-path")}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}},
		"storageclasses": {&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path", CreationTimestamp: ago(time.Hour),
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}}, Provisioner: "skiff.io/local-path",
			ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete), VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}},
		"secrets": {
			&corev1.Secret{ObjectMeta: meta("db-credentials", time.Hour), Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"username": []byte("admin"), "password": []byte("hunter2-s3cr3t")}},
			&corev1.Secret{ObjectMeta: meta("web-tls", 2*time.Hour), Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: []byte("-----BEGIN CERTIFICATE-----"), corev1.TLSPrivateKeyKey: []byte("-----BEGIN PRIVATE KEY-----")}},
		},
		"podtemplates": {&corev1.PodTemplate{ObjectMeta: meta("nginx-template", time.Hour), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx", "tier": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}, {Name: "log", Image: "busybox"}}}}}},
		"priorityclasses": {
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-cluster-critical", CreationTimestamp: ago(time.Hour)},
				Value: 2000000000, PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority)},
			&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "batch", CreationTimestamp: ago(time.Hour)},
				Value: 100, GlobalDefault: true, PreemptionPolicy: ptr.To(corev1.PreemptNever)},
		},
		"validatingwebhookconfigurations": {&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "cert-manager-webhook", CreationTimestamp: ago(time.Hour)},
			Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "webhook.cert-manager.io"}}}},
		"mutatingwebhookconfigurations": {&admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "sidecar-injector", CreationTimestamp: ago(2 * time.Hour)},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.injector.io"}, {Name: "b.injector.io"}}}},
		"validatingadmissionpolicies": {&admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "max-replicas", CreationTimestamp: ago(time.Hour)},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
				Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 5"}}}}},
		"validatingadmissionpolicybindings": {
			&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "max-replicas", CreationTimestamp: ago(time.Hour)},
				Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "max-replicas",
					ParamRef: &admissionregistrationv1.ParamRef{Name: "limits", Namespace: "default"}}},
			&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "unparameterized", CreationTimestamp: ago(time.Hour)},
				Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "owner"}},
		},
		"mutatingadmissionpolicies": {&admissionregistrationv1.MutatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "owner", CreationTimestamp: ago(time.Hour)},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{{}, {}}}}},
		"mutatingadmissionpolicybindings": {
			&admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "owner", CreationTimestamp: ago(time.Hour)},
				Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "owner",
					ParamRef: &admissionregistrationv1.ParamRef{Name: "teams"}}},
		},
		"runtimeclasses": {&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "runc", CreationTimestamp: ago(time.Hour)}, Handler: "runc"}},
		"ingressclasses": {
			&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", CreationTimestamp: ago(time.Hour)},
				Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{
					APIGroup: ptr.To("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}}},
			&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "plain", CreationTimestamp: ago(time.Hour)},
				Spec: networkingv1.IngressClassSpec{Controller: "example.com/ingress"}},
		},
		"ingresses": {
			&networkingv1.Ingress{ObjectMeta: meta("web", time.Hour), Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"),
				Rules: []networkingv1.IngressRule{{Host: "a.example.com"}, {}, {Host: "b.example.com"}, {Host: "c.example.com"}, {Host: "d.example.com"}},
				TLS:   []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
					{IP: "10.0.0.2"}, {IP: "10.0.0.1"}, {Hostname: "lb.example.com"}}}}},
			&networkingv1.Ingress{ObjectMeta: meta("default-backend", time.Hour), Spec: networkingv1.IngressSpec{
				DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		},
		"roles": {&rbacv1.Role{ObjectMeta: meta("pod-reader", time.Hour)}},
		"clusterrolebindings": {&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ops", CreationTimestamp: ago(time.Hour)},
			RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"},
				{Kind: rbacv1.GroupKind, Name: "ops"}, {Kind: rbacv1.UserKind, Name: "bob"}, {Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "deployer"}}}},
		"serviceaccounts": {
			&corev1.ServiceAccount{ObjectMeta: meta("default", 3*time.Hour)},
			&corev1.ServiceAccount{ObjectMeta: meta("builder", time.Hour), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
				Secrets: []corev1.ObjectReference{{Name: "builder-token"}}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s\nwant:\n%s", name, path, got, want)
	}
}

func TestTables(t *testing.T) {
	for plural, objs := range fixtures() {
		info := kinds.MustLookup(plural)
		for _, v := range []struct {
			suffix string
			opts   TableOptions
		}{{"", TableOptions{}}, {"-wide", TableOptions{Wide: true}}, {"-all", TableOptions{AllNamespaces: true}}} {
			var b bytes.Buffer
			v.opts.Now = now
			if err := Table(&b, info, objs, v.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, "table-"+plural+v.suffix, b.Bytes())
		}
	}
}

// TestTableWithKind: listing several kinds at once names each object kind/name.
func TestTableWithKind(t *testing.T) {
	f := fixtures()
	var b bytes.Buffer
	for _, plural := range []string{"deployments", "pods"} {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		if err := Table(&b, kinds.MustLookup(plural), f[plural][:1], TableOptions{WithKind: true, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	want := `NAME                  READY   UP-TO-DATE   AVAILABLE   AGE
deployment.apps/web   2/3     3            2           10d

NAME        READY   STATUS    RESTARTS   AGE
pod/web-1   1/1     Running   2          90s
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestDescribe(t *testing.T) {
	f := fixtures()
	events := f["events"]
	for _, o := range []kinds.Object{f["pods"][0], f["deployments"][0], f["replicasets"][0], f["nodes"][0], f["configmaps"][0],
		f["poddisruptionbudgets"][0], f["namespaces"][0], f["secrets"][0], f["serviceaccounts"][1], f["services"][4],
		f["resourcequotas"][0], f["limitranges"][0], f["jobs"][0], f["cronjobs"][0], f["endpoints"][0], f["replicationcontrollers"][0]} {
		var evs []*corev1.Event
		if kinds.Of(o).Kind == kinds.Pod {
			evs = []*corev1.Event{events[0].(*corev1.Event)}
		}
		var b bytes.Buffer
		if err := Describe(&b, o, evs, now); err != nil {
			t.Fatal(err)
		}
		golden(t, "describe-"+kinds.Of(o).Singular, b.Bytes())
	}
}

// TestDescribeSecretHidesValues: describe shows a Secret's keys and sizes, never its values.
func TestDescribeSecretHidesValues(t *testing.T) {
	for _, o := range fixtures()["secrets"] {
		// As skiffctl apply leaves it: the manifest, values and all, in an annotation.
		o.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: fmt.Sprintf("%q", o.(*corev1.Secret).Data), "team": "db"})
		var b bytes.Buffer
		if err := Describe(&b, o, nil, now); err != nil {
			t.Fatal(err)
		}
		for k, v := range o.(*corev1.Secret).Data {
			if strings.Contains(b.String(), string(v)) || strings.Contains(b.String(), base64.StdEncoding.EncodeToString(v)) ||
				strings.Contains(b.String(), corev1.LastAppliedConfigAnnotation) || !strings.Contains(b.String(), "team=db") {
				t.Errorf("describe shows the value of %s:\n%s", k, b.String())
			}
			if !strings.Contains(b.String(), fmt.Sprintf("%s:  %d bytes", k, len(v))) {
				t.Errorf("describe does not show the size of %s:\n%s", k, b.String())
			}
		}
	}
}

// TestDescribeEvents: events are aged as kubectl's describe ages them: from eventTime
// when set, and a repeated event with its count and span.
func TestDescribeEvents(t *testing.T) {
	pod := fixtures()["pods"][0]
	single := &corev1.Event{Type: "Normal", Reason: "Pulled", Message: "pulled", Count: 1,
		Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, EventTime: metav1.NewMicroTime(now.Add(-30 * time.Second)),
		FirstTimestamp: ago(30 * time.Second), LastTimestamp: ago(30 * time.Second)}
	repeated := &corev1.Event{Type: "Warning", Reason: "BackOff", Message: "back-off", Count: 4,
		ReportingController: "kubelet", ReportingInstance: "w1", FirstTimestamp: ago(5 * time.Minute), LastTimestamp: ago(10 * time.Second)}
	var b bytes.Buffer
	if err := Describe(&b, pod, []*corev1.Event{repeated, single}, now); err != nil {
		t.Fatal(err)
	}
	want := `Events:
  Type     Reason   Age               From         Message
  ----     ------   ----              ----         -------
  Normal   Pulled   30s               kubelet, w1  pulled
  Warning  BackOff  10s (x4 over 5m)  kubelet, w1  back-off
`
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Errorf("events:\n%s\nwant the end:\n%s", got, want)
	}
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {-5 * time.Second, "<invalid>"}, {119 * time.Second, "119s"}, {150 * time.Second, "2m30s"},
		{5 * time.Minute, "5m"}, {45 * time.Minute, "45m"}, {5*time.Hour + 7*time.Minute, "5h7m"}, {5 * time.Hour, "5h"},
		{30 * time.Hour, "30h"}, {3*24*time.Hour + 4*time.Hour, "3d4h"}, {100 * 24 * time.Hour, "100d"},
		{3 * 365 * 24 * time.Hour, "3y"},
	} {
		if got := Age(now.Add(-tc.d), now); got != tc.want {
			t.Errorf("Age(%v ago) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := Age(time.Time{}, now); got != "<unknown>" {
		t.Errorf("Age(unset) = %q", got)
	}
}
