// Package containerd is the kubelet.Runtime that runs real containers through
// containerd (the v1.7 client; it works against containerd 1.6 and later). Everything
// lives in its own containerd namespace ("skiff" by default), so `ctr -n skiff` shows
// what the kubelet runs and nothing else is touched.
//
// Containers run in their pod's network namespace when the kubelet gives one (the CNI
// pod network; port-forward dials inside it), else in the host's, with the mounts the
// kubelet gives (volumes, /etc/hosts, /etc/resolv.conf, the termination log; the
// host's hosts and resolv.conf when it gives none), their own host name (or the
// host's), the host's process and IPC namespaces for hostPID and hostIPC pods, and what their securityContext asks applied through the OCI spec: user
// and groups, capabilities added and dropped, privileged, a read-only root filesystem, no_new_privs, sysctls,
// seccompProfile RuntimeDefault as containerd's default profile. seLinuxOptions are ignored on a node
// without SELinux, as Kubernetes' kubelet and containerd ignore them there, and refused on one with it.
// runAsNonRoot refuses a container whose user resolves to uid 0 (kubelet.ErrContainerConfig).
// A tty container runs in a terminal the shim holds, whose output goes to the logging
// program as stdout; with stdin as well, its input is a FIFO the shim reads and Attach
// writes to (attach.go). A container with stdin and no tty has FIFOs for its three
// streams, its logging program started by the runtime (attach.go).
// Each runs in its pod's cgroup (cgroups.go), with its CPU limit as a CFS quota, its CPU
// request as cpu shares (weight on cgroup v2) and its memory limit, and sees its own
// cgroups at /sys/fs/cgroup (read-only, in a cgroup namespace of its own on v2), as
// containerd's CRI plugin mounts them; a container killed
// by the OOM killer exits with reason OOMKilled. A container's identity (pod uid, name,
// namespace, container name, attempt), its cgroup and its start time are container
// labels; exit codes and times come from its task, which is kept until Remove so that
// they can be read. Output goes to a file per container under Config.LogDir, in the CRI
// log format, written by a logging program the shim runs (package logger), so that it
// keeps each line's time and outlives a kubelet restart. ExecSync runs a process in a
// container's task, as probes and hooks need.
//
// Images are pulled over HTTPS. Registries on a loopback address (localhost, 127.0.0.0/8,
// ::1) and those listed in Config.InsecureRegistries are tried over HTTPS without
// certificate verification first and, when they do not speak TLS, over plain HTTP: what
// Docker's --insecure-registry and containerd's CRI plugin do.
//
// Pulls authenticate with the pod's registry credentials (imagePullSecrets) when the
// registry asks.
//
// Not done yet: image garbage collection, restoring exit codes after containerd itself
// restarts (a container without a task then reports StateUnknown and is restarted per
// policy), and running the kubelet as anything but root.
package containerd

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd/logger"
)

// DefaultSocket is containerd's usual address.
const DefaultSocket = "/run/containerd/containerd.sock"

// Labels beyond kubelet's identity labels.
const (
	labelImage     = "io.skiff.image"
	labelImageID   = "io.skiff.image-id"
	labelStartedAt = "io.skiff.started-at"
	labelCgroup    = "io.skiff.cgroup"
	// labelResources: the container's Resources, as created or last updated
	// (resourcesLabel).
	labelResources = "io.skiff.resources"
	// labelTTY, labelStdin and labelStdinOnce ("true"): the container runs in a
	// terminal, its spec asked for stdin (its input is the FIFO at stdinPath, attach.go)
	// and for stdinOnce.
	labelTTY       = "io.skiff.tty"
	labelStdin     = "io.skiff.stdin"
	labelStdinOnce = "io.skiff.stdin-once"
)

// Config configures the runtime.
type Config struct {
	// Socket is containerd's address (DefaultSocket).
	Socket string
	// Namespace is the containerd namespace ("skiff").
	Namespace string
	// LogDir holds the containers' output files (/var/log/skiff/containers).
	LogDir string
	// LogProgram is the logging program containerd's shims run for each container (package
	// logger): a binary that links this package ("": this process's own).
	LogProgram string
	// Snapshotter unpacks images ("": containerd's default).
	Snapshotter string
	// InsecureRegistries are registries (HOST or HOST:PORT, as in image names) pulled
	// from without TLS verification, falling back to plain HTTP. Loopback registries
	// always are.
	InsecureRegistries []string
	// CgroupRoot is the cgroup under which pods' cgroups go ("/" + Namespace).
	CgroupRoot string
	// CgroupMount is where the cgroup filesystems are mounted (/sys/fs/cgroup).
	CgroupMount string
	// RuntimeHandlers are the RuntimeClass handlers the node runs pods with, each with
	// the containerd runtime (shim) it names, "" for containerd's default runtime. The
	// default is runc, containerd's default runtime (io.containerd.runc.v2).
	RuntimeHandlers map[string]string
}

// validateRegistry checks an InsecureRegistries entry: a host, optionally with a port,
// the way it appears in image names.
func validateRegistry(r string) error {
	if r == "" || strings.ContainsAny(r, "/ ") || strings.Contains(r, "://") {
		return fmt.Errorf("insecure registry %q: want HOST or HOST:PORT (no scheme or path)", r)
	}
	if _, err := reference.ParseNormalizedNamed(r + "/x"); err != nil {
		return fmt.Errorf("insecure registry %q: %v", r, err)
	}
	return nil
}

// DefaultConfig is the usual setup.
func DefaultConfig() Config {
	return Config{Socket: DefaultSocket, Namespace: "skiff", LogDir: "/var/log/skiff/containers"}
}

// Runtime runs containers through containerd.
type Runtime struct {
	cfg      Config
	logger   string
	client   *containerd.Client
	version  string
	resolver remotes.Resolver
	// unified tells whether the host's cgroups are v2 (cgroups.Mode() == Unified):
	// the seam through which tests take a v2 host's path on a v1 one.
	unified func() bool

	mu  sync.Mutex
	oom map[string]bool // exited containers' OOM verdicts, by ID, read once
}

var _ kubelet.Runtime = (*Runtime)(nil)

// New connects to containerd.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "skiff"
	}
	if cfg.LogDir == "" {
		cfg.LogDir = DefaultConfig().LogDir
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/" + cfg.Namespace
	}
	if cfg.CgroupMount == "" {
		cfg.CgroupMount = "/sys/fs/cgroup"
	}
	if cfg.RuntimeHandlers == nil {
		cfg.RuntimeHandlers = map[string]string{kubelet.DefaultRuntimeHandler: ""}
	}
	var errs []error
	for _, reg := range cfg.InsecureRegistries {
		errs = append(errs, validateRegistry(reg))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	logger := cfg.LogProgram
	if logger == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("containerd runtime: the logging program is this binary: %w", err)
		}
		logger = exe
	}
	logger, err := filepath.Abs(logger)
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: logging program %q: %w", cfg.LogProgram, err)
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, fmt.Errorf("containerd runtime: log dir: %w", err)
	}
	c, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Socket, err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd at %s: version: %w", cfg.Socket, err)
	}
	return &Runtime{cfg: cfg, logger: logger, client: c, version: "containerd://" + v.Version, resolver: newResolver(cfg.InsecureRegistries, nil),
		unified: func() bool { return cgroups.Mode() == cgroups.Unified }, oom: map[string]bool{}}, nil
}

// newResolver resolves image names to registries: HTTPS with the system's roots, except
// for loopback and insecure registries (see the package comment), logging in with creds
// where a registry asks.
func newResolver(insecure []string, creds kubelet.Credentials) remotes.Resolver {
	set := map[string]bool{}
	for _, h := range insecure {
		set[h] = true
	}
	client := func(tlsConfig *tls.Config) *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsConfig
		return &http.Client{Transport: tr}
	}
	secure := client(nil)
	// HTTPS without verification; a registry answering in plain text is then asked
	// over HTTP (containerd's fallback remembers that per host).
	lax := &http.Client{Transport: docker.NewHTTPFallback(client(&tls.Config{InsecureSkipVerify: true}).Transport)}
	return docker.NewResolver(docker.ResolverOptions{Hosts: func(host string) ([]docker.RegistryHost, error) {
		c := secure
		if isInsecure(set, host) {
			c = lax
		}
		addr := host
		if host == "docker.io" {
			addr = "registry-1.docker.io"
		}
		auth := []docker.AuthorizerOpt{docker.WithAuthClient(c)}
		if a, ok := creds[host]; ok {
			auth = append(auth, docker.WithAuthCreds(func(string) (string, string, error) { return a.Username, a.Password, nil }))
		}
		return []docker.RegistryHost{{
			Client: c, Authorizer: docker.NewDockerAuthorizer(auth...),
			Host: addr, Scheme: "https", Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}})
}

// isInsecure tells whether host (HOST or HOST:PORT) is a loopback registry or listed in
// set; a listed HOST without a port covers all its ports.
func isInsecure(set map[string]bool, host string) bool {
	if docker.IsLocalhost(host) || set[host] {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	return err == nil && set[h]
}

// Close closes the connection.
func (r *Runtime) Close() error { return r.client.Close() }

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// Version implements kubelet.Runtime.
func (r *Runtime) Version() string { return r.version }

// CheckHandler implements kubelet.Runtime: the default handler and those of
// Config.RuntimeHandlers.
func (r *Runtime) CheckHandler(handler string) error {
	if _, ok := r.cfg.RuntimeHandlers[handler]; !ok && handler != "" {
		return kubelet.UnknownHandler(handler)
	}
	return nil
}

// normalize turns "nginx" into "docker.io/library/nginx:latest".
func normalize(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	return named.String(), nil
}

// EnsureImage implements kubelet.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, image, policy string, creds kubelet.Credentials) (string, bool, error) {
	ctx = r.ns(ctx)
	ref, err := normalize(image)
	if err != nil {
		return "", false, fmt.Errorf("%w: %v", kubelet.ErrImagePull, err)
	}
	img, err := r.client.GetImage(ctx, ref)
	present := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return "", false, fmt.Errorf("look up image %s: %w", ref, err)
	}
	switch {
	case present && policy != kubelet.PullAlways:
		if err := r.unpack(ctx, img); err != nil {
			return "", false, err
		}
		return img.Target().Digest.String(), false, nil
	case !present && policy == kubelet.PullNever:
		return "", false, fmt.Errorf("image %s: not present with pull policy Never: %w", ref, kubelet.ErrImageNeverPull)
	}
	resolver := r.resolver
	if len(creds) > 0 {
		resolver = newResolver(r.cfg.InsecureRegistries, creds)
	}
	opts := []containerd.RemoteOpt{containerd.WithPullUnpack, containerd.WithResolver(resolver)}
	if r.cfg.Snapshotter != "" {
		opts = append(opts, containerd.WithPullSnapshotter(r.cfg.Snapshotter))
	}
	img, err = r.client.Pull(ctx, ref, opts...)
	if err != nil {
		return "", false, fmt.Errorf("pull image %s: %w: %v", ref, kubelet.ErrImagePull, err)
	}
	return img.Target().Digest.String(), true, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name(), err)
	}
	if !ok {
		if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
			return fmt.Errorf("unpack image %s: %w", img.Name(), err)
		}
	}
	return nil
}

// Import loads images from an OCI (or docker save) archive and unpacks them; it
// returns their names. Pods then use them with imagePullPolicy IfNotPresent or Never.
func (r *Runtime) Import(ctx context.Context, archive io.Reader) ([]string, error) {
	ctx = r.ns(ctx)
	imgs, err := r.client.Import(ctx, archive)
	if err != nil {
		return nil, fmt.Errorf("import images: %w", err)
	}
	var names []string
	for _, i := range imgs {
		if err := r.unpack(ctx, containerd.NewImage(r.client, i)); err != nil {
			return names, err
		}
		names = append(names, i.Name)
	}
	return names, nil
}

// CreateAndStart implements kubelet.Runtime.
func (r *Runtime) CreateAndStart(ctx context.Context, cfg kubelet.ContainerConfig) (string, error) {
	ctx = r.ns(ctx)
	ref, err := normalize(cfg.Image)
	if err != nil {
		return "", err
	}
	img, err := r.client.GetImage(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("create container %s/%s: image %s: %w", cfg.PodName, cfg.Name, ref, err)
	}
	id := containerID(cfg)
	specOpts := []oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace)}
	if cfg.NetNSPath != "" {
		// The pod's own network namespace (its pod network's), shared by its containers.
		specOpts[0] = oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cfg.NetNSPath})
	}
	switch {
	case len(cfg.Command) > 0:
		// command replaces the image's entrypoint (and its cmd with it).
		specOpts = append(specOpts, oci.WithImageConfig(img), oci.WithProcessArgs(append(append([]string{}, cfg.Command...), cfg.Args...)...))
	case len(cfg.Args) > 0:
		specOpts = append(specOpts, oci.WithImageConfigArgs(img, cfg.Args))
	default:
		specOpts = append(specOpts, oci.WithImageConfig(img))
	}
	if len(cfg.Env) > 0 {
		specOpts = append(specOpts, oci.WithEnv(cfg.Env))
	}
	if cfg.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(cfg.WorkingDir))
	}
	if cfg.HostIPC {
		specOpts = append(specOpts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	if cfg.HostPID && cfg.TargetID == "" { // a target of a hostPID pod is in the node's, too
		specOpts = append(specOpts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if cfg.TargetID != "" {
		// An ephemeral container with a target joins the target's process namespace
		// (as containerd's CRI plugin does for a TARGET namespace mode): its tools see
		// the target's processes.
		ns, err := r.pidNamespace(ctx, cfg.TargetID)
		if err != nil {
			return "", fmt.Errorf("create container %s/%s: target: %w", cfg.PodName, cfg.Name, err)
		}
		specOpts = append(specOpts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: ns}))
	}
	specOpts = append(specOpts, cgroupMountOpts(cfg.Mounts, cfg.Security.Privileged, r.unified())...)
	specOpts = append(specOpts, mountOpts(cfg.Mounts)...)
	if cfg.Hostname != "" {
		specOpts = append(specOpts, oci.WithHostname(cfg.Hostname))
	} else {
		specOpts = append(specOpts, oci.WithHostNamespace(specs.UTSNamespace))
	}
	specOpts = append(specOpts, securityOpts(cfg)...)
	specOpts = append(specOpts, resourceOpts(cfg)...)
	if cfg.TTY {
		specOpts = append(specOpts, oci.WithTTY)
	}
	podCgroup, err := r.ensurePodCgroup(cfg)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	cgroup := path.Join(podCgroup, id)
	specOpts = append(specOpts, oci.WithCgroup(cgroup))
	if cfg.Security.RunAsNonRoot {
		specOpts = append(specOpts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Process.User.UID == 0 {
				return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s): %w",
					cfg.PodName+"_"+cfg.Namespace+"("+cfg.PodUID+")", cfg.Name, kubelet.ErrContainerConfig)
			}
			return nil
		})
	}
	labels := map[string]string{
		kubelet.LabelPodUID: cfg.PodUID, kubelet.LabelPodName: cfg.PodName, kubelet.LabelPodNamespace: cfg.Namespace,
		kubelet.LabelContainerName: cfg.Name, kubelet.LabelAttempt: strconv.Itoa(cfg.Attempt),
		labelImage: cfg.Image, labelImageID: img.Target().Digest.String(), labelCgroup: cgroup,
		labelResources: resourcesLabel(cfg.Resources),
	}
	if cfg.TTY {
		labels[labelTTY] = "true"
	}
	if cfg.Stdin {
		labels[labelStdin] = "true"
	}
	if cfg.Stdin && cfg.StdinOnce {
		labels[labelStdinOnce] = "true"
	}
	if err := r.CheckHandler(cfg.RuntimeHandler); err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	newOpts := []containerd.NewContainerOpts{
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(labels),
	}
	if shim := r.cfg.RuntimeHandlers[cfg.RuntimeHandler]; shim != "" {
		newOpts = append(newOpts, containerd.WithRuntime(shim, nil))
	}
	ctr, err := r.client.NewContainer(ctx, id, newOpts...)
	if err != nil {
		if errors.Is(err, kubelet.ErrContainerConfig) {
			return "", err
		}
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	fail := func(err error) (string, error) {
		_ = ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
		return "", err
	}
	// The file is made here, so that a failure shows as the container's, not only in
	// the logging program's output.
	lf, err := os.OpenFile(r.logPath(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fail(fmt.Errorf("create container %s: log file: %w", id, err))
	}
	lf.Close()
	stdin := ""
	if cfg.Stdin {
		stdin = r.stdinPath(id)
		if err := makeFIFO(stdin); err != nil {
			return fail(fmt.Errorf("create container %s: input: %w", id, err))
		}
	}
	taskIO := taskIO(cio.BinaryIO(r.logger, map[string]string{logger.Arg: r.logPath(id)}), stdin, cfg.TTY)
	if cfg.Stdin && !cfg.TTY {
		var release func()
		if taskIO, release, err = r.pipedIO(id, stdin); err != nil {
			return fail(fmt.Errorf("create container %s: %w", id, err))
		}
		defer release()
	}
	task, err := ctr.NewTask(ctx, taskIO)
	if err != nil {
		return fail(fmt.Errorf("create task %s: %w", id, err))
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return fail(fmt.Errorf("start container %s: %w", id, err))
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return id, fmt.Errorf("label container %s: %w", id, err)
	}
	return id, nil
}

// maxIDLength is the longest identifier containerd accepts (its identifiers package).
const maxIDLength = 76

// separatorRuns are what containerd's identifiers may not hold: separators in a row.
var separatorRuns = regexp.MustCompile(`[._-]{2,}`)

// containerID is a name that says what the container is, unique per attempt:
// namespace_pod_container_uid_attempt. One containerd does not accept (longer than 76
// characters: a namespace and a pod name can be 63 each, e2e's pods are named with a
// UUID; or separators in a row, as a pod "a--b" has) keeps as much of it as fits, each
// run of separators one, none at its end, and the hash of the whole, so that it stays
// unique.
func containerID(cfg kubelet.ContainerConfig) string {
	id := fmt.Sprintf("%s_%s_%s_%s_%d", cfg.Namespace, cfg.PodName, cfg.Name, shortUID(cfg.PodUID), cfg.Attempt)
	if identifiers.Validate(id) == nil {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	suffix := "_" + hex.EncodeToString(sum[:8])
	kept := separatorRuns.ReplaceAllStringFunc(id, func(run string) string { return run[:1] })
	kept = kept[:min(len(kept), maxIDLength-len(suffix))]
	return strings.TrimRight(kept, "._-") + suffix
}

func shortUID(uid string) string {
	if len(uid) > 8 {
		return uid[:8]
	}
	return uid
}

func (r *Runtime) logPath(id string) string { return filepath.Join(r.cfg.LogDir, id+".log") }

func notFound(op, id string, err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%s container %s: %w", op, id, kubelet.ErrNotFound)
	}
	return fmt.Errorf("%s container %s: %w", op, id, err)
}

// Stop implements kubelet.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return notFound("stop", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: SIGTERM: %w", id, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: SIGKILL: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove implements kubelet.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return notFound("remove", id, err)
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: delete task: %w", id, err)
		}
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.Remove(r.logPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s: log: %w", id, err)
	}
	for _, path := range []string{r.stdinPath(id), r.outputPath(id, "stdout"), r.outputPath(id, "stderr")} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
	}
	r.mu.Lock()
	delete(r.oom, id)
	r.mu.Unlock()
	return nil
}

// DiskUsage implements kubelet.Runtime: the usage of the container's snapshot (its
// writable layer, as the snapshotter measures it) and the blocks of its log file.
func (r *Runtime) DiskUsage(ctx context.Context, id string) (int64, error) {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return 0, notFound("disk usage of", id, err)
	}
	info, err := ctr.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return 0, notFound("disk usage of", id, err)
	}
	u, err := r.client.SnapshotService(info.Snapshotter).Usage(ctx, info.SnapshotKey)
	if err != nil {
		return 0, notFound("disk usage of", id, err)
	}
	total := u.Size
	var st syscall.Stat_t
	if err := syscall.Stat(r.logPath(id), &st); err == nil {
		total += st.Blocks * 512
	}
	return total, nil
}

// RemovePod implements kubelet.Runtime: the pod's cgroup goes.
func (r *Runtime) RemovePod(ctx context.Context, podUID string) error {
	return errors.Join(r.removeImageViews(ctx, podUID), r.removePodCgroups(podUID))
}

// List implements kubelet.Runtime. It costs two calls to containerd whatever the number of
// containers (their records, then every task's state), not a few per container: the
// kubelet lists on every pod sync and every relist.
func (r *Runtime) List(ctx context.Context) ([]kubelet.Container, error) {
	ctx = r.ns(ctx)
	// Containers first: a container labelled as started then has its task in the list
	// below unless it was removed meanwhile.
	ctrs, err := r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list containers: tasks: %w", err)
	}
	procs := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, p := range resp.Tasks {
		procs[p.ID] = p // a task's ID is its container's (containerd 1.6 leaves ContainerID empty)
	}
	out := make([]kubelet.Container, 0, len(ctrs))
	for _, info := range ctrs {
		l := info.Labels
		if l[kubelet.LabelPodUID] == "" {
			continue // not the kubelet's
		}
		attempt, _ := strconv.Atoi(l[kubelet.LabelAttempt])
		c := kubelet.Container{
			ID: info.ID, PodUID: l[kubelet.LabelPodUID], PodName: l[kubelet.LabelPodName], Namespace: l[kubelet.LabelPodNamespace],
			Name: l[kubelet.LabelContainerName], Attempt: attempt, Image: l[labelImage], ImageID: l[labelImageID],
			State: kubelet.StateCreated, CreatedAt: info.CreatedAt,
		}
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, l[labelStartedAt])
		c.Resources = parseResourcesLabel(l[labelResources])
		c.TTY, c.Stdin, c.StdinOnce = l[labelTTY] == "true", l[labelStdin] == "true", l[labelStdinOnce] == "true"
		p, ok := procs[info.ID]
		switch {
		case !ok:
			if !c.StartedAt.IsZero() {
				c.State = kubelet.StateUnknown // started once; its task is gone (containerd restarted)
			}
		default:
			switch p.Status {
			case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
				c.State = kubelet.StateRunning
			case tasktypes.Status_STOPPED:
				c.State, c.ExitCode = kubelet.StateExited, int(p.ExitStatus)
				if p.ExitedAt != nil {
					c.FinishedAt = p.ExitedAt.AsTime()
				}
				if r.exitedOOM(info.ID, l[labelCgroup], c.ExitCode) {
					c.Reason = "OOMKilled"
				}
			case tasktypes.Status_CREATED:
				c.State = kubelet.StateCreated
			default:
				c.State = kubelet.StateUnknown
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// exitedOOM tells (once per container, then from memory) whether an exited container
// was killed by the OOM killer: its exit was a SIGKILL and its cgroup counts an OOM kill.
func (r *Runtime) exitedOOM(id, cgroup string, exitCode int) bool {
	if cgroup == "" || exitCode != 128+int(syscall.SIGKILL) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.oom[id]
	if !ok {
		v = r.oomKilled(cgroup)
		r.oom[id] = v
	}
	return v
}

// logPoll is how often a followed log file is checked for more output.
const logPoll = 200 * time.Millisecond

// LogSettle implements kubelet.LogSettler: the logging program writes a container's last
// line without its newline once its output has been quiet a moment (logger.Settle), while
// the shim holds the streams open past the exit.
func (r *Runtime) LogSettle() time.Duration { return logger.Settle }

// Logs implements kubelet.Runtime: the container's log file, in the CRI log format.
// Following copies what the file holds, then what is appended to it, until the
// container's task exits (or ctx ends).
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer, follow bool) error {
	f, err := os.Open(r.logPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("logs of container %s: %w", id, kubelet.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer f.Close()
	if !follow {
		_, err = io.Copy(w, f)
		return err
	}
	nctx := r.ns(ctx)
	ctr, err := r.client.LoadContainer(nctx, id)
	if err != nil {
		return notFound("logs of", id, err)
	}
	exited := make(chan struct{})
	if task, err := ctr.Task(nctx, nil); err == nil {
		// Wait answers at once for a task that has exited already.
		ch, err := task.Wait(nctx)
		if err != nil {
			return fmt.Errorf("logs of container %s: wait: %w", id, err)
		}
		returned := make(chan struct{})
		defer close(returned)
		go func() {
			select {
			case <-ch:
				close(exited)
			case <-returned:
			}
		}()
	} else {
		close(exited) // no task: nothing runs to write more
	}
	return followFile(ctx, f, w, exited, logPoll)
}

// followFile copies f to w, then what is appended to f (looking every poll) until
// exited is closed, after which it copies what remains and returns; or until ctx ends.
// What remains is read one poll after the exit: the logging program may still be
// writing what the container wrote last.
func followFile(ctx context.Context, f io.Reader, w io.Writer, exited <-chan struct{}, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		select {
		case <-exited:
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err := io.Copy(w, f)
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
