package skiffctl

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// streamFlags are exec's and attach's flags, kubectl's.
type streamFlags struct {
	container  string
	stdin, tty bool
	quiet      bool
}

func (f *streamFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVarP(&f.container, "container", "c", "", "the container (default: the pod's kubectl.kubernetes.io/default-container annotation, else its first)")
	cmd.Flags().BoolVarP(&f.stdin, "stdin", "i", false, "pass stdin to the "+what)
	cmd.Flags().BoolVarP(&f.tty, "tty", "t", false, "stdin is a TTY (with -i: the local terminal is put in raw mode and its resizes forwarded)")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "only print output from the remote session")
}

// DefaultContainerAnnotation names the container exec, attach, cp and logs use when
// none is given (Kubernetes').
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// podArg is the pod a POD argument names: NAME or pod/NAME.
func podArg(verb, arg string) (string, error) {
	if k, n, ok := strings.Cut(arg, "/"); ok {
		if info, found := kinds.Lookup(k); !found || info.Kind != kinds.Pod {
			return "", fmt.Errorf("%s: %q: only pods can be named (POD or pod/POD)", verb, arg)
		}
		arg = n
	}
	if arg == "" {
		return "", fmt.Errorf("%s: a pod name is required", verb)
	}
	return arg, nil
}

// streamPod reads the pod a stream goes to, as kubectl does before it opens one: it
// must not have completed, and the container is the one named or the default, said
// on stderr unless quiet.
func (g *globals) streamPod(cmd *cobra.Command, verb, name string, f *streamFlags) (*corev1.Pod, *corev1.Container, error) {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	pod, err := client.For[*corev1.Pod](conn).Get(ctx, g.ns(), name)
	if err != nil {
		return nil, nil, notFound(kinds.MustLookup(kinds.Pod), name, err)
	}
	if p := pod.Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
		return nil, nil, fmt.Errorf("cannot %s a container in a completed pod; current phase is %s", verb, p)
	}
	c, err := g.podContainer(pod, f.container, f.quiet)
	return pod, c, err
}

// podContainer is the container named, or the pod's default one.
func (g *globals) podContainer(pod *corev1.Pod, name string, quiet bool) (*corev1.Container, error) {
	var names []string
	for i := range pod.Spec.Containers {
		names = append(names, pod.Spec.Containers[i].Name)
	}
	if name == "" {
		name = pod.Annotations[DefaultContainerAnnotation]
		if name == "" && len(names) > 0 {
			name = names[0]
			if len(names) > 1 && !quiet {
				fmt.Fprintf(g.streams.Err, "Defaulted container %q out of: %s\n", name, strings.Join(names, ", "))
			}
		}
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], nil // an app container, or a sidecar
			}
		}
	}
	return nil, fmt.Errorf("container %s not found in pod %s (it has: %s)", name, pod.Name, strings.Join(names, ", "))
}

// session is the local end of a remote session: the streams, and the terminal when it
// is one and a TTY was asked for.
type session struct {
	opts    client.ExecOptions
	restore func()
	stop    func()
}

// setupTTY is kubectl's SetupTTY: a TTY only with stdin, and only when stdin is a
// terminal (else it says so, unless quiet); then the terminal is raw until restore,
// and its resizes are sent until stop.
func (g *globals) setupTTY(f *streamFlags) (*session, error) {
	s := &session{opts: client.ExecOptions{Stdout: g.streams.Out, Stderr: g.streams.Err}, restore: func() {}, stop: func() {}}
	if !f.stdin {
		return s, nil
	}
	s.opts.Stdin = g.streams.In
	if !f.tty {
		return s, nil
	}
	in, ok := g.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		if !f.quiet {
			fmt.Fprintln(g.streams.Err, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		return s, nil
	}
	fd := int(in.Fd())
	sizeFd := fd
	if out, ok := g.streams.Out.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
		sizeFd = int(out.Fd())
	}
	size := func() (client.TerminalSize, bool) {
		w, h, err := term.GetSize(sizeFd)
		return client.TerminalSize{Width: uint16(w), Height: uint16(h)}, err == nil && w > 0 && h > 0
	}
	s.opts.TTY = true
	s.opts.Size, _ = size()
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	s.restore = func() { _ = term.Restore(fd, state) }
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	resize := make(chan client.TerminalSize)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-winch:
				if sz, ok := size(); ok {
					select {
					case resize <- sz:
					case <-done:
						return
					}
				}
			case <-done:
				return
			}
		}
	}()
	s.opts.Resize = resize
	s.stop = func() { signal.Stop(winch); close(done); <-stopped }
	return s, nil
}

func execCmd(g *globals) *cobra.Command {
	var f streamFlags
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a container",
		Long: `Run a command in a container of a pod, streamed through the API server to the kubelet of
the pod's node, as kubectl exec does. skiffctl exits with the command's exit code
("command terminated with exit code N" on stderr when it is not 0).

-i passes stdin to the command; -t with -i runs it in a terminal: the local terminal is
put in raw mode (keys go to the command as typed, Ctrl-C included) and its size follows
the local window's. The container is the one -c names, else the pod's
kubectl.kubernetes.io/default-container annotation, else its first.

Allowed to administrators only by default (create pods/exec): whoever may exec into a
pod may act as it.`,
		Example: `  skiffctl exec web-7d4b9c-x2x9k -- ls /
  skiffctl exec -it web-7d4b9c-x2x9k -c sidecar -- sh
  echo hello | skiffctl exec -i web-7d4b9c-x2x9k -- cat`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case len(args) == 0:
				return fmt.Errorf("expected 'exec POD -- COMMAND [ARG...]': POD is a required argument for the exec command")
			case dash < 0 && len(args) > 1:
				return fmt.Errorf("exec POD COMMAND is not supported anymore: use exec POD -- COMMAND instead")
			case dash > 1:
				return fmt.Errorf("expected one POD before --, got %q", strings.Join(args[:dash], " "))
			case len(args) < 2:
				return fmt.Errorf("you must specify at least one command for the container")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := podArg("exec", args[0])
			if err != nil {
				return err
			}
			_, c, err := g.streamPod(cmd, "exec into", name, &f)
			if err != nil {
				return err
			}
			return g.runSession(cmd, &f, func(ctx context.Context, conn *client.Conn, opts client.ExecOptions) error {
				opts.Container, opts.Command = c.Name, args[1:]
				return conn.Exec(ctx, g.ns(), name, opts)
			})
		},
	}
	f.register(cmd, "container")
	return cmd
}

func attachCmd(g *globals) *cobra.Command {
	var f streamFlags
	cmd := &cobra.Command{
		Use:   "attach POD [-c CONTAINER] [-i] [-t]",
		Short: "Attach to a running container",
		Long: `Show the output of a running container as it writes it, from now until it exits or you
interrupt, as kubectl attach does (streamed through the API server from the kubelet):
what it writes on stderr on yours, apart from its stdout, unless it has a terminal.

With -i, what you type goes to the container's input: one started with stdin (-i to
another is refused). The terminal is the container's: -t falls back to none for a
container that did not allocate one, and is implied for one that did, as kubectl does.
The end of your input detaches you; the container goes on, its input open for the next
attach, but for a container with stdinOnce and no terminal: its input is closed then,
and you see its output until it exits.

Allowed to administrators only by default (create pods/attach).`,
		Example: `  skiffctl attach web-7d4b9c-x2x9k
  skiffctl attach web-7d4b9c-x2x9k -c sidecar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("expected POD (one pod name), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := podArg("attach", args[0])
			if err != nil {
				return err
			}
			_, c, err := g.streamPod(cmd, "attach to", name, &f)
			if err != nil {
				return err
			}
			switch {
			case f.tty && !c.TTY:
				f.tty = false
				if !f.quiet {
					fmt.Fprintf(g.streams.Err, "error: Unable to use a TTY - container %s did not allocate one\n", c.Name)
				}
			case !f.tty && c.TTY:
				f.tty = true // its output is a terminal's: kubectl forces one too
			}
			return g.runSession(cmd, &f, func(ctx context.Context, conn *client.Conn, opts client.ExecOptions) error {
				opts.Container = c.Name
				err := conn.Attach(ctx, g.ns(), name, opts)
				if cmd.Context().Err() != nil {
					return nil // interrupted: the way to detach
				}
				return err
			})
		},
	}
	f.register(cmd, "container (one with stdin and tty)")
	return cmd
}

// runSession runs a remote session with the local streams (and terminal).
func (g *globals) runSession(cmd *cobra.Command, f *streamFlags, run func(context.Context, *client.Conn, client.ExecOptions) error) error {
	conn, ctx, cancel, err := g.connect(cmd, noTimeout)
	if err != nil {
		return err
	}
	defer cancel()
	s, err := g.setupTTY(f)
	if err != nil {
		return err
	}
	defer s.stop()
	defer s.restore()
	return run(ctx, conn, s.opts)
}
