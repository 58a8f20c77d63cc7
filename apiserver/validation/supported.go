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
	kinds.Secret: slices.Concat(
		under("metadata", objectMetaFields),
		[]string{
			"data",
			"immutable",
			"stringData",
			"type",
		},
	),
	// Skiff mounts no service account token (see docs/architecture.md): false, for
	// automountServiceAccountToken, is what it does anyway.
	kinds.ServiceAccount: slices.Concat(
		under("metadata", objectMetaFields),
		[]string{
			"automountServiceAccountToken",
			"imagePullSecrets[*].name",
			"secrets[*].name",
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
			"phase",
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
var podSpecFields = slices.Concat(
	under("containers[*]", containerFields),
	under("containers[*]", []string{
		"lifecycle.postStart.exec",
		"lifecycle.postStart.httpGet",
		"lifecycle.postStart.sleep",
		"lifecycle.preStop.exec",
		"lifecycle.preStop.httpGet",
		"lifecycle.preStop.sleep",
		"livenessProbe",
		"readinessProbe",
		"startupProbe",
	}),
	under("initContainers[*]", containerFields),
	[]string{
		"activeDeadlineSeconds",
		"automountServiceAccountToken",
		"dnsConfig",
		"dnsPolicy",
		"enableServiceLinks",
		"hostNetwork",
		"hostname",
		"imagePullSecrets[*].name",
		"nodeName",
		"nodeSelector",
		"priorityClassName",
		"restartPolicy",
		"securityContext.fsGroup",
		"securityContext.runAsGroup",
		"securityContext.runAsNonRoot",
		"securityContext.runAsUser",
		"securityContext.supplementalGroups[*]",
		"securityContext.sysctls[*].name",
		"securityContext.sysctls[*].value",
		"serviceAccount",
		"serviceAccountName",
		"subdomain",
		"terminationGracePeriodSeconds",
		"tolerations[*].effect",
		"tolerations[*].key",
		"tolerations[*].operator",
		"tolerations[*].tolerationSeconds",
		"tolerations[*].value",
		"volumes[*].configMap",
		"volumes[*].downwardAPI",
		"volumes[*].emptyDir",
		"volumes[*].hostPath",
		"volumes[*].name",
		"volumes[*].persistentVolumeClaim",
		"volumes[*].projected.defaultMode",
		"volumes[*].projected.sources[*].configMap",
		"volumes[*].projected.sources[*].downwardAPI",
		"volumes[*].projected.sources[*].secret",
		"volumes[*].secret",
	},
)

// containerFields is what Skiff runs of a container, init or app (app containers have
// probes and lifecycle hooks too, in podSpecFields).
var containerFields = []string{
	"args[*]",
	"command[*]",
	"env[*].name",
	"env[*].value",
	"env[*].valueFrom.configMapKeyRef",
	"env[*].valueFrom.fieldRef",
	"env[*].valueFrom.resourceFieldRef",
	"env[*].valueFrom.secretKeyRef",
	"envFrom[*].configMapRef",
	"envFrom[*].prefix",
	"envFrom[*].secretRef",
	"image",
	"imagePullPolicy",
	"name",
	"ports[*].containerPort",
	"ports[*].hostIP",
	"ports[*].hostPort",
	"ports[*].name",
	"ports[*].protocol",
	"resources.limits",
	"resources.requests",
	"securityContext.allowPrivilegeEscalation",
	"securityContext.capabilities",
	"securityContext.privileged",
	"securityContext.readOnlyRootFilesystem",
	"securityContext.runAsGroup",
	"securityContext.runAsNonRoot",
	"securityContext.runAsUser",
	"stdin",
	"terminationMessagePath",
	"terminationMessagePolicy",
	"tty",
	"volumeMounts[*].mountPath",
	"volumeMounts[*].name",
	"volumeMounts[*].readOnly",
	"volumeMounts[*].subPath",
	"workingDir",
}

var podStatusFields = slices.Concat(
	under("containerStatuses[*]", containerStatusFields),
	under("initContainerStatuses[*]", containerStatusFields),
	[]string{
		"conditions[*].lastProbeTime",
		"conditions[*].lastTransitionTime",
		"conditions[*].message",
		"conditions[*].reason",
		"conditions[*].status",
		"conditions[*].type",
		"hostIP",
		"hostIPs[*].ip",
		"message",
		"phase",
		"podIP",
		"podIPs[*].ip",
		"qosClass",
		"reason",
		"startTime",
	},
)

var containerStatusFields = []string{
	"containerID",
	"image",
	"imageID",
	"lastState.running.startedAt",
	"lastState.terminated.containerID",
	"lastState.terminated.exitCode",
	"lastState.terminated.finishedAt",
	"lastState.terminated.message",
	"lastState.terminated.reason",
	"lastState.terminated.signal",
	"lastState.terminated.startedAt",
	"lastState.waiting.message",
	"lastState.waiting.reason",
	"name",
	"ready",
	"restartCount",
	"started",
	"state.running.startedAt",
	"state.terminated.containerID",
	"state.terminated.exitCode",
	"state.terminated.finishedAt",
	"state.terminated.message",
	"state.terminated.reason",
	"state.terminated.signal",
	"state.terminated.startedAt",
	"state.waiting.message",
	"state.waiting.reason",
}

// under puts prefix in front of each path.
func under(prefix string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = prefix + "." + p
	}
	return out
}
