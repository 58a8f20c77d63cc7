package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/connlimit"
	"github.com/skiffhq/skiff/kubelet/crilog"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
)

// DefaultLogPort is the port a kubelet's log server listens on unless told otherwise
// (Kubernetes' kubelet port).
const DefaultLogPort = 10250

// maxChunk bounds one streamed chunk of output.
const maxChunk = 32 << 10

// LogServer is the kubelet's own API, which the API server calls: the KubeletLogs gRPC
// service, to read containers' output (skiffctl logs), and KubeletStreams, for exec,
// attach and port-forward (streams.go). One server serves every
// kubelet registered with it: a process running several simulated nodes listens once.
// It authorizes nobody itself: in a TLS cluster its listener accepts only the API
// servers' certificate (pki.Reloader.KubeletServerTLS), which authorize the user.
type LogServer struct {
	kubeletv1.UnimplementedKubeletLogsServer
	log hclog.Logger

	mu    sync.RWMutex
	nodes map[string]Runtime
}

// NewLogServer makes a server with no node registered. log may be nil.
func NewLogServer(log hclog.Logger) *LogServer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &LogServer{log: log.Named("logs"), nodes: map[string]Runtime{}}
}

// Register serves the containers rt runs as node's.
func (s *LogServer) Register(node string, rt Runtime) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[node] = rt
}

func (s *LogServer) runtime(node string) (Runtime, []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rt, ok := s.nodes[node]
	if ok {
		return rt, nil
	}
	var names []string
	for n := range s.nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, names
}

// containers are the runtime of node and the containers it runs, or a gRPC error.
func (s *LogServer) containers(ctx context.Context, node string) (Runtime, []Container, error) {
	rt, served := s.runtime(node)
	if rt == nil {
		return nil, nil, status.Errorf(codes.NotFound, "node %q is not served by this kubelet (it serves %s)", node, strings.Join(served, ", "))
	}
	ctrs, err := rt.List(ctx)
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "node %s: %v", node, err)
	}
	return rt, ctrs, nil
}

// Serve serves on ln (over TLS when tlsCfg is set) until ctx ends; then open streams
// are cut. It closes ln.
func (s *LogServer) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// The API server pings idle follows to notice a kubelet gone (KubeletKeepalive).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second}),
	}
	// Only API servers call: a connection that has not finished its handshake (which
	// verifies the caller) within 10 s is closed, and such connections are capped.
	guard := connlimit.New("kubelet", connlimit.DefaultLimits(), s.log)
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts = append(opts, grpc.Creds(guard.Credentials(creds, true)), grpc.ConnectionTimeout(10*time.Second))
	ln = guard.Listener(ln)
	g := grpc.NewServer(opts...)
	kubeletv1.RegisterKubeletLogsServer(g, s)
	kubeletv1.RegisterKubeletStreamsServer(g, streamServer{s: s})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		g.Stop() // following streams end only with their callers: do not wait for them
	}()
	s.log.Info("serving container logs and streams", "address", ln.Addr().String(), "tls", tlsCfg != nil)
	err := g.Serve(ln)
	<-done
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve kubelet logs on %s: %w", ln.Addr(), err)
	}
	return nil
}

// ContainerLogs implements kubeletv1.KubeletLogsServer.
func (s *LogServer) ContainerLogs(req *kubeletv1.ContainerLogsRequest, stream kubeletv1.KubeletLogs_ContainerLogsServer) error {
	ctx := stream.Context()
	rt, ctrs, err := s.containers(ctx, req.GetNodeName())
	if err != nil {
		return err
	}
	c, ok := pickContainer(ctrs, containerRef{req.GetNamespace(), req.GetPod(), req.GetPodUid(), req.GetContainer()}, req.GetPrevious())
	switch {
	case !ok && req.GetPrevious():
		return status.Errorf(codes.FailedPrecondition, "previous terminated container %q in pod %q not found", req.GetContainer(), req.GetPod())
	case !ok:
		return status.Errorf(codes.FailedPrecondition, "container %q in pod %s/%s has not started on node %s",
			req.GetContainer(), req.GetNamespace(), req.GetPod(), req.GetNodeName())
	}
	send := chunkWriter(func(b []byte) error { return stream.Send(&kubeletv1.LogChunk{Data: b}) })
	err = s.copyLogs(ctx, rt, c.ID, send, nil, req)
	switch {
	case err == nil, errors.Is(err, crilog.ErrLimit):
		return nil
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrNotFound):
		return status.Errorf(codes.NotFound, "container %q in pod %s/%s on node %s: %v",
			req.GetContainer(), req.GetNamespace(), req.GetPod(), req.GetNodeName(), err)
	default:
		if _, ok := status.FromError(err); ok {
			return err // the stream's own failure
		}
		return status.Errorf(codes.Internal, "container %q in pod %s/%s on node %s: %v",
			req.GetContainer(), req.GetNamespace(), req.GetPod(), req.GetNodeName(), err)
	}
}

// copyLogs copies the container's output to stdout, read from its log (the CRI log
// format, see logformat.go), and what it wrote on stderr to stderr (nil: to stdout too):
// all of it, or from the last TailLines lines of what was written so far. The log only
// grows, so following after a tail reads everything again and skips what the tail
// already covered. Once LimitBytes are copied it returns crilog.ErrLimit.
func (s *LogServer) copyLogs(ctx context.Context, rt Runtime, id string, stdout, stderr io.Writer, req *kubeletv1.ContainerLogsRequest) error {
	opts, err := logOptions(req, time.Now())
	if err != nil {
		return err
	}
	dec := crilog.NewDecoder(crilog.NewStreamPrinter(stdout, stderr, opts))
	if req.TailLines == nil {
		return rt.Logs(ctx, id, dec, req.GetFollow())
	}
	var sofar bytes.Buffer
	if err := rt.Logs(ctx, id, &sofar, false); err != nil {
		return err
	}
	// Whole records only: a record being written when the log was read comes again.
	records := sofar.Bytes()[:bytes.LastIndexByte(sofar.Bytes(), '\n')+1]
	if _, err := dec.Write(records[crilog.TailStart(records, req.GetTailLines()):]); err != nil {
		return err
	}
	if !req.GetFollow() {
		return nil
	}
	return rt.Logs(ctx, id, &skipWriter{w: dec, skip: len(records)}, true)
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	w    io.Writer
	skip int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	if s.skip >= len(p) {
		s.skip -= len(p)
		return len(p), nil
	}
	n, err := s.w.Write(p[s.skip:])
	n += s.skip
	s.skip = 0
	return n, err
}

// containerRef names a container of a pod; an empty PodUID matches any pod of that
// name, an empty Container any container of the pod.
type containerRef struct {
	Namespace, Pod, PodUID, Container string
}

// pickContainer finds the container ref means: the latest attempt (a restarted
// container's current run, as kubectl logs shows it), or with previous the one before
// it, which the kubelet keeps (kubectl logs --previous).
func pickContainer(ctrs []Container, ref containerRef, previous bool) (Container, bool) {
	var runs []Container
	for _, c := range ctrs {
		if c.Namespace != ref.Namespace || c.PodName != ref.Pod || (ref.Container != "" && c.Name != ref.Container) {
			continue
		}
		if ref.PodUID != "" && c.PodUID != ref.PodUID {
			continue
		}
		runs = append(runs, c)
	}
	// Newest first.
	slices.SortFunc(runs, func(a, b Container) int {
		if a.Attempt != b.Attempt {
			return b.Attempt - a.Attempt
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	i := 0
	if previous {
		i = 1
	}
	if i >= len(runs) {
		return Container{}, false
	}
	return runs[i], true
}

// chunkWriter sends what is written in chunks of at most maxChunk bytes, each with one
// call. A gRPC Send marshals before it returns, so the chunk may be reused afterwards.
type chunkWriter func(chunk []byte) error

func (w chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxChunk)
		if err := w(p[:k]); err != nil {
			return n, err
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}
