package validation

import (
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// The defaults Default fills, as Kubernetes does.
const (
	DefaultRestartPolicy                 = "Always"
	DefaultTerminationGracePeriodSeconds = 30
	DefaultProtocol                      = "TCP"
	DefaultTolerationOperator            = "Equal"
	DefaultReplicas                      = 1
	DefaultStrategyType                  = "RollingUpdate"
	DefaultMaxSurge                      = "25%"
	DefaultMaxUnavailable                = "25%"
	DefaultRevisionHistoryLimit          = 10
	DefaultProgressDeadlineSeconds       = 600
)

// Default fills the fields a user may leave out with Kubernetes' defaults, in place. It
// only sets what is unset, so it is idempotent. It never defaults a controller's selector
// from its template: a missing selector is an error Validate reports.
func Default(obj kinds.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.Spec == nil {
			o.Spec = &corev1.PodSpec{}
		}
		defaultPodSpec(o.Spec)
	case *corev1.Deployment:
		if o.Spec == nil {
			o.Spec = &corev1.DeploymentSpec{}
		}
		defaultDeploymentSpec(o.Spec)
	case *corev1.ReplicaSet:
		if o.Spec == nil {
			o.Spec = &corev1.ReplicaSetSpec{}
		}
		if o.Spec.Replicas == nil {
			o.Spec.Replicas = ptr[int32](DefaultReplicas)
		}
		defaultTemplate(o.Spec.Template)
	}
}

func defaultDeploymentSpec(spec *corev1.DeploymentSpec) {
	if spec.Replicas == nil {
		spec.Replicas = ptr[int32](DefaultReplicas)
	}
	if spec.Strategy == nil {
		spec.Strategy = &corev1.DeploymentStrategy{}
	}
	s := spec.Strategy
	if s.Type == "" {
		s.Type = DefaultStrategyType
	}
	if s.Type == "RollingUpdate" {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &corev1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = structpb.NewStringValue(DefaultMaxUnavailable)
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = structpb.NewStringValue(DefaultMaxSurge)
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptr[int32](DefaultRevisionHistoryLimit)
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = ptr[int32](DefaultProgressDeadlineSeconds)
	}
	defaultTemplate(spec.Template)
}

// defaultTemplate defaults the pod spec of a template, when there is one: a missing
// template is an error, not something to invent.
func defaultTemplate(t *corev1.PodTemplateSpec) {
	if t == nil {
		return
	}
	if t.Spec == nil {
		t.Spec = &corev1.PodSpec{}
	}
	defaultPodSpec(t.Spec)
}

func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = DefaultRestartPolicy
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr[int64](DefaultTerminationGracePeriodSeconds)
	}
	for _, c := range spec.Containers {
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = PullPolicyFor(c.Image)
		}
		for _, p := range c.Ports {
			if p.Protocol == "" {
				p.Protocol = DefaultProtocol
			}
		}
	}
	for _, t := range spec.Tolerations {
		if t.Operator == "" {
			t.Operator = DefaultTolerationOperator
		}
	}
}

// PullPolicyFor is the imagePullPolicy Kubernetes gives a container of image: Always for
// a moving reference (":latest", or no tag and no digest), else IfNotPresent.
func PullPolicyFor(image string) string {
	if strings.Contains(image, "@") {
		return "IfNotPresent"
	}
	// The tag follows the last ':' of the last path component; an earlier ':' is a
	// registry's port ("localhost:5000/app").
	last := image[strings.LastIndexByte(image, '/')+1:]
	i := strings.LastIndexByte(last, ':')
	if i < 0 || last[i+1:] == "latest" {
		return "Always"
	}
	return "IfNotPresent"
}

func ptr[T any](v T) *T { return &v }
