package validation

import (
	"slices"

	"github.com/skiffhq/skiff/kinds"
)

// supportedFields lists, for each kind, the fields Skiff acts on: every other field of
// Kubernetes' type is refused when set (unsupported.go). A path names a field by its JSON
// name from the top of the object, "[*]" marks a list (every element), and a path
// covers everything under it. Supporting a field is adding its line; a test checks
// every line against the Go type.
var supportedFields = map[string][]string{
	kinds.Pod: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", podSpecFields),
		under("status", podStatusFields),
	),
	kinds.Node: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"podCIDR",
			"providerID",
			"taints[*].effect",
			"taints[*].key",
			"taints[*].timeAdded",
			"taints[*].value",
			"unschedulable",
		}),
		under("status", []string{
			"addresses[*].address",
			"addresses[*].type",
			"allocatable",
			"capacity",
			"conditions[*].lastHeartbeatTime",
			"conditions[*].lastTransitionTime",
			"conditions[*].message",
			"conditions[*].reason",
			"conditions[*].status",
			"conditions[*].type",
			"daemonEndpoints.kubeletEndpoint.Port",
			"nodeInfo.architecture",
			"nodeInfo.bootID",
			"nodeInfo.containerRuntimeVersion",
			"nodeInfo.kernelVersion",
			"nodeInfo.kubeletVersion",
			"nodeInfo.machineID",
			"nodeInfo.operatingSystem",
			"nodeInfo.osImage",
		}),
	),
	kinds.ReplicaSet: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"minReadySeconds",
			"replicas",
		}),
		under("spec.selector", labelSelectorFields),
		under("spec.template.metadata", objectMetaFields),
		under("spec.template.spec", podSpecFields),
		under("status", []string{
			"availableReplicas",
			"conditions[*].lastTransitionTime",
			"conditions[*].message",
			"conditions[*].reason",
			"conditions[*].status",
			"conditions[*].type",
			"fullyLabeledReplicas",
			"observedGeneration",
			"readyReplicas",
			"replicas",
		}),
	),
	kinds.Deployment: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"minReadySeconds",
			"paused",
			"progressDeadlineSeconds",
			"replicas",
			"revisionHistoryLimit",
			"strategy.rollingUpdate.maxSurge",
			"strategy.rollingUpdate.maxUnavailable",
			"strategy.type",
		}),
		under("spec.selector", labelSelectorFields),
		under("spec.template.metadata", objectMetaFields),
		under("spec.template.spec", podSpecFields),
		under("status", []string{
			"availableReplicas",
			"collisionCount",
			"conditions[*].lastTransitionTime",
			"conditions[*].lastUpdateTime",
			"conditions[*].message",
			"conditions[*].reason",
			"conditions[*].status",
			"conditions[*].type",
			"observedGeneration",
			"readyReplicas",
			"replicas",
			"unavailableReplicas",
			"updatedReplicas",
		}),
	),
	kinds.ConfigMap: slices.Concat(
		under("metadata", objectMetaFields),
		[]string{
			"binaryData",
			"data",
			"immutable",
		},
	),
	kinds.Event: slices.Concat(
		under("metadata", objectMetaFields),
		[]string{
			"action",
			"count",
			"eventTime",
			"firstTimestamp",
			"involvedObject.apiVersion",
			"involvedObject.fieldPath",
			"involvedObject.kind",
			"involvedObject.name",
			"involvedObject.namespace",
			"involvedObject.resourceVersion",
			"involvedObject.uid",
			"lastTimestamp",
			"message",
			"reason",
			"reportingComponent",
			"reportingInstance",
			"source.component",
			"source.host",
			"type",
		},
	),
	kinds.Lease: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"acquireTime",
			"holderIdentity",
			"leaseDurationSeconds",
			"leaseTransitions",
			"renewTime",
		}),
	),
	kinds.Namespace: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"finalizers[*]",
		}),
		under("status", []string{
			"conditions[*].lastTransitionTime",
			"conditions[*].message",
			"conditions[*].reason",
			"conditions[*].status",
			"conditions[*].type",
			"phase",
		}),
	),
	kinds.PodDisruptionBudget: slices.Concat(
		under("metadata", objectMetaFields),
		under("spec", []string{
			"maxUnavailable",
			"minAvailable",
			"unhealthyPodEvictionPolicy",
		}),
		under("spec.selector", labelSelectorFields),
		under("status", []string{
			"conditions[*].lastTransitionTime",
			"conditions[*].message",
			"conditions[*].observedGeneration",
			"conditions[*].reason",
			"conditions[*].status",
			"conditions[*].type",
			"currentHealthy",
			"desiredHealthy",
			"disruptedPods",
			"disruptionsAllowed",
			"expectedPods",
			"observedGeneration",
		}),
	),
}

// objectMetaFields is what Skiff keeps of metadata, of every kind and of pod templates.
var objectMetaFields = []string{
	"annotations",
	"creationTimestamp",
	"deletionGracePeriodSeconds",
	"deletionTimestamp",
	"finalizers[*]",
	"generateName",
	"generation",
	"labels",
	"name",
	"namespace",
	"ownerReferences[*].apiVersion",
	"ownerReferences[*].blockOwnerDeletion",
	"ownerReferences[*].controller",
	"ownerReferences[*].kind",
	"ownerReferences[*].name",
	"ownerReferences[*].uid",
	"resourceVersion",
	"uid",
}

var labelSelectorFields = []string{
	"matchExpressions[*].key",
	"matchExpressions[*].operator",
	"matchExpressions[*].values[*]",
	"matchLabels",
}

// podSpecFields is a pod's spec, alone or in a Deployment's or ReplicaSet's template.
var podSpecFields = []string{
	"containers[*].args[*]",
	"containers[*].command[*]",
	"containers[*].env[*].name",
	"containers[*].env[*].value",
	"containers[*].image",
	"containers[*].imagePullPolicy",
	"containers[*].name",
	"containers[*].ports[*].containerPort",
	"containers[*].ports[*].hostIP",
	"containers[*].ports[*].hostPort",
	"containers[*].ports[*].name",
	"containers[*].ports[*].protocol",
	"containers[*].resources.limits",
	"containers[*].resources.requests",
	"containers[*].workingDir",
	"hostNetwork",
	"nodeName",
	"nodeSelector",
	"restartPolicy",
	"terminationGracePeriodSeconds",
	"tolerations[*].effect",
	"tolerations[*].key",
	"tolerations[*].operator",
	"tolerations[*].tolerationSeconds",
	"tolerations[*].value",
}

var podStatusFields = []string{
	"conditions[*].lastProbeTime",
	"conditions[*].lastTransitionTime",
	"conditions[*].message",
	"conditions[*].reason",
	"conditions[*].status",
	"conditions[*].type",
	"containerStatuses[*].containerID",
	"containerStatuses[*].image",
	"containerStatuses[*].imageID",
	"containerStatuses[*].lastState.running.startedAt",
	"containerStatuses[*].lastState.terminated.containerID",
	"containerStatuses[*].lastState.terminated.exitCode",
	"containerStatuses[*].lastState.terminated.finishedAt",
	"containerStatuses[*].lastState.terminated.message",
	"containerStatuses[*].lastState.terminated.reason",
	"containerStatuses[*].lastState.terminated.signal",
	"containerStatuses[*].lastState.terminated.startedAt",
	"containerStatuses[*].lastState.waiting.message",
	"containerStatuses[*].lastState.waiting.reason",
	"containerStatuses[*].name",
	"containerStatuses[*].ready",
	"containerStatuses[*].restartCount",
	"containerStatuses[*].started",
	"containerStatuses[*].state.running.startedAt",
	"containerStatuses[*].state.terminated.containerID",
	"containerStatuses[*].state.terminated.exitCode",
	"containerStatuses[*].state.terminated.finishedAt",
	"containerStatuses[*].state.terminated.message",
	"containerStatuses[*].state.terminated.reason",
	"containerStatuses[*].state.terminated.signal",
	"containerStatuses[*].state.terminated.startedAt",
	"containerStatuses[*].state.waiting.message",
	"containerStatuses[*].state.waiting.reason",
	"hostIP",
	"message",
	"phase",
	"podIP",
	"reason",
	"startTime",
}

// under puts prefix in front of each path.
func under(prefix string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = prefix + "." + p
	}
	return out
}
