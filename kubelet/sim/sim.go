// Package sim is an in-memory kubelet.Runtime: containers "run" without processes, so
// that one process can host hundreds of nodes (scale tests) and the kubelet's tests run
// fast and deterministically on an injected clock.
//
// What a container does is read from its command line (command and args joined by
// spaces), the way a shell script would say it:
//
//   - "exit N" anywhere: the container exits with code N (["sh", "-c", "exit 3"]).
//   - "sleep D": the container runs for D (seconds, or a Go duration such as "1.5s"),
//     then exits with the "exit N" code, or 0. Time is the runtime's clock, read lazily:
//     a container is seen to have exited when List or Logs looks after its deadline.
//   - a shell script ("sh -c ...") that does neither: it exits 0 at once, its commands
//     done.
//   - neither, or a "while" loop: it runs until stopped.
//
// A container with "exit N" and no sleep exits the moment it starts. Sleeps add up: in
// "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600" the container runs 630s,
// and the file exists for its first 30s — what the Kubernetes documentation's exec
// liveness example does, so its probe ("cat /tmp/healthy") starts failing then.
//
// What the kubelet runs in a container (ExecSync: probes, hooks) is read the same way:
// "exit N", "true" and "false" say how it ends; "cat F", "test -e F", "ls F" and "stat F"
// succeed when F exists — made by the container's own "touch F" or "echo ... > F" (and
// not removed by "rm F" since), or a file of a volume mounted into it (read from the
// host); "sleep D" longer than the timeout times out.
//
// Network probes (the kubelet asks the runtime, kubelet.NetworkProber, instead of
// dialling): a running container answers on the ports it declares (HTTP 200, TCP
// accepts, gRPC SERVING) and refuses on others. The documentation's HTTP liveness
// example, agnhost with the argument "liveness", answers 200 for its first 10 seconds
// and 500 after.
//
// Memory: a container whose command line asks for more memory than its limit
// ("stress --vm-bytes 250M" with limit 100Mi, as the documentation's example) is
// OOMKilled as it starts (exit code 137, reason OOMKilled).
//
// runAsNonRoot: simulated images run as root, so a container that must not, and names
// no other user, is refused with kubelet.ErrContainerConfig.
//
// Its output (Logs) says what the simulation did: a line when it starts (with its
// image and command), the text of each "echo TEXT" in its command line, what it was
// sent when stopped, and its exit code. Write adds lines, as if the container printed
// them (tests of following), and WriteErr as if on stderr. Logs gives it in the CRI log
// format, each line with the runtime clock's time when it was printed, as a real
// runtime keeps it.
// Stop makes a running container exit with 143 (128+SIGTERM); one whose command line
// traps TERM to nothing ignores SIGTERM and exits with 137 (SIGKILL) instead:
//
//	sh -c "trap '' TERM; sleep 3600"
//
// Images: Config.Images lists what a pull can find (nil: any image); Config.Present
// what is there without a pull. Pulling anything else fails with kubelet.ErrImagePull,
// and so does pulling an image of Config.Private without its login.
package sim

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unique"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/crilog"
)

// Config tunes a simulated runtime.
type Config struct {
	// Images a pull can find; nil means every image.
	Images []string
	// Present are images already on the node.
	Present []string
	// Private are images whose pull needs a login, by image.
	Private map[string]kubelet.RegistryAuth
	// StartDelay is how long creating and starting a container takes (0: at once), as a
	// real runtime's would; the call waits it out (or its context's end).
	StartDelay time.Duration
	// Now is the runtime's clock (default time.Now).
	Now func() time.Time
}

// Runtime is the simulated runtime. It is safe for concurrent use.
type Runtime struct {
	now        func() time.Time
	startDelay time.Duration

	mu       sync.Mutex
	private  map[string]kubelet.RegistryAuth
	pullable map[string]bool // nil: all
	present  map[string]string
	ctrs     map[string]*container
	ids      []string            // ctrs' IDs in order, nil when ctrs changed since List sorted them
	byPod    map[podRef][]string // a pod's containers' IDs, in creation order
	version  uint64              // grows with every container created, exited or removed (Changes)
	due      dueExit             // the earliest exit of a running container on its own schedule
	seq      int
	creates  int
	pulls    int
}

// dueExit is when the next running container exits of its own accord, as of version: a
// container whose runFor ends. Zero at: none will.
type dueExit struct {
	version uint64
	known   bool
	at      time.Time
}

type container struct {
	c      kubelet.Container
	cfg    kubelet.ContainerConfig
	runFor time.Duration // < 0: until stopped
	code   int
	ignore bool // ignores SIGTERM
	files  []fileEvent
	logs   [][]byte      // records of the CRI log format (package crilog), as a real runtime keeps them
	grew   chan struct{} // closed (and replaced) when logs grow
	// written is what the container wrote to its writable layer (SetWritten).
	written int64
}

// fileEvent is a file the container's script makes (exists) or removes, at an offset
// from its start.
type fileEvent struct {
	at     time.Duration
	path   string
	exists bool
}

// print appends a line of output, written at at (on stdout), and wakes followers.
func (c *container) print(at time.Time, line string) { c.printOn(crilog.Stdout, at, line) }

// printOn appends a line of output on stream (crilog.Stdout or Stderr).
func (c *container) printOn(stream string, at time.Time, line string) {
	c.logs = append(c.logs, crilog.Append(nil, crilog.Record{Time: at, Stream: stream, Content: []byte(line)}))
	close(c.grew)
	c.grew = make(chan struct{})
}

var (
	_ kubelet.Runtime       = (*Runtime)(nil)
	_ kubelet.PodLister     = (*Runtime)(nil)
	_ kubelet.ChangeTracker = (*Runtime)(nil)
)

// New makes an empty runtime.
func New(cfg Config) *Runtime {
	r := &Runtime{now: cfg.Now, startDelay: cfg.StartDelay, present: map[string]string{}, ctrs: map[string]*container{}, byPod: map[podRef][]string{}, private: map[string]kubelet.RegistryAuth{}}
	for img, a := range cfg.Private {
		r.private[normalize(img)] = a
	}
	if r.now == nil {
		r.now = time.Now
	}
	if cfg.Images != nil {
		r.pullable = map[string]bool{}
		for _, img := range cfg.Images {
			r.pullable[normalize(img)] = true
		}
	}
	for _, img := range cfg.Present {
		r.present[normalize(img)] = imageID(img)
	}
	return r
}

// normalize adds the implicit ":latest" tag.
func normalize(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	if i := strings.LastIndex(image, ":"); i < 0 || strings.Contains(image[i:], "/") {
		return image + ":latest"
	}
	return image
}

// registryHost is the registry part of an image name: its first component when that
// looks like a host (has a '.' or a ':', or is localhost), else docker.io.
func registryHost(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

func imageID(image string) string {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(normalize(image)) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return fmt.Sprintf("sha256:%016x", h)
}

// EnsureImage implements kubelet.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, image, policy string, creds kubelet.Credentials) (string, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := normalize(image)
	id, ok := r.present[name]
	switch {
	case ok && policy != kubelet.PullAlways:
		return id, false, nil
	case !ok && policy == kubelet.PullNever:
		return "", false, fmt.Errorf("image %q: not present with pull policy Never: %w", image, kubelet.ErrImageNeverPull)
	}
	r.pulls++
	if r.pullable != nil && !r.pullable[name] {
		return "", false, fmt.Errorf("pull image %q: repository does not exist or may require authorization: %w", image, kubelet.ErrImagePull)
	}
	if want, ok := r.private[name]; ok && creds[registryHost(name)] != want {
		return "", false, fmt.Errorf("pull image %q: 401 Unauthorized: %w", image, kubelet.ErrImagePull)
	}
	r.present[name] = imageID(image)
	return r.present[name], true, nil
}

// CreateAndStart implements kubelet.Runtime.
func (r *Runtime) CreateAndStart(ctx context.Context, cfg kubelet.ContainerConfig) (string, error) {
	created := r.now()
	if r.startDelay > 0 {
		t := time.NewTimer(r.startDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("create container %s/%s: %w", cfg.PodName, cfg.Name, ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	imgID, ok := r.present[normalize(cfg.Image)]
	if !ok {
		return "", fmt.Errorf("create container %s/%s: image %q not present: %w", cfg.PodName, cfg.Name, cfg.Image, kubelet.ErrNotFound)
	}
	argv := append(slices.Clone(cfg.Command), cfg.Args...)
	sec := cfg.Security
	if sec.RunAsNonRoot && (sec.RunAsUser == nil || *sec.RunAsUser == 0) {
		return "", fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s): %w",
			cfg.PodName+"_"+cfg.Namespace+"("+cfg.PodUID+")", cfg.Name, kubelet.ErrContainerConfig)
	}
	r.seq++
	r.creates++
	id := fmt.Sprintf("%016x", r.seq)
	now := r.now()
	runFor, code, ignore := parse(argv)
	cfg.Env = sharedEnv(cfg.Env)
	c := &container{
		c: kubelet.Container{
			ID: id, PodUID: cfg.PodUID, PodName: cfg.PodName, Namespace: cfg.Namespace, Name: cfg.Name, Attempt: cfg.Attempt,
			Image: cfg.Image, ImageID: imgID, State: kubelet.StateRunning, CreatedAt: created, StartedAt: now,
			Resources: new(cfg.Resources), TTY: cfg.TTY, Stdin: cfg.Stdin, StdinOnce: cfg.StdinOnce,
		},
		cfg: cfg, runFor: runFor, code: code, ignore: ignore, files: fileEvents(argv), grew: make(chan struct{}),
	}
	c.print(now, fmt.Sprintf("sim: container %s started (image %s, attempt %d): %s", cfg.Name, cfg.Image, cfg.Attempt, strings.Join(argv, " ")))
	for _, line := range echoes(argv) {
		c.print(now, line)
	}
	r.ctrs[id] = c
	r.ids = nil
	key := podRef{cfg.Namespace, cfg.PodName}
	r.byPod[key] = append(r.byPod[key], id)
	r.version++
	if limit := memoryLimit(cfg); limit > 0 && wantsMemory(argv) > limit {
		c.print(now, fmt.Sprintf("sim: container %s asked for %d bytes over its limit of %d: OOM-killed", cfg.Name, wantsMemory(argv), limit))
		r.exit(c, 137, now)
		c.c.Reason = "OOMKilled"
	}
	r.settle(c, now)
	return id, nil
}

// sharedEnv is env with each variable one copy in the process (unique.Make): a node's
// containers have mostly the same variables (the service links), and a process of
// simulated nodes keeps every container's config (issue 26).
func sharedEnv(env []string) []string {
	if len(env) == 0 {
		return env
	}
	out := make([]string, len(env))
	for i, v := range env {
		out[i] = unique.Make(v).Value()
	}
	return out
}

// memoryLimit is the tighter of a container's and its pod's memory limits (0: none).
func memoryLimit(cfg kubelet.ContainerConfig) int64 {
	l := cfg.MemoryBytes
	if p := cfg.Pod.MemoryBytes; p > 0 && (l == 0 || p < l) {
		l = p
	}
	return l
}

// wantsMemory is what a command line allocates: stress's --vm-bytes (250M, 1G, 512k).
func wantsMemory(argv []string) int64 {
	for i, w := range argv {
		v, ok := strings.CutPrefix(w, "--vm-bytes=")
		if !ok && w == "--vm-bytes" && i+1 < len(argv) {
			v, ok = argv[i+1], true
		}
		if !ok || v == "" {
			continue
		}
		mult := map[byte]int64{'k': 1 << 10, 'K': 1 << 10, 'm': 1 << 20, 'M': 1 << 20, 'g': 1 << 30, 'G': 1 << 30}[v[len(v)-1]]
		if mult > 0 {
			v = v[:len(v)-1]
		} else {
			mult = 1
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n * mult
		}
	}
	return 0
}

// fileEvents reads the files a container's script makes and removes, and when.
func fileEvents(argv []string) []fileEvent {
	var out []fileEvent
	var at time.Duration
	for _, cmd := range commands(strings.Join(argv, " ")) {
		words := unshell(strings.Fields(cmd))
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "sleep":
			if len(words) > 1 {
				at += duration(words[1])
			}
		case "touch", "mkdir":
			for _, w := range words[1:] {
				if !strings.HasPrefix(w, "-") {
					out = append(out, fileEvent{at: at, path: w, exists: true})
				}
			}
		case "rm":
			for _, w := range words[1:] {
				if !strings.HasPrefix(w, "-") {
					out = append(out, fileEvent{at: at, path: w})
				}
			}
		default:
			// echo ... > FILE
			if i := slices.Index(words, ">"); i >= 0 && i+1 < len(words) {
				out = append(out, fileEvent{at: at, path: words[i+1], exists: true})
			}
		}
	}
	return out
}

// unshell drops a shell's name and -c before the first command of a script.
func unshell(words []string) []string {
	if len(words) > 0 && (words[0] == "sh" || words[0] == "/bin/sh" || words[0] == "bash" || words[0] == "/bin/bash") {
		words = words[1:]
		if len(words) > 0 && words[0] == "-c" {
			words = words[1:]
		}
	}
	return words
}

// unquote drops a shell line's quotes. One for all: a Replacer builds its tables on
// first use, 6 KB each time one made per call did (every simulated container's start).
var unquote = strings.NewReplacer("'", "", `"`, "")

// commands splits a shell line at ; & | and newlines, without quotes.
func commands(line string) []string {
	line = unquote.Replace(line)
	return strings.FieldsFunc(line, func(r rune) bool { return r == ';' || r == '&' || r == '|' || r == '\n' })
}

// duration reads a sleep's argument: seconds, or a Go duration; 0 when neither.
func duration(arg string) time.Duration {
	if d, err := time.ParseDuration(arg); err == nil {
		return d
	}
	if f, err := strconv.ParseFloat(arg, 64); err == nil {
		return time.Duration(f * float64(time.Second))
	}
	return 0
}

// exists tells whether path exists in the container at now: made by its script, or a
// file of a mounted volume.
func (c *container) exists(path string, now time.Time) bool {
	ran := now.Sub(c.c.StartedAt)
	found, known := false, false
	for _, e := range c.files {
		if e.path == path && e.at <= ran {
			found, known = e.exists, true
		}
	}
	if known {
		return found
	}
	for _, m := range c.cfg.Mounts {
		if rel, ok := strings.CutPrefix(path, m.ContainerPath); ok && (rel == "" || rel[0] == '/') {
			_, err := os.Stat(m.HostPath + rel)
			return err == nil
		}
	}
	return false
}

// ExecSync implements kubelet.Runtime: see the package comment for what a command does.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (kubelet.ExecResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return kubelet.ExecResult{}, fmt.Errorf("exec in container %s: %w", id, kubelet.ErrNotFound)
	}
	now := r.now()
	r.settle(c, now)
	if c.c.State != kubelet.StateRunning {
		return kubelet.ExecResult{}, fmt.Errorf("exec in container %s: container is not running", id)
	}
	var out strings.Builder
	for _, line := range echoes(cmd) {
		out.WriteString(line + "\n")
	}
	var slept time.Duration
	for _, sc := range commands(strings.Join(cmd, " ")) {
		words := unshell(strings.Fields(sc))
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "exit":
			code := 0
			if len(words) > 1 {
				code, _ = strconv.Atoi(words[1])
			}
			return kubelet.ExecResult{ExitCode: code, Output: []byte(out.String())}, nil
		case "false":
			return kubelet.ExecResult{ExitCode: 1, Output: []byte(out.String())}, nil
		case "sleep":
			if len(words) > 1 {
				slept += duration(words[1])
			}
			if timeout > 0 && slept > timeout {
				return kubelet.ExecResult{}, fmt.Errorf("exec in container %s: %w after %v", id, kubelet.ErrExecTimeout, timeout)
			}
		case "cat", "test", "ls", "stat", "/bin/cat":
			for _, w := range words[1:] {
				if strings.HasPrefix(w, "-") {
					continue
				}
				if !c.exists(w, now.Add(slept)) {
					fmt.Fprintf(&out, "%s: can't open '%s': No such file or directory\n", words[0], w)
					return kubelet.ExecResult{ExitCode: 1, Output: []byte(out.String())}, nil
				}
			}
		}
	}
	return kubelet.ExecResult{Output: []byte(out.String())}, nil
}

var _ kubelet.NetworkProber = (*Runtime)(nil)

// ProbeNetwork implements kubelet.NetworkProber: a running container answers on the
// ports it declares.
func (r *Runtime) ProbeNetwork(ctx context.Context, id string, p kubelet.NetworkProbe) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return false, "container not found"
	}
	now := r.now()
	r.settle(c, now)
	addr := fmt.Sprintf("%s:%d", p.Host, p.Port)
	if c.c.State != kubelet.StateRunning || !slices.Contains(c.cfg.Ports, int32(p.Port)) {
		return false, fmt.Sprintf("dial tcp %s: connect: connection refused", addr)
	}
	argv := append(slices.Clone(c.cfg.Command), c.cfg.Args...)
	if p.Kind == kubelet.ProbeHTTP && strings.Contains(c.cfg.Image, "agnhost") && slices.Contains(argv, "liveness") &&
		now.Sub(c.c.StartedAt) > 10*time.Second {
		return false, "HTTP probe failed with statuscode: 500"
	}
	return true, ""
}

// RemovePod implements kubelet.Runtime: simulated pods hold nothing beyond their
// containers.
func (r *Runtime) RemovePod(ctx context.Context, podUID string) error { return nil }

// MountImage implements kubelet.Runtime: the image must be present; its files are not
// simulated (dir stays empty).
func (r *Runtime) MountImage(_ context.Context, _, image, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.present[normalize(image)]; !ok {
		return fmt.Errorf("image volume %q: not present: %w", image, kubelet.ErrNotFound)
	}
	return nil
}

// UpdateResources implements kubelet.Runtime: the container's Config and report take
// the new limits.
func (r *Runtime) UpdateResources(_ context.Context, id string, res kubelet.Resources, pod kubelet.PodResources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("update resources of container %s: %w", id, kubelet.ErrNotFound)
	}
	r.settle(c, r.now())
	if c.c.State != kubelet.StateRunning {
		return fmt.Errorf("update resources of container %s: %w", id, kubelet.ErrNotRunning)
	}
	c.cfg.Resources, c.cfg.Pod, c.c.Resources = res, pod, new(res)
	return nil
}

// Config of a container, as the kubelet asked for it (tests).
func (r *Runtime) Config(id string) (kubelet.ContainerConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return kubelet.ContainerConfig{}, false
	}
	return c.cfg, true
}

// parse reads a command line's behaviour: how long it runs (-1: until stopped), its exit
// code, and whether it ignores SIGTERM.
func parse(argv []string) (runFor time.Duration, code int, ignoreTerm bool) {
	words := strings.Fields(strings.Join(argv, " "))
	runFor = -1
	exits := false
	for i, w := range words {
		w = strings.Trim(w, ";&|'\"")
		if i+1 >= len(words) {
			break
		}
		arg := strings.Trim(words[i+1], ";&|'\"")
		switch w {
		case "exit":
			if n, err := strconv.Atoi(arg); err == nil {
				code, exits = n, true
			}
		case "sleep":
			if d := duration(arg); d > 0 || arg == "0" {
				runFor = max(runFor, 0) + d
			}
		}
	}
	if exits && runFor < 0 {
		runFor = 0
	}
	if slices.Contains(words, "while") && !exits {
		runFor = -1 // a loop runs until stopped
	} else if runFor < 0 && len(argv) > 1 && argv[1] == "-c" {
		runFor = 0 // a shell script that neither sleeps nor loops is done at once
	}
	ignoreTerm = strings.Contains(strings.Join(argv, " "), "trap '' TERM")
	return runFor, code, ignoreTerm
}

// echoes are the texts a command line's "echo" commands print: in
// ["sh", "-c", "echo hello; sleep 1"], "hello".
func echoes(argv []string) []string {
	var out []string
	line := strings.Join(argv, " ")
	for _, cmd := range strings.FieldsFunc(line, func(r rune) bool { return r == ';' || r == '&' || r == '|' || r == '\n' }) {
		words := strings.Fields(cmd)
		for i, w := range words {
			if strings.Trim(w, `'"`) != "echo" {
				continue
			}
			text := strings.Join(words[i+1:], " ")
			out = append(out, unquote.Replace(text))
			break
		}
	}
	return out
}

// Write adds lines to a container's output, as if it printed them on stdout (tests).
func (r *Runtime) Write(id string, lines ...string) error { return r.write(id, crilog.Stdout, lines) }

// WriteErr adds lines to a container's output, as if it printed them on stderr (tests).
func (r *Runtime) WriteErr(id string, lines ...string) error {
	return r.write(id, crilog.Stderr, lines)
}

func (r *Runtime) write(id, stream string, lines []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("write to container %s: %w", id, kubelet.ErrNotFound)
	}
	now := r.now()
	for _, l := range lines {
		c.printOn(stream, now, l)
	}
	return nil
}

// settle marks a running container exited when its time has come.
func (r *Runtime) settle(c *container, now time.Time) {
	if c.c.State != kubelet.StateRunning || c.runFor < 0 {
		return
	}
	if end := c.c.StartedAt.Add(c.runFor); !now.Before(end) {
		r.exit(c, c.code, end)
	}
}

func (r *Runtime) exit(c *container, code int, at time.Time) {
	c.c.State, c.c.ExitCode, c.c.FinishedAt = kubelet.StateExited, code, at
	r.version++
	c.print(at, fmt.Sprintf("sim: container %s exited with code %d", c.c.Name, code))
}

// Stop implements kubelet.Runtime. The simulated container reacts at once: it exits on
// SIGTERM, or, ignoring it, is killed when grace ends (without waiting for it).
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("stop container %s: %w", id, kubelet.ErrNotFound)
	}
	now := r.now()
	r.settle(c, now)
	if c.c.State != kubelet.StateRunning {
		return nil
	}
	c.print(now, fmt.Sprintf("sim: container %s received SIGTERM (grace period %v)", c.c.Name, grace))
	if c.ignore {
		c.print(now, fmt.Sprintf("sim: container %s ignored SIGTERM; sending SIGKILL", c.c.Name))
		r.exit(c, 137, now.Add(grace))
	} else {
		r.exit(c, 143, now)
	}
	return nil
}

// Exit makes a running container exit with code now, as if its process ended (tests).
func (r *Runtime) Exit(id string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("exit container %s: %w", id, kubelet.ErrNotFound)
	}
	if c.c.State == kubelet.StateRunning {
		r.exit(c, code, r.now())
	}
	return nil
}

// Remove implements kubelet.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("remove container %s: %w", id, kubelet.ErrNotFound)
	}
	if c.c.State == kubelet.StateRunning {
		r.exit(c, 137, r.now())
	}
	delete(r.ctrs, id)
	r.ids = nil
	key := podRef{c.c.Namespace, c.c.PodName}
	if ids := slices.DeleteFunc(r.byPod[key], func(v string) bool { return v == id }); len(ids) > 0 {
		r.byPod[key] = ids
	} else {
		delete(r.byPod, key)
	}
	r.version++
	return nil
}

// podRef names a pod in byPod: a struct, so that a sync's lookup builds no string.
type podRef struct{ namespace, name string }

// Changes implements kubelet.ChangeTracker: a count that grows with every container created,
// removed or exited, an exit whose time has come on the runtime's clock included (those
// are settled here, as List would). Between changes it costs a comparison: a node's
// relist every second no longer lists its containers to find nothing (issue 26).
func (r *Runtime) Changes() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.due.known || r.due.version != r.version {
		r.due = dueExit{version: r.version, known: true}
		for _, c := range r.ctrs {
			if c.c.State == kubelet.StateRunning && c.runFor >= 0 {
				if end := c.c.StartedAt.Add(c.runFor); r.due.at.IsZero() || end.Before(r.due.at) {
					r.due.at = end
				}
			}
		}
	}
	if at := r.due.at; !at.IsZero() {
		if now := r.now(); !now.Before(at) {
			for _, c := range r.ctrs {
				r.settle(c, now)
			}
		}
	}
	return r.version
}

// List implements kubelet.Runtime, in creation order.
func (r *Runtime) List(ctx context.Context) ([]kubelet.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.ids == nil {
		r.ids = slices.Sorted(maps.Keys(r.ctrs)) // a node's thousand relists a second sort once
	}
	out := make([]kubelet.Container, 0, len(r.ids))
	for _, id := range r.ids {
		c := r.ctrs[id]
		r.settle(c, now)
		out = append(out, c.c)
	}
	return out, nil
}

// ListPod implements kubelet.PodLister: the pod's containers, as List has them, without
// the node's others.
func (r *Runtime) ListPod(ctx context.Context, namespace, name string) ([]kubelet.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.byPod[podRef{namespace, name}]
	if len(ids) == 0 {
		return nil, nil
	}
	now := r.now()
	out := make([]kubelet.Container, 0, len(ids))
	for _, id := range ids {
		c := r.ctrs[id]
		r.settle(c, now)
		out = append(out, c.c)
	}
	return out, nil
}

// DiskUsage implements kubelet.Runtime: what SetWritten says the container wrote to its
// writable layer, and its output's bytes.
func (r *Runtime) DiskUsage(_ context.Context, id string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return 0, fmt.Errorf("disk usage of container %s: %w", id, kubelet.ErrNotFound)
	}
	r.settle(c, r.now())
	n := c.written
	for _, l := range c.logs {
		n += int64(len(l))
	}
	return n, nil
}

// SetWritten makes container id have written n bytes to its writable layer (a
// simulated container writes no files of its own), as a test of storage limits wants.
func (r *Runtime) SetWritten(id string, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, kubelet.ErrNotFound)
	}
	c.written = n
	return nil
}

// Logs implements kubelet.Runtime, in the CRI log format. Following streams lines as they are written and ends
// once the container is seen to exit (the kubelet's relist looks every second).
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer, follow bool) error {
	sent := 0
	for {
		r.mu.Lock()
		c, ok := r.ctrs[id]
		if !ok && sent == 0 {
			r.mu.Unlock()
			return fmt.Errorf("logs of container %s: %w", id, kubelet.ErrNotFound)
		}
		var lines [][]byte
		var grew chan struct{}
		exited := true
		if ok {
			r.settle(c, r.now())
			lines, grew = slices.Clone(c.logs[sent:]), c.grew
			exited = c.c.State == kubelet.StateExited
		}
		r.mu.Unlock()
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return err
			}
		}
		sent += len(lines)
		if !follow || exited {
			return nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Version implements kubelet.Runtime.
func (r *Runtime) Version() string { return "sim://0.1.0" }

// CheckHandler implements kubelet.Runtime: a simulated node has the default handler,
// runc, only.
func (r *Runtime) CheckHandler(handler string) error {
	if handler != "" && handler != kubelet.DefaultRuntimeHandler {
		return kubelet.UnknownHandler(handler)
	}
	return nil
}

// Creates counts CreateAndStart calls (tests: "no second container").
func (r *Runtime) Creates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creates
}

// Pulls counts pull attempts.
func (r *Runtime) Pulls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulls
}
