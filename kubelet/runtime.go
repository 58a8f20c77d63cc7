package kubelet

import (
	"context"
	"errors"
	"io"
	"time"
)

// Runtime runs containers for the kubelet. Implementations: kubelet/sim (in memory) and
// kubelet/containerd. Every container a Runtime reports carries the pod and container
// identity it was created with (as labels), so that a restarted kubelet can adopt what
// is running: the kubelet keeps no state of its own about containers.
type Runtime interface {
	// EnsureImage makes image present according to policy (PullAlways, PullIfNotPresent,
	// PullNever) and returns its ID and whether it was pulled now. A failed pull wraps
	// ErrImagePull; PullNever with the image absent wraps ErrImageNeverPull.
	EnsureImage(ctx context.Context, image, policy string) (imageID string, pulled bool, err error)
	// CreateAndStart creates a container and starts it.
	CreateAndStart(ctx context.Context, cfg ContainerConfig) (id string, err error)
	// Stop sends SIGTERM, waits up to grace for the container to exit, then sends
	// SIGKILL. Stopping an exited container does nothing; an unknown id wraps ErrNotFound.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes an exited container (a running one is killed first). An unknown id
	// wraps ErrNotFound.
	Remove(ctx context.Context, id string) error
	// List reports every container the kubelet created, running or exited.
	List(ctx context.Context) ([]Container, error)
	// Logs copies a container's output to w; with follow, until it exits or ctx ends.
	Logs(ctx context.Context, id string, w io.Writer, follow bool) error
	// Version is "<name>://<version>", e.g. "containerd://1.6.20": the node's
	// containerRuntimeVersion, and its name prefixes container IDs in pod status.
	Version() string
}

// Image pull policies (Container.imagePullPolicy).
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// Runtime error classes; implementations wrap them with the operation and the object.
var (
	ErrImagePull      = errors.New("ErrImagePull")
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
	ErrNotFound       = errors.New("not found")
)

// ContainerConfig is what the kubelet asks a runtime to run.
type ContainerConfig struct {
	PodUID, PodName, Namespace string
	// Name is the container's name in the pod spec.
	Name    string
	Image   string
	Command []string
	Args    []string
	// Env is KEY=VALUE pairs.
	Env        []string
	WorkingDir string
	// CPUMillis and MemoryBytes are limits; 0 means none.
	CPUMillis   int64
	MemoryBytes int64
	// Attempt counts the container's restarts: 0 for the first run.
	Attempt int
}

// ContainerState is a container's life stage.
type ContainerState string

const (
	StateCreated ContainerState = "created"
	StateRunning ContainerState = "running"
	StateExited  ContainerState = "exited"
	StateUnknown ContainerState = "unknown"
)

// Container is a runtime's report on one container.
type Container struct {
	ID string
	// Identity, from the labels the container was created with.
	PodUID, PodName, Namespace, Name string
	Attempt                          int
	Image, ImageID                   string

	State      ContainerState
	ExitCode   int
	Reason     string // the runtime's reason for an exit, e.g. "OOMKilled"; usually ""
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Labels the runtimes store a container's identity under.
const (
	LabelPodUID        = "io.skiff.pod.uid"
	LabelPodName       = "io.skiff.pod.name"
	LabelPodNamespace  = "io.skiff.pod.namespace"
	LabelContainerName = "io.skiff.container.name"
	LabelAttempt       = "io.skiff.container.attempt"
)
