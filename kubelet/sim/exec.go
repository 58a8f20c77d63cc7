package sim

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/kubelet"
)

// Simulated containers run no processes, yet exec is what users and tests reach for
// first (`skiffctl exec`, `cp`): rather than refuse it, the simulation interprets a few
// commands, alone or as a `sh -c` script of commands separated by ";", "&&" or newlines:
//
//   - echo TEXT: prints TEXT
//   - cat: copies its input to its output until the input ends
//   - true, false, exit N: exit codes (0, 1, N; exit stops the script)
//   - hostname: prints the pod's name
//   - stty size: prints the terminal's "ROWS COLUMNS" (with a terminal; else fails)
//
// Anything else is refused before anything runs, naming what the simulation knows: a
// test or a user learns at once that a command needs a real runtime.

// simulated are the commands exec interprets.
var simulated = []string{"echo", "cat", "true", "false", "exit", "hostname", "stty size"}

// Exec implements kubelet.Runtime: see above.
func (r *Runtime) Exec(ctx context.Context, id string, opts kubelet.ExecOptions) (int, error) {
	r.mu.Lock()
	c, ok := r.ctrs[id]
	var pod string
	running := false
	if ok {
		r.settle(c, r.now())
		pod, running = c.c.PodName, c.c.State == kubelet.StateRunning
	}
	r.mu.Unlock()
	switch {
	case !ok:
		return 0, fmt.Errorf("exec in container %s: %w", id, kubelet.ErrNotFound)
	case !running:
		return 0, fmt.Errorf("exec in container %s: %w", id, kubelet.ErrNotRunning)
	}
	script, err := parseScript(opts.Command)
	if err != nil {
		return 0, fmt.Errorf("exec in simulated container %s: %w", id, err)
	}
	if opts.Started != nil {
		opts.Started()
	}
	// The terminal's size follows every resize, as a real terminal's would: one
	// goroutine owns it, so a size asked for after a resize was handed over is that one.
	current := make(chan kubelet.TerminalSize)
	done := make(chan struct{})
	resizing := make(chan struct{})
	go func() {
		defer close(resizing)
		size := opts.Size
		for {
			select {
			case size = <-opts.Resize:
			case current <- size:
			case <-done:
				return
			}
		}
	}()
	defer func() { close(done); <-resizing }()
	stderr := opts.Stderr
	if opts.TTY || stderr == nil {
		stderr = opts.Stdout
	}
	code := 0
	for _, words := range script {
		switch words[0] {
		case "echo":
			_, err = fmt.Fprintln(opts.Stdout, strings.Join(words[1:], " "))
			code = 0
		case "cat":
			if opts.Stdin != nil {
				_, err = io.Copy(opts.Stdout, opts.Stdin)
			}
			code = 0
		case "true":
			code = 0
		case "false":
			code = 1
		case "exit":
			code = 0
			if len(words) > 1 {
				code, _ = strconv.Atoi(words[1])
			}
			return code, nil
		case "hostname":
			_, err = fmt.Fprintln(opts.Stdout, pod)
			code = 0
		case "stty":
			if !opts.TTY {
				_, err = fmt.Fprintln(stderr, "stty: standard input: Not a tty")
				code = 1
				break
			}
			sz := <-current
			_, err = fmt.Fprintf(opts.Stdout, "%d %d\n", sz.Height, sz.Width)
			code = 0
		}
		if err != nil {
			return 0, fmt.Errorf("exec in simulated container %s: %w", id, err)
		}
	}
	return code, nil
}

// parseScript splits a command line (or a `sh -c` script) into simulated commands, as
// the containers' own scripts are read (commands, unshell), or refuses it.
func parseScript(argv []string) ([][]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command given")
	}
	var script [][]string
	for _, cmd := range commands(strings.Join(argv, " ")) {
		words := unshell(strings.Fields(cmd))
		if len(words) == 0 {
			continue
		}
		known := slices.Contains(simulated, words[0]) && words[0] != "stty" ||
			words[0] == "stty" && len(words) == 2 && words[1] == "size"
		if !known {
			return nil, fmt.Errorf("%q is not simulated: the simulated runtime runs no processes, and exec interprets only %s",
				strings.Join(words, " "), strings.Join(simulated, ", "))
		}
		script = append(script, words)
	}
	if len(script) == 0 {
		return nil, fmt.Errorf("no command given")
	}
	return script, nil
}

// PodDialer implements kubelet.Runtime. Simulated pods share the host's network, as
// real ones do until pods get their own: a forwarded port reaches whatever listens on
// the kubelet's machine at that port (nothing, usually: the connection is refused).
func (r *Runtime) PodDialer(ctx context.Context, id string) (kubelet.Dialer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("port-forward to container %s: %w", id, kubelet.ErrNotFound)
	}
	r.settle(c, r.now())
	if c.c.State != kubelet.StateRunning {
		return nil, fmt.Errorf("port-forward to container %s: %w", id, kubelet.ErrNotRunning)
	}
	return kubelet.HostDialer, nil
}

// Attach implements kubelet.Runtime. A simulated container has no input (its output is
// its script's): attaching input is refused; without, Attach waits for ctx.
func (r *Runtime) Attach(ctx context.Context, id string, opts kubelet.AttachOptions) error {
	r.mu.Lock()
	c, ok := r.ctrs[id]
	running := false
	if ok {
		r.settle(c, r.now())
		running = c.c.State == kubelet.StateRunning
	}
	r.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("attach to container %s: %w", id, kubelet.ErrNotFound)
	case !running:
		return fmt.Errorf("attach to container %s: %w", id, kubelet.ErrNotRunning)
	case opts.Stdin != nil:
		return fmt.Errorf("attach to simulated container %s: %w", id, kubelet.ErrNoInput)
	}
	for {
		select {
		case <-opts.Resize:
		case <-ctx.Done():
			return nil
		}
	}
}
