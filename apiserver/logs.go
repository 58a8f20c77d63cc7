package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
	"github.com/skiffhq/skiff/store"
)

// pods serves the Pods service: a container's output (Kubernetes' pods/log
// subresource), exec, attach and port-forward (streams.go), each proxied to the kubelet
// of the pod's node. The user is authorized here, as for "get pods/log" or "create
// pods/exec"; the kubelet trusts the API server's certificate.
type pods struct {
	apiv1.UnimplementedPodsServer
	resources *resources
	// kubeletTLS secures the call to node's kubelet; nil dials in plaintext, which only
	// an insecure server (secure false) does.
	kubeletTLS func(node string) *tls.Config
	secure     bool
}

// kubeletConn is a connection to the kubelet of a pod's node.
type kubeletConn struct {
	*grpc.ClientConn
	node, addr string
}

// dialKubelet reads pod namespace/name (applying the request's guard) and connects to
// the kubelet of its node; what ends the message when the pod has no node ("it has no
// logs"). The caller closes the connection.
func (p *pods) dialKubelet(ctx context.Context, namespace, name, what string) (*corev1.Pod, *kubeletConn, error) {
	podInfo, nodeInfo := kinds.MustLookup(kinds.Pod), kinds.MustLookup(kinds.Node)
	if name == "" {
		return nil, nil, badRequest("name is required")
	}
	obj, _, err := p.resources.get(ctx, podInfo, store.Key{Kind: podInfo.Kind, Namespace: namespace, Name: name}, store.ReadOptions{})
	if err != nil {
		return nil, nil, err
	}
	if err := guard(ctx, obj); err != nil {
		return nil, nil, err
	}
	pod := obj.(*corev1.Pod)
	nodeName := pod.Spec.NodeName
	if nodeName == "" {
		return nil, nil, statusError(codes.FailedPrecondition, ReasonBadRequest, nil, "pod %q is not scheduled to a node yet: %s", name, what)
	}
	nobj, _, err := p.resources.get(ctx, nodeInfo, store.Key{Kind: nodeInfo.Kind, Name: nodeName}, store.ReadOptions{Stale: true})
	if status.Code(err) == codes.NotFound {
		return nil, nil, statusError(codes.FailedPrecondition, ReasonBadRequest, nil, "pod %q is bound to node %q, which does not exist", name, nodeName)
	}
	if err != nil {
		return nil, nil, err
	}
	addr, err := kubeletAddress(nobj.(*corev1.Node))
	if err != nil {
		return nil, nil, err
	}
	var creds credentials.TransportCredentials
	switch {
	case p.kubeletTLS != nil:
		creds = credentials.NewTLS(p.kubeletTLS(nodeName))
	case p.secure:
		return nil, nil, statusError(codes.FailedPrecondition, ReasonBadRequest, nil,
			"this API server has no certificate to present to kubelets (it needs --tls-cert-file with client usage and --client-ca-file): cannot reach the kubelet of node %s", nodeName)
	default:
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		// A follow or a shell may be idle for long: pings notice a kubelet gone without a word.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}))
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "kubelet of node %s at %s: %v", nodeName, addr, err)
	}
	return pod, &kubeletConn{ClientConn: cc, node: nodeName, addr: addr}, nil
}

// kubeletError is what the caller sees of a kubelet's error (or of ctx's end).
func (k *kubeletConn) kubeletError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		// Without Skiff's ErrorInfo: clients must not take it for a refusal of this
		// server, retried elsewhere; every server would fail the same.
		return status.Errorf(codes.Unavailable, "kubelet of node %s at %s is unreachable: %s", k.node, k.addr, st.Message())
	case codes.FailedPrecondition:
		return statusError(codes.FailedPrecondition, ReasonBadRequest, nil, "%s", st.Message())
	case codes.NotFound:
		// The kubelet lost the output or does not serve the node: NotFound is kept for
		// the pod itself.
		return statusError(codes.FailedPrecondition, ReasonBadRequest, nil, "kubelet of node %s at %s: %s", k.node, k.addr, st.Message())
	}
	return status.Errorf(st.Code(), "kubelet of node %s at %s: %s", k.node, k.addr, st.Message())
}

// Logs implements apiv1.PodsServer.
func (p *pods) Logs(req *apiv1.PodLogsRequest, stream apiv1.Pods_LogsServer) error {
	return p.logs(stream.Context(), req, func(data []byte) error { return stream.Send(&apiv1.PodLogsChunk{Data: data}) })
}

// logs sends a container's output, chunk by chunk, to send.
func (p *pods) logs(ctx context.Context, req *apiv1.PodLogsRequest, send func([]byte) error) error {
	ns := namespaceFor(kinds.MustLookup(kinds.Pod), req.GetNamespace())
	if err := validateLogOptions(req); err != nil {
		return err
	}
	pod, kc, err := p.dialKubelet(ctx, ns, req.GetName(), "it has no logs")
	if err != nil {
		return err
	}
	defer kc.Close()
	container, err := podContainer(pod, req.GetContainer())
	if err != nil {
		return err
	}
	ks, err := kubeletv1.NewKubeletLogsClient(kc).ContainerLogs(ctx, &kubeletv1.ContainerLogsRequest{
		NodeName: kc.node, Namespace: ns, Pod: req.GetName(), PodUid: string(pod.UID),
		Container: container, Follow: req.GetFollow(), TailLines: req.TailLines, Previous: req.GetPrevious(),
		Timestamps: req.GetTimestamps(), SinceSeconds: req.SinceSeconds, SinceTime: req.GetSinceTime(), LimitBytes: req.LimitBytes,
	})
	for err == nil {
		var chunk *kubeletv1.LogChunk
		if chunk, err = ks.Recv(); err == nil {
			err = send(chunk.GetData())
			if err != nil {
				return err // the client went away
			}
		}
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return kc.kubeletError(ctx, err)
}

// validateLogOptions checks a logs request as Kubernetes validates PodLogOptions, in
// its words.
func validateLogOptions(req *apiv1.PodLogsRequest) error {
	var errs []string
	if req.TailLines != nil && req.GetTailLines() < 0 {
		errs = append(errs, fmt.Sprintf("tailLines: Invalid value: %d: must be greater than or equal to 0", req.GetTailLines()))
	}
	if req.LimitBytes != nil && req.GetLimitBytes() < 1 {
		errs = append(errs, fmt.Sprintf("limitBytes: Invalid value: %d: must be greater than 0", req.GetLimitBytes()))
	}
	switch {
	case req.SinceSeconds != nil && req.SinceTime != nil:
		errs = append(errs, "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
	case req.SinceSeconds != nil && req.GetSinceSeconds() < 1:
		errs = append(errs, fmt.Sprintf("sinceSeconds: Invalid value: %d: must be greater than 0", req.GetSinceSeconds()))
	case req.SinceTime != nil && req.GetSinceTime().CheckValid() != nil:
		errs = append(errs, fmt.Sprintf("sinceTime: Invalid value: %v", req.GetSinceTime().CheckValid()))
	}
	if len(errs) == 0 {
		return nil
	}
	return statusError(codes.InvalidArgument, ReasonInvalid, nil, "PodLogOptions %q is invalid: %s", req.GetName(), strings.Join(errs, ", "))
}

// podContainer is the container a request means: the one named, an init container (a
// sidecar's logs, a finished init container's), an app container or an ephemeral one
// (kubectl debug's), or the pod's only app container. The names are listed init
// containers first, ephemeral ones last, as Kubernetes lists them.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			names = append(names, c.Name)
			if c.Name == name {
				return name, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
		if c.Name == name {
			return name, nil
		}
	}
	podName := pod.Name
	switch {
	case name != "":
		return "", badRequest("container %s is not valid for pod %s: choose one of: [%s]", name, podName, strings.Join(names, " "))
	case len(pod.Spec.Containers) == 1:
		return pod.Spec.Containers[0].Name, nil
	}
	return "", badRequest("a container name must be specified for pod %s, choose one of: [%s]", podName, strings.Join(names, " "))
}

// kubeletAddress is where a node's kubelet serves logs: its InternalIP (else another
// address) and the port it publishes in daemonEndpoints.kubeletEndpoint.
func kubeletAddress(node *corev1.Node) (string, error) {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return "", statusError(codes.FailedPrecondition, ReasonBadRequest, nil,
			"node %s publishes no kubelet endpoint (status.daemonEndpoints.kubeletEndpoint.Port): its kubelet serves no logs", node.Name)
	}
	host := ""
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == typ && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return "", statusError(codes.FailedPrecondition, ReasonBadRequest, nil, "node %s has no address in status.addresses to reach its kubelet at", node.Name)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}
