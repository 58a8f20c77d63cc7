package kubelet

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
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
	// Logs copies a container's log to w, in the CRI log format (package crilog: each
	// line of output with its time and stream); with follow, until it exits or ctx ends.
	Logs(ctx context.Context, id string, w io.Writer, follow bool) error
	// Exec runs a command in a running container and returns its exit code once it has
	// exited and its output is copied; ctx ending kills it. An unknown id wraps
	// ErrNotFound, a container that is not running ErrNotRunning.
	Exec(ctx context.Context, id string, opts ExecOptions) (exitCode int, err error)
	// PodDialer is how to reach TCP ports in the network namespace of the pod that
	// container id belongs to (port-forward). Errors as Exec's.
	PodDialer(ctx context.Context, id string) (Dialer, error)
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
	ErrNotRunning     = errors.New("not running")
)

// ExecOptions are a command to run in a container and its streams.
type ExecOptions struct {
	// Command is the executable and its arguments, run without a shell.
	Command []string
	// Stdin is the command's input (nil: none); its end closes the command's stdin. The
	// caller makes its Read return once ctx ends (a runtime may be blocked in it).
	Stdin io.Reader
	// Stdout and Stderr receive its output; with TTY everything goes to Stdout. Each is
	// written by one goroutine at a time, but the two concurrently.
	Stdout, Stderr io.Writer
	// TTY runs the command in a terminal of Size, resized to each size Resize sends.
	TTY    bool
	Size   TerminalSize
	Resize <-chan TerminalSize
	// Started, when set, is called once the command runs.
	Started func()
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Dialer connects to a TCP port of a pod.
type Dialer func(ctx context.Context, port int) (net.Conn, error)

// HostDialer reaches ports on the node's loopback: a pod's ports while pods share the
// host's network namespace.
// It tries IPv4, then IPv6, as Kubernetes' kubelet does.
func HostDialer(ctx context.Context, port int) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err == nil {
		return conn, nil
	}
	if conn, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(port))); err6 == nil {
		return conn, nil
	}
	return nil, err
}

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
	// NetNSPath is the pod's network namespace the container joins; "": the node's.
	NetNSPath string
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
