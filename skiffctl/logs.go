package skiffctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
)

func logsCmd(g *globals) *cobra.Command {
	var opts client.LogOptions
	var tail int64
	var selector string
	var prefix, allContainers bool
	var maxRequests int
	var since time.Duration
	var sinceTime string
	var limitBytes int64
	cmd := &cobra.Command{
		Use:   "logs (POD | KIND/NAME | -l SELECTOR) [-c CONTAINER] [-f] [-p] [--tail N] [--timestamps] [--since D | --since-time T]",
		Short: "Print a container's output",
		Long: `Print the output of a container in a pod, read through the API server from the kubelet
of the pod's node. -c names the container; it may be left out when the pod has one.
KIND/NAME of a workload (deployment/web, replicaset/web-5d4f8) reads one of its pods,
the one kubectl would pick (scheduled, running, ready first). -l reads every pod that
matches, each's last 10 lines unless --tail says otherwise. With -f, keep printing what
the container writes until it exits or you interrupt (--request-timeout does not apply
then). -p reads the container's previous run, before its last restart.
--timestamps begins each line with the time the node's runtime read it (RFC 3339 with
nanoseconds), --since and --since-time keep only what was written after a time, and
--limit-bytes stops after that much output.`,
		Example: `  skiffctl logs web-7d4b9c-x2x9k
  skiffctl logs deploy/web -c sidecar -f --tail 20
  skiffctl logs -l app=web --prefix
  skiffctl logs web-7d4b9c-x2x9k --previous
  skiffctl logs web-7d4b9c-x2x9k --timestamps --since 1h`,
		Args: func(cmd *cobra.Command, args []string) error {
			if selector != "" && len(args) > 0 {
				return fmt.Errorf("only a selector (-l) or a POD name may be given, not both")
			}
			if selector == "" && len(args) != 1 {
				return fmt.Errorf("expected POD (one pod name) or -l SELECTOR, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := logFilters(cmd, &opts, since, sinceTime, limitBytes, tail); err != nil {
				return err
			}
			if cmd.Flags().Changed("tail") || selector != "" {
				if !cmd.Flags().Changed("tail") {
					tail = 10 // kubectl's default for a selector
				}
				if tail >= 0 {
					opts.TailLines = &tail
				}
			}
			timeout := g.timeout
			if opts.Follow {
				timeout = noTimeout
			}
			conn, ctx, cancel, err := g.connect(cmd, timeout)
			if err != nil {
				return err
			}
			defer cancel()
			// The pod's spec is read only when its containers must be known: a user
			// allowed its logs (pods/log) need not be allowed the pod.
			needSpec := allContainers || (prefix && opts.Container == "")
			pods, err := g.logPods(ctx, conn, args, selector, needSpec)
			if opts.Follow && cmd.Context().Err() != nil {
				return nil // interrupted: the way to stop following
			}
			if err != nil || len(pods) == 0 {
				return err
			}
			if opts.Follow && len(pods) > maxRequests {
				return fmt.Errorf("you are attempting to follow %d log streams, but maximum allowed concurrency is %d, use --max-log-requests to increase the limit", len(pods), maxRequests)
			}
			var streams []logStream
			for _, p := range pods {
				containers := []string{opts.Container}
				if allContainers {
					containers = nil
					for _, c := range p.Spec.Containers {
						containers = append(containers, c.Name)
					}
				}
				for _, c := range containers {
					o := opts
					o.Container = c
					streams = append(streams, logStream{pod: p, opts: o})
				}
			}
			err = g.copyLogs(ctx, conn, streams, prefix)
			if opts.Follow && cmd.Context().Err() != nil {
				return nil // interrupted: the way to stop following
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Container, "container", "c", "", "the container (default: the pod's only one)")
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming until the container exits")
	f.BoolVarP(&opts.Previous, "previous", "p", false, "the container's previous run, before its last restart")
	f.Int64Var(&tail, "tail", -1, "lines of recent output to show (-1: all; 10 with a selector)")
	f.StringVarP(&selector, "selector", "l", "", "the pods matching this label selector")
	f.BoolVar(&prefix, "prefix", false, "begin each line with its source, [pod/NAME/CONTAINER]")
	f.BoolVar(&allContainers, "all-containers", false, "every container of the pods")
	f.BoolVar(&opts.Timestamps, "timestamps", false, "begin each line with the time it was written (RFC 3339)")
	f.DurationVar(&since, "since", 0, "only output newer than a relative duration like 5s, 2m, or 3h (default: all); only one of --since-time / --since")
	f.StringVar(&sinceTime, "since-time", "", "only output written at or after a date (RFC 3339) (default: all); only one of --since-time / --since")
	f.Int64Var(&limitBytes, "limit-bytes", 0, "maximum bytes of output to print (default: no limit)")
	f.IntVar(&maxRequests, "max-log-requests", 5, "how many streams -f follows at most with a selector")
	return cmd
}

// logFilters checks and sets --since, --since-time and --limit-bytes as kubectl does.
func logFilters(cmd *cobra.Command, opts *client.LogOptions, since time.Duration, sinceTime string, limitBytes, tail int64) error {
	flags := cmd.Flags()
	if sinceTime != "" && since != 0 {
		return fmt.Errorf("at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if since < 0 {
		return fmt.Errorf("--since must be greater than 0")
	}
	if flags.Changed("limit-bytes") && limitBytes < 1 {
		return fmt.Errorf("--limit-bytes must be greater than 0")
	}
	if tail < -1 {
		return fmt.Errorf("--tail must be greater than or equal to -1")
	}
	if since != 0 {
		// kubectl's rounding: whole seconds, at least one; 0 is all.
		sec := max(int64(since.Round(time.Second).Seconds()), 1)
		opts.SinceSeconds = &sec
	}
	if sinceTime != "" {
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return fmt.Errorf("--since-time %q: want an RFC 3339 time such as 2024-01-02T15:04:05Z: %w", sinceTime, err)
		}
		opts.SinceTime = &t
	}
	if flags.Changed("limit-bytes") {
		opts.LimitBytes = &limitBytes
	}
	return nil
}

// logStream is one container's output to copy.
type logStream struct {
	pod  *corev1.Pod
	opts client.LogOptions
}

// copyLogs copies the streams' output: one after the other, or, following several, side
// by side line by line.
func (g *globals) copyLogs(ctx context.Context, conn *client.Conn, streams []logStream, prefix bool) error {
	pod := kinds.MustLookup(kinds.Pod)
	out := &lineWriter{w: g.streams.Out}
	one := func(s logStream) error {
		w := io.Writer(g.streams.Out)
		if prefix || len(streams) > 1 && s.opts.Follow {
			p := ""
			if prefix {
				c := s.opts.Container
				if c == "" && len(s.pod.Spec.Containers) == 1 {
					c = s.pod.Spec.Containers[0].Name
				}
				p = fmt.Sprintf("[pod/%s/%s] ", s.pod.Name, c)
			}
			lw := out.source(p)
			defer lw.flush()
			w = lw
		}
		return notFound(pod, s.pod.Name, conn.Logs(ctx, s.pod.Namespace, s.pod.Name, s.opts, w))
	}
	if len(streams) == 1 || !streams[0].opts.Follow {
		var errs []error
		for _, s := range streams {
			errs = append(errs, one(s))
		}
		return errors.Join(errs...)
	}
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = one(s) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lineWriter interleaves several sources' output whole lines at a time, each line
// prefixed with its source's prefix.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) source(prefix string) *sourceWriter { return &sourceWriter{l: l, prefix: prefix} }

type sourceWriter struct {
	l       *lineWriter
	prefix  string
	pending []byte
}

func (s *sourceWriter) Write(p []byte) (int, error) {
	s.pending = append(s.pending, p...)
	i := bytes.LastIndexByte(s.pending, '\n')
	if i < 0 {
		return len(p), nil
	}
	err := s.emit(s.pending[:i+1])
	s.pending = append(s.pending[:0], s.pending[i+1:]...)
	return len(p), err
}

func (s *sourceWriter) emit(b []byte) error {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) > 0 {
			out.WriteString(s.prefix)
			out.Write(line)
		}
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	_, err := s.l.w.Write(out.Bytes())
	return err
}

func (s *sourceWriter) flush() {
	if len(s.pending) > 0 {
		s.emit(append(s.pending, '\n'))
		s.pending = nil
	}
}

// logPods are the pods logs reads: POD, pod/POD, one pod of a workload (KIND/NAME), or
// every pod -l matches.
func (g *globals) logPods(ctx context.Context, conn *client.Conn, args []string, selector string, needSpec bool) ([]*corev1.Pod, error) {
	pods := client.For[*corev1.Pod](conn)
	podInfo := kinds.MustLookup(kinds.Pod)
	if selector != "" {
		l, err := pods.List(ctx, g.ns(), client.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		if len(l.Items) == 0 {
			fmt.Fprintf(g.streams.Err, "No resources found in %s namespace.\n", g.ns())
		}
		return l.Items, nil
	}
	name := args[0]
	k, n, ok := strings.Cut(name, "/")
	if !ok {
		k, n = "pod", name
	}
	info, found := kinds.Lookup(k)
	if !found {
		return nil, fmt.Errorf("logs: %q: the server doesn't have a resource type %q", name, k)
	}
	if info.Kind == kinds.Pod && !needSpec {
		return []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: g.ns()}}}, nil
	}
	if info.Kind == kinds.Pod {
		p, err := pods.Get(ctx, g.ns(), n)
		if err != nil {
			return nil, notFound(podInfo, n, err)
		}
		return []*corev1.Pod{p}, nil
	}
	owner, err := client.ForKind(conn, info).Get(ctx, g.namespaceOf(info), n)
	if err != nil {
		return nil, notFound(info, n, err)
	}
	sel, err := podSelector(owner)
	if err != nil {
		return nil, fmt.Errorf("logs: %s: %w", ref(info, n), err)
	}
	l, err := pods.List(ctx, g.ns(), client.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	if len(l.Items) == 0 {
		return nil, fmt.Errorf("%s has no pods (selector %s)", ref(info, n), sel)
	}
	sort.SliceStable(l.Items, func(i, j int) bool { return betterForLogs(l.Items[i], l.Items[j]) })
	if len(l.Items) > 1 {
		fmt.Fprintf(g.streams.Err, "Found %d pods, using pod/%s\n", len(l.Items), l.Items[0].Name)
	}
	return l.Items[:1], nil
}

// podSelector is the label selector of a workload's pods (spec.selector).
func podSelector(obj kinds.Object) (string, error) {
	tree, err := manifest.Tree(obj)
	if err != nil {
		return "", err
	}
	spec, _ := tree["spec"].(map[string]any)
	raw, ok := spec["selector"]
	if !ok {
		return "", fmt.Errorf("only pods and workloads with a pod selector have logs")
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return "", err
	}
	var ls metav1.LabelSelector
	if err := json.Unmarshal(js, &ls); err != nil {
		return "", fmt.Errorf("spec.selector: %w", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return "", err
	}
	return sel.String(), nil
}

// betterForLogs orders a workload's pods the way kubectl picks the one to read
// (podutils.ByLogging): scheduled first, then running, unknown, pending; ready first;
// more restarts first; older first.
func betterForLogs(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName != ""
	}
	phase := map[corev1.PodPhase]int{corev1.PodRunning: 0, corev1.PodUnknown: 1, corev1.PodPending: 2}
	pa, oka := phase[a.Status.Phase]
	pb, okb := phase[b.Status.Phase]
	if !oka {
		pa = 3
	}
	if !okb {
		pb = 3
	}
	if pa != pb {
		return pa < pb
	}
	if ra, rb := podReady(a), podReady(b); ra != rb {
		return ra
	}
	if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
		return ra > rb
	}
	return a.CreationTimestamp.Before(&b.CreationTimestamp)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func maxRestarts(p *corev1.Pod) int32 {
	n := int32(0)
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}
