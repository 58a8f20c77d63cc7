package kubelet

import (
	"context"
	"errors"
	"fmt"
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
	// creds are the pod's registry credentials (imagePullSecrets), by registry host.
	EnsureImage(ctx context.Context, image, policy string, creds Credentials) (imageID string, pulled bool, err error)
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
	// ExecSync runs cmd in a running container and waits for it, at most timeout (0:
	// no limit), as CRI's ExecSync: probes and lifecycle hooks use it. A command that
	// outlives timeout is killed and wraps ErrExecTimeout. A real runtime runs it
	// through Exec; the simulated one reads it as it reads its containers' scripts,
	// where an unknown command succeeds (a probe's program, in a real image), while its
	// Exec refuses what it cannot simulate, to tell the user at once.
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error)
	// DiskUsage is the space container id takes on the node's disk, in bytes: its
	// writable layer and its logs, what Kubernetes counts against a container's
	// limits.ephemeral-storage. An unknown id wraps ErrNotFound.
	DiskUsage(ctx context.Context, id string) (int64, error)
	// MountImage mounts image's root filesystem, read-only, at dir: pod podUID's image
	// volume. The image must be present (EnsureImage). RemovePod releases what it holds,
	// once dir is unmounted.
	MountImage(ctx context.Context, podUID, image, dir string) error
	// RemovePod releases what the runtime holds for a pod beyond its containers (its
	// cgroup, its image volumes), once they are all removed. Releasing nothing is not an error.
	RemovePod(ctx context.Context, podUID string) error
	// Exec runs a command in a running container and returns its exit code once it has
	// exited and its output is copied; ctx ending kills it. An unknown id wraps
	// ErrNotFound, a container that is not running ErrNotRunning.
	Exec(ctx context.Context, id string, opts ExecOptions) (exitCode int, err error)
	// UpdateResources gives a running container new limits, and its pod's cgroup the
	// pod's new budget, without restarting it, as CRI's UpdateContainerResources (an
	// in-place resize). An unknown id wraps ErrNotFound, one not running ErrNotRunning.
	UpdateResources(ctx context.Context, id string, r Resources, pod PodResources) error
	// Attach connects to the own input and terminal of running container id, which it
	// was created with (ContainerConfig.TTY and Stdin): what opts.Stdin gives goes to
	// the container's input, and its terminal takes each size opts.Resize sends, until
	// opts.Stdin ends or ctx does. When opts.Stdin ends, the input of a container with
	// StdinOnce and no terminal is closed (the process reads its end), as CRI's attach
	// does. The container's output is its log (Logs). An unknown
	// id wraps ErrNotFound, one not running ErrNotRunning, input for a container
	// without any ErrNoInput.
	Attach(ctx context.Context, id string, opts AttachOptions) error
	// PodDialer is how to reach TCP ports in the network namespace of the pod that
	// container id belongs to (port-forward). Errors as Exec's.
	PodDialer(ctx context.Context, id string) (Dialer, error)
	// CheckHandler tells whether the runtime runs containers with the RuntimeClass
	// handler named ("" is the default one); an unknown handler wraps
	// ErrUnknownRuntimeHandler.
	CheckHandler(handler string) error
	// Version is "<name>://<version>", e.g. "containerd://1.6.20": the node's
	// containerRuntimeVersion, and its name prefixes container IDs in pod status.
	Version() string
}

// LogSettler is a Runtime whose log of a container that has just exited may still lack
// the end of its output for a moment: the containerd runtime's logging program writes a
// last line without its newline only once the output has been quiet a while. The
// kubelet reads an exited container's log for its termination message
// (FallbackToLogsOnError) no sooner than LogSettle after the container's exit.
type LogSettler interface {
	LogSettle() time.Duration
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
	ErrExecTimeout    = errors.New("command timed out")
	// ErrNoInput: attach with input to a container that has none to connect to.
	ErrNoInput = errors.New("no input to attach to")
	// ErrContainerConfig: the container cannot be made as its spec asks (an image that
	// runs as root for runAsNonRoot); it waits in CreateContainerConfigError.
	ErrContainerConfig = errors.New("CreateContainerConfigError")
	// ErrUnknownRuntimeHandler: a RuntimeClass's handler the node has no runtime for;
	// the pod waits, as a pod whose sandbox cannot be created waits in Kubernetes.
	ErrUnknownRuntimeHandler = errors.New("unknown runtime handler")
)

// UnknownHandler is the error of a runtime asked for a handler it does not have, in
// the words of containerd's CRI plugin.
func UnknownHandler(handler string) error {
	return fmt.Errorf("no runtime for %q is configured: %w", handler, ErrUnknownRuntimeHandler)
}

// DefaultRuntimeHandler is the RuntimeClass handler every runtime has: runc, which is
// containerd's default runtime (io.containerd.runc.v2), as Kubernetes' clusters name it.
const DefaultRuntimeHandler = "runc"

// ExecResult is what a command run by ExecSync did.
type ExecResult struct {
	ExitCode int
	// Output is its stdout and stderr, together, cut to the first 10 KiB (what
	// Kubernetes keeps of a probe's output).
	Output []byte
}

// Credentials are registry logins by registry host ("127.0.0.1:5000", "docker.io").
type Credentials map[string]RegistryAuth

// RegistryAuth is one registry's login.
type RegistryAuth struct{ Username, Password string }

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

// AttachOptions are what Attach connects to a container.
type AttachOptions struct {
	// Stdin is the input for the container's (nil: none). The caller makes its Read
	// return once ctx ends, as ExecOptions.Stdin's.
	Stdin io.Reader
	// Resize sends the sizes of the caller's terminal.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// Dialer connects to a TCP port of a pod.
type Dialer func(ctx context.Context, port int) (net.Conn, error)

// HostDialer reaches ports on the loopback of the caller's network namespace: a
// hostNetwork pod's ports (or any pod's without a pod network) from the node's.
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
	// Resources are its own cgroup's.
	Resources
	// Pod is the pod-level budget its containers share (the pod's cgroup).
	Pod PodResources
	// Attempt counts the container's restarts: 0 for the first run.
	Attempt int
	// NetNSPath is the pod's network namespace the container joins; "": the node's.
	NetNSPath string
	// Mounts are host paths (a volume, a file the kubelet writes) to bind into the
	// container, in the order the spec lists them.
	Mounts []Mount
	// Hostname is the container's host name in its own UTS namespace; "" shares the
	// node's (hostNetwork pods).
	Hostname string
	// HostPID and HostIPC put the container in the node's process and IPC namespaces
	// (the pod's hostPID and hostIPC).
	HostPID, HostIPC bool
	// Security is what the securityContexts ask.
	Security Security
	// Ports are the container's declared ports (a simulated container "listens" there).
	Ports []int32
	// TTY runs the container's process in a terminal, whose output is its log; Stdin
	// gives it an input Attach writes to, which StdinOnce closes when the first attach
	// that wrote to it ends (without TTY; Kubernetes' stdinOnce).
	TTY, Stdin, StdinOnce bool
	// RuntimeHandler is the handler of the pod's RuntimeClass ("": the default), one
	// CheckHandler accepts.
	RuntimeHandler string
	// TargetID is the running container whose process namespace the container joins
	// (an ephemeral container's targetContainerName); "": its own.
	TargetID string
}

// Resources are a container's cgroup budget. CPUMillis and MemoryBytes are limits; 0
// means none. CPURequestMillis is the request, which weighs the container's CPU share
// (0: the minimum).
type Resources struct {
	CPUMillis        int64
	MemoryBytes      int64
	CPURequestMillis int64
}

// Mount binds HostPath at ContainerPath.
type Mount struct {
	HostPath, ContainerPath string
	ReadOnly                bool
}

// PodResources is the budget of a pod's cgroup: the sum of its containers' limits (0:
// unlimited, when a container has none) and requests, and its QoS class.
type PodResources struct {
	QOSClass         string
	CPUMillis        int64
	MemoryBytes      int64
	CPURequestMillis int64
}

// Security is a container's identity and privileges, from its and its pod's
// securityContexts (the container's wins).
type Security struct {
	// RunAsUser and RunAsGroup: nil runs as the image says.
	RunAsUser, RunAsGroup *int64
	// RunAsNonRoot refuses an image that would run as uid 0 (ErrContainerConfig).
	RunAsNonRoot bool
	// SupplementalGroups include the pod's fsGroup.
	SupplementalGroups []int64
	Privileged         bool
	ReadOnlyRootfs     bool
	// NoNewPrivileges is allowPrivilegeEscalation: false.
	NoNewPrivileges bool
	// CapAdd and CapDrop are capability names without CAP_ ("NET_ADMIN", "ALL").
	CapAdd, CapDrop []string
	// Sysctls are the pod's, set in the container's namespaces.
	Sysctls map[string]string
	// SeccompRuntimeDefault is seccompProfile RuntimeDefault: containerd's default
	// profile (not for a privileged container, as in Kubernetes). Unconfined is none.
	SeccompRuntimeDefault bool
	// SELinuxLabel: the pod or the container has seLinuxOptions. Their labels are not
	// applied: a node without SELinux ignores them, as Kubernetes' does; one with SELinux
	// refuses the container (ErrContainerConfig).
	SELinuxLabel bool
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

	State    ContainerState
	ExitCode int
	Reason   string // the runtime's reason for an exit, e.g. "OOMKilled"; usually ""
	// Message is why a simulated container did what it did; real ones say nothing here
	// (their termination message is a file the kubelet reads).
	Message string
	// TTY, Stdin and StdinOnce are the container's ContainerConfig's.
	TTY, Stdin, StdinOnce bool
	// Resources are what the container's cgroup has, as created or last updated
	// (UpdateResources); nil when the runtime does not know.
	Resources  *Resources
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// ChangeTracker is a Runtime that counts its containers' changes, so that the kubelet's
// relist lists them only when one happened (as Kubernetes' evented PLEG lists seldom
// and takes the runtime's events instead). Changes returns a count that grows with every
// change List would report — a container created, removed or exited, an exit on the
// container's own schedule once its time has come — and stays the same otherwise.
type ChangeTracker interface {
	Changes() uint64
}

// PodLister is a Runtime that lists one pod's containers without listing the node's:
// every sync of every pod asks for its pod's, and a node with thirty pods listed thirty
// pods' containers to find one's (the simulated nodes' largest allocation at 150,000
// pods, issue 26). ListPod returns the containers List would whose namespace and pod
// name are these (of any pod UID, as syncPod removes an earlier pod's), in List's order.
type PodLister interface {
	ListPod(ctx context.Context, namespace, name string) ([]Container, error)
}

// Labels the runtimes store a container's identity under.
const (
	LabelPodUID        = "io.skiff.pod.uid"
	LabelPodName       = "io.skiff.pod.name"
	LabelPodNamespace  = "io.skiff.pod.namespace"
	LabelContainerName = "io.skiff.container.name"
	LabelAttempt       = "io.skiff.container.attempt"
)
