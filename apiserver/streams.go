package apiserver

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
)

// Exec, Attach and PortForward relay a stream between the caller and the kubelet of
// the pod's node, message for message. The gate authorized the call on its first
// message (create pods/exec, pods/attach or pods/portforward).
//
// The goroutine relaying the caller's messages may be blocked in the stream's Recv
// when the handler returns: it ends then, with the stream (gRPC has no other way to
// interrupt a server stream's Recv).

// Exec implements apiv1.PodsServer.
func (p *pods) Exec(stream apiv1.Pods_ExecServer) error { return p.relayExec(stream, false) }

// Attach implements apiv1.PodsServer.
func (p *pods) Attach(stream apiv1.Pods_AttachServer) error { return p.relayExec(stream, true) }

func (p *pods) relayExec(stream grpc.BidiStreamingServer[apiv1.ExecRequest, apiv1.ExecResponse], attach bool) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return badRequest("the first message must be start")
	}
	// The gRPC API's exec has stdout, and stderr but with a terminal, as kubectl's.
	e := &execRequest{start: start, stdin: start.GetStdin(), stdout: true, stderr: !start.GetTty()}
	if err := p.admitExec(stream.Context(), e, attach); err != nil {
		return err
	}
	k, err := p.startExec(stream.Context(), e.start, attach)
	if err != nil {
		return err
	}
	defer k.close()
	return relay(k, stream, execInput, execOutput)
}

// kubeletStream is a stream to the kubelet of a pod's node, its start sent: what the
// gRPC and the REST API relay their caller's messages to.
type kubeletStream[KIn, KOut any] struct {
	ctx    context.Context // the stream's; cancel ends it
	cancel context.CancelFunc
	kc     *kubeletConn
	ks     grpc.BidiStreamingClient[KIn, KOut]
}

func (k *kubeletStream[KIn, KOut]) close() {
	k.cancel()
	k.kc.Close()
}

type execStream = kubeletStream[kubeletv1.ExecInput, kubeletv1.ExecOutput]

// startExec checks an exec's or attach's start, finds the pod's kubelet and asks it to
// run the command (or attach): errors up to here are the request's, before anything ran.
func (p *pods) startExec(ctx context.Context, start *apiv1.ExecStart, attach bool) (*execStream, error) {
	what := "cannot exec into it"
	switch {
	case attach && len(start.GetCommand()) > 0:
		return nil, badRequest("command: Forbidden: attach runs no command")
	case attach:
		what = "cannot attach to it"
	case len(start.GetCommand()) == 0:
		return nil, badRequest("command: Required value: you must specify at least one command for the container")
	}
	ns := namespaceFor(kinds.MustLookup(kinds.Pod), start.GetNamespace())
	pod, kc, err := p.dialKubelet(ctx, ns, start.GetName(), what)
	if err != nil {
		return nil, err
	}
	container, err := podContainer(pod, start.GetContainer())
	if err != nil {
		kc.Close()
		return nil, err
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &execStream{ctx: kctx, cancel: cancel, kc: kc}
	kcl := kubeletv1.NewKubeletStreamsClient(kc)
	open := kcl.Exec
	if attach {
		open = kcl.Attach
	}
	k.ks, err = open(kctx)
	if err == nil {
		kstart := &kubeletv1.ExecStart{NodeName: kc.node, Namespace: ns, Pod: start.GetName(), PodUid: string(pod.UID),
			Container: container, Command: start.GetCommand(), Stdin: start.GetStdin(), Tty: start.GetTty(), Size: kubeletSize(start.GetSize())}
		err = k.ks.Send(&kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Start{Start: kstart}})
	}
	if err != nil {
		err = kc.kubeletError(ctx, err)
		k.close()
		return nil, err
	}
	return k, nil
}

// execInput is the kubelet's message for a caller's (nil: none; a second start means
// nothing).
func execInput(in *apiv1.ExecRequest) *kubeletv1.ExecInput {
	switch m := in.GetMsg().(type) {
	case *apiv1.ExecRequest_Stdin:
		return &kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Stdin{Stdin: m.Stdin}}
	case *apiv1.ExecRequest_Resize:
		return &kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Resize{Resize: kubeletSize(m.Resize)}}
	case *apiv1.ExecRequest_StdinEof:
		return &kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_StdinEof{StdinEof: m.StdinEof}}
	}
	return nil
}

// execOutput is the caller's message for a kubelet's.
func execOutput(out *kubeletv1.ExecOutput) *apiv1.ExecResponse {
	switch m := out.GetMsg().(type) {
	case *kubeletv1.ExecOutput_Started:
		return &apiv1.ExecResponse{Msg: &apiv1.ExecResponse_Started{Started: m.Started}}
	case *kubeletv1.ExecOutput_Stdout:
		return &apiv1.ExecResponse{Msg: &apiv1.ExecResponse_Stdout{Stdout: m.Stdout}}
	case *kubeletv1.ExecOutput_Stderr:
		return &apiv1.ExecResponse{Msg: &apiv1.ExecResponse_Stderr{Stderr: m.Stderr}}
	case *kubeletv1.ExecOutput_ExitCode:
		return &apiv1.ExecResponse{Msg: &apiv1.ExecResponse_ExitCode{ExitCode: m.ExitCode}}
	}
	return nil
}

// callerStream is the caller's end of a relayed stream: a gRPC server stream, or the
// REST API's channels (rest_streams.go).
type callerStream[In, Out any] interface {
	Recv() (*In, error)
	Send(*Out) error
}

// relay copies the caller's messages to the kubelet, in a goroutine (the caller's end
// of sending half-closes the kubelet's stream, its failure cancels it), and the
// kubelet's to the caller, until the kubelet's stream ends. in and out convert a
// message, or return nil to drop it.
func relay[CIn, COut, KIn, KOut any](k *kubeletStream[KIn, KOut], caller callerStream[CIn, COut],
	in func(*CIn) *KIn, out func(*KOut) *COut) error {
	go func() {
		for {
			m, err := caller.Recv()
			if errors.Is(err, io.EOF) {
				_ = k.ks.CloseSend()
				return
			}
			if err != nil {
				k.cancel()
				return
			}
			if km := in(m); km != nil {
				if err := k.ks.Send(km); err != nil {
					return // the kubelet's end says why, to Recv below
				}
			}
		}
	}()
	for {
		m, err := k.ks.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return k.kc.kubeletError(k.ctx, err)
		}
		if cm := out(m); cm != nil {
			if err := caller.Send(cm); err != nil {
				return err // the caller went away
			}
		}
	}
}

func kubeletSize(s *apiv1.TerminalSize) *kubeletv1.TerminalSize {
	if s == nil {
		return nil
	}
	return &kubeletv1.TerminalSize{Width: s.GetWidth(), Height: s.GetHeight()}
}

// PortForward implements apiv1.PodsServer: one connection to a port of the pod.
func (p *pods) PortForward(stream apiv1.Pods_PortForwardServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return badRequest("the first message must be start")
	}
	if err := checkPort(start.GetPort()); err != nil {
		return err
	}
	ns := namespaceFor(kinds.MustLookup(kinds.Pod), start.GetNamespace())
	ports, err := p.admitPortForward(stream.Context(), ns, start.GetName(), []int32{start.GetPort()})
	if err != nil {
		return err
	}
	if len(ports) != 1 {
		return badRequest("ports: Invalid value: %v: one port is forwarded on a stream", ports)
	}
	start.Port = ports[0]
	pod, kc, err := p.dialKubelet(stream.Context(), ns, start.GetName(), "cannot forward its ports")
	if err != nil {
		return err
	}
	defer kc.Close()
	k, err := startPortForward(stream.Context(), pod, kc, start.GetPort())
	if err != nil {
		return err
	}
	defer k.cancel()
	return relay(k, stream, portForwardInput, portForwardOutput)
}

func checkPort(port int32) error {
	if port <= 0 || port > 65535 {
		return badRequest("port: Invalid value: %d: must be between 1 and 65535, inclusive", port)
	}
	return nil
}

type portForwardStream = kubeletStream[kubeletv1.PortForwardInput, kubeletv1.PortForwardOutput]

// startPortForward asks the kubelet of kc, pod's, to connect to a port of the pod. The
// caller closes kc, which may serve several connections; cancel ends this one.
func startPortForward(ctx context.Context, pod *corev1.Pod, kc *kubeletConn, port int32) (*portForwardStream, error) {
	if err := checkPort(port); err != nil {
		return nil, err
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &portForwardStream{ctx: kctx, cancel: cancel, kc: kc}
	var err error
	k.ks, err = kubeletv1.NewKubeletStreamsClient(kc).PortForward(kctx)
	if err == nil {
		err = k.ks.Send(&kubeletv1.PortForwardInput{Msg: &kubeletv1.PortForwardInput_Start{Start: &kubeletv1.PortForwardStart{
			NodeName: kc.node, Namespace: pod.Namespace, Pod: pod.Name, PodUid: string(pod.UID), Port: port,
		}}})
	}
	if err != nil {
		cancel()
		return nil, kc.kubeletError(ctx, err)
	}
	return k, nil
}

func portForwardInput(in *apiv1.PortForwardRequest) *kubeletv1.PortForwardInput {
	if m, ok := in.GetMsg().(*apiv1.PortForwardRequest_Data); ok {
		return &kubeletv1.PortForwardInput{Msg: &kubeletv1.PortForwardInput_Data{Data: m.Data}}
	}
	return nil
}

func portForwardOutput(out *kubeletv1.PortForwardOutput) *apiv1.PortForwardResponse {
	switch m := out.GetMsg().(type) {
	case *kubeletv1.PortForwardOutput_Connected:
		return &apiv1.PortForwardResponse{Msg: &apiv1.PortForwardResponse_Connected{Connected: m.Connected}}
	case *kubeletv1.PortForwardOutput_Data:
		return &apiv1.PortForwardResponse{Msg: &apiv1.PortForwardResponse_Data{Data: m.Data}}
	}
	return nil
}
