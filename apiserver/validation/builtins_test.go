package validation

import (
	"testing"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/kinds"
)

func named(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func queued(q flowcontrolv1.QueuingConfiguration) *flowcontrolv1.PriorityLevelConfiguration {
	return &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: named("queued"), Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
		Type: flowcontrolv1.PriorityLevelEnablementLimited, Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
			LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeQueue, Queuing: &q}}}}
}

// TestValidateBuiltinKinds: Kubernetes' validation of FlowSchemas, priority levels,
// ServiceCIDRs, IPAddresses, StorageVersionMigrations and APIServices, in its words.
func TestValidateBuiltinKinds(t *testing.T) {
	user := []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "u"}}}
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"mandatory flow schemas", bootstrap.MandatoryFlowSchemaCatchAll.DeepCopy(), nil},
		{"mandatory exempt level", bootstrap.MandatoryPriorityLevelConfigurationExempt.DeepCopy(), nil},
		{"flow schema", &flowcontrolv1.FlowSchema{ObjectMeta: named("fs"), Spec: flowcontrolv1.FlowSchemaSpec{MatchingPrecedence: 10001,
			DistinguisherMethod: &flowcontrolv1.FlowDistinguisherMethod{Type: "ByColour"},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{
				{Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindServiceAccount, User: &flowcontrolv1.UserSubject{Name: "u"}}}},
				{Subjects: user, ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"get", "poke"}, APIGroups: []string{"*", "apps"},
					Resources: []string{"pods"}, Namespaces: []string{"Bad_NS"}}}},
				{Subjects: user, NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*", "get"}, NonResourceURLs: []string{"healthz"}}}},
			}}},
			[]string{"spec.matchingPrecedence: Invalid value: 10001: must not be greater than 10000",
				`spec.distinguisherMethod.type: Unsupported value`,
				"spec.priorityLevelConfiguration.name: Required value: must reference a priority level",
				"spec.rules[0].subjects[0].serviceAccount: Required value: serviceAccount is required when subject kind is 'ServiceAccount'",
				"spec.rules[0].subjects[0].user: Forbidden: user is forbidden when subject kind is not 'User'",
				"spec.rules[0]: Required value: at least one of resourceRules and nonResourceRules has to be non-empty",
				`spec.rules[1].resourceRules[0].verbs: Unsupported value: ["get","poke"]`,
				"spec.rules[1].resourceRules[0].apiGroups: Invalid value",
				`spec.rules[1].resourceRules[0].namespaces[0]: Invalid value: "Bad_NS": each member of this list must be '*' or a DNS-1123 label`,
				"spec.rules[2].nonResourceRules[0].verbs: Invalid value",
				`spec.rules[2].nonResourceRules[0].nonResourceURLs[0]: Invalid value: "healthz": must start with slash`}},
		{"exempt level's fixed spec", &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: named("exempt"), Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited, Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject}}}},
			[]string{"spec.type: Invalid value: \"Limited\": must be 'Exempt' if and only if `name` is 'exempt'",
				"spec: Invalid value"}},
		{"queuing", queued(flowcontrolv1.QueuingConfiguration{Queues: 128, HandSize: 129, QueueLengthLimit: -1}),
			[]string{"spec.limited.limitResponse.queuing.queueLengthLimit: Invalid value: -1: must be positive",
				"spec.limited.limitResponse.queuing.handSize: Invalid value: 129: should not be greater than queues (128)"}},
		{"queuing entropy", queued(flowcontrolv1.QueuingConfiguration{Queues: 10000000, HandSize: 30, QueueLengthLimit: 1}),
			[]string{"spec.limited.limitResponse.queuing.handSize: Invalid value: 30: required entropy bits of deckSize 10000000 and handSize 30 should not be greater than 60"}},
		{"service cidr", &networkingv1.ServiceCIDR{ObjectMeta: named("x"), Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.0.0.1/24", "fd00::/64", "fd01::/64"}}},
			[]string{"spec.cidrs: Invalid value"}},
		{"service cidr not a network", &networkingv1.ServiceCIDR{ObjectMeta: named("x"), Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.0.0.1/24"}}},
			[]string{`spec.cidrs[0]: Invalid value: "10.0.0.1/24"`}},
		{"ip address", &networkingv1.IPAddress{ObjectMeta: named("fe80::1"), Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Group: "Bad_Group", Resource: "services", Name: "a/b"}}},
			[]string{`spec.parentRef.group: Invalid value: "Bad_Group"`, `spec.parentRef.name: Invalid value: "a/b": may not contain '/'`}},
		{"ip address not canonical", &networkingv1.IPAddress{ObjectMeta: named("fe80:0::1"), Spec: networkingv1.IPAddressSpec{
			ParentRef: &networkingv1.ParentReference{Resource: "services", Name: "web"}}},
			[]string{`metadata.name: Invalid value: "fe80:0::1"`}},
		{"migration", &storagemigrationv1.StorageVersionMigration{ObjectMeta: named("m"), Spec: storagemigrationv1.StorageVersionMigrationSpec{
			Resource: metav1.GroupResource{Resource: "Secrets"}}},
			[]string{`spec.resource.resource: Invalid value: "Secrets"`}},
		{"local api service", &apiregistrationv1.APIService{ObjectMeta: named("v1.apps"), Spec: apiregistrationv1.APIServiceSpec{
			Group: "apps", Version: "v1", GroupPriorityMinimum: 17800, VersionPriority: 15}}, nil},
		{"api service", &apiregistrationv1.APIService{ObjectMeta: named("v1.wrong"), Spec: apiregistrationv1.APIServiceSpec{
			Group: "metrics.k8s.io", Version: "v1beta1", GroupPriorityMinimum: 20001, InsecureSkipTLSVerify: true, CABundle: []byte("x"),
			Service: &apiregistrationv1.ServiceReference{Name: "metrics-server"}}},
			[]string{"metadata.name: Invalid value: \"v1.wrong\": must be `spec.version+\".\"+spec.group`: \"v1beta1.metrics.k8s.io\"",
				"spec.groupPriorityMinimum: Invalid value: 20001: must be positive and less than 20000",
				"spec.versionPriority: Invalid value: 0: must be positive and less than 1000",
				"spec.service.namespace: Required value",
				"spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.obj)
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestValidateBuiltinKindsUpdate: what may not change.
func TestValidateBuiltinKindsUpdate(t *testing.T) {
	sc := func(cidrs ...string) *networkingv1.ServiceCIDR {
		return &networkingv1.ServiceCIDR{ObjectMeta: named("x"), Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
	}
	checkErrors(t, ValidateUpdate(sc("10.0.0.0/24"), sc("10.0.1.0/24")), []string{`spec.cidrs[0]: Invalid value: "10.0.1.0/24": field is immutable`})
	checkErrors(t, ValidateUpdate(sc("10.0.0.0/24"), sc("10.0.0.0/24", "fd00::/64")), nil)
	checkErrors(t, ValidateUpdate(sc("10.0.0.0/24", "fd00::/64"), sc("10.0.0.0/24")), []string{"spec.cidrs: Invalid value"})

	m := &storagemigrationv1.StorageVersionMigration{ObjectMeta: named("m"), Spec: storagemigrationv1.StorageVersionMigrationSpec{
		Resource: metav1.GroupResource{Resource: "secrets"}}}
	done := m.DeepCopy()
	done.Status.Conditions = []metav1.Condition{{Type: "Succeeded", Status: "True", Reason: "Done", LastTransitionTime: metav1.Now()},
		{Type: "Failed", Status: "True", Reason: "Done", LastTransitionTime: metav1.Now()}}
	checkErrors(t, ValidateStatus(done), []string{"status.conditions: Invalid value"})
	done.Status.Conditions = done.Status.Conditions[:1]
	undone := done.DeepCopy()
	undone.Status.Conditions[0].Status = "False"
	checkErrors(t, ValidateMigrationStatus(done, undone), []string{"status.conditions: Invalid value"})

	pl := queued(flowcontrolv1.QueuingConfiguration{})
	Default(pl)
	if q := *pl.Spec.Limited.LimitResponse.Queuing; q != (flowcontrolv1.QueuingConfiguration{Queues: 64, HandSize: 8, QueueLengthLimit: 50}) ||
		*pl.Spec.Limited.NominalConcurrencyShares != 30 || *pl.Spec.Limited.LendablePercent != 0 {
		t.Errorf("defaults: %+v", pl.Spec.Limited)
	}
}
