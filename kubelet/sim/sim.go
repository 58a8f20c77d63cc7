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
//   - neither: it runs until stopped.
//
// A container with "exit N" and no sleep exits the moment it starts.
//
// Its output (Logs) says what the simulation did: a line when it starts (with its
// image and command), the text of each "echo TEXT" in its command line, what it was
// sent when stopped, and its exit code. Write adds lines, as if the container printed
// them (tests of following). Logs gives it in the CRI log format, each line with the
// runtime clock's time when it was printed, as a real runtime keeps it.
// Stop makes a running container exit with 143 (128+SIGTERM); one whose command line
// traps TERM to nothing ignores SIGTERM and exits with 137 (SIGKILL) instead:
//
//	sh -c "trap '' TERM; sleep 3600"
//
// Images: Config.Images lists what a pull can find (nil: any image); Config.Present
// what is there without a pull. Pulling anything else fails with kubelet.ErrImagePull.
package sim

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/crilog"
)

// Config tunes a simulated runtime.
type Config struct {
	// Images a pull can find; nil means every image.
	Images []string
	// Present are images already on the node.
	Present []string
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
	pullable map[string]bool // nil: all
	present  map[string]string
	ctrs     map[string]*container
	ids      []string // ctrs' IDs in order, nil when ctrs changed since List sorted them
	seq      int
	creates  int
	pulls    int
}

type container struct {
	c      kubelet.Container
	runFor time.Duration // < 0: until stopped
	code   int
	ignore bool          // ignores SIGTERM
	logs   [][]byte      // records of the CRI log format (package crilog), as a real runtime keeps them
	grew   chan struct{} // closed (and replaced) when logs grow
}

// print appends a line of output, written at at (on stdout), and wakes followers.
func (c *container) print(at time.Time, line string) {
	c.logs = append(c.logs, crilog.Append(nil, crilog.Record{Time: at, Stream: crilog.Stdout, Content: []byte(line)}))
	close(c.grew)
	c.grew = make(chan struct{})
}

var _ kubelet.Runtime = (*Runtime)(nil)

// New makes an empty runtime.
func New(cfg Config) *Runtime {
	r := &Runtime{now: cfg.Now, startDelay: cfg.StartDelay, present: map[string]string{}, ctrs: map[string]*container{}}
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

func imageID(image string) string {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(normalize(image)) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return fmt.Sprintf("sha256:%016x", h)
}

// EnsureImage implements kubelet.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, image, policy string) (string, bool, error) {
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
	r.seq++
	r.creates++
	id := fmt.Sprintf("%016x", r.seq)
	now := r.now()
	runFor, code, ignore := parse(append(slices.Clone(cfg.Command), cfg.Args...))
	c := &container{
		c: kubelet.Container{
			ID: id, PodUID: cfg.PodUID, PodName: cfg.PodName, Namespace: cfg.Namespace, Name: cfg.Name, Attempt: cfg.Attempt,
			Image: cfg.Image, ImageID: imgID, State: kubelet.StateRunning, CreatedAt: created, StartedAt: now,
		},
		runFor: runFor, code: code, ignore: ignore, grew: make(chan struct{}),
	}
	argv := append(slices.Clone(cfg.Command), cfg.Args...)
	c.print(now, fmt.Sprintf("sim: container %s started (image %s, attempt %d): %s", cfg.Name, cfg.Image, cfg.Attempt, strings.Join(argv, " ")))
	for _, line := range echoes(argv) {
		c.print(now, line)
	}
	r.ctrs[id] = c
	r.ids = nil
	r.settle(c, now)
	return id, nil
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
			if d, err := time.ParseDuration(arg); err == nil {
				runFor = d
			} else if f, err := strconv.ParseFloat(arg, 64); err == nil {
				runFor = time.Duration(f * float64(time.Second))
			}
		}
	}
	if exits && runFor < 0 {
		runFor = 0
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
			out = append(out, strings.NewReplacer(`"`, "", "'", "").Replace(text))
			break
		}
	}
	return out
}

// Write adds lines to a container's output, as if it printed them (tests).
func (r *Runtime) Write(id string, lines ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("write to container %s: %w", id, kubelet.ErrNotFound)
	}
	now := r.now()
	for _, l := range lines {
		c.print(now, l)
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
	return nil
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
