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
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return badRequest("the first message must be start")
	}
	what := "cannot exec into it"
	switch {
	case attach && len(start.GetCommand()) > 0:
		return badRequest("command: Forbidden: attach runs no command")
	case attach:
		what = "cannot attach to it"
	case len(start.GetCommand()) == 0:
		return badRequest("command: Required value: you must specify at least one command for the container")
	}
	ns := namespaceFor(kinds.MustLookup(kinds.Pod), start.GetNamespace())
	pod, kc, err := p.dialKubelet(ctx, ns, start.GetName(), what)
	if err != nil {
		return err
	}
	defer kc.Close()
	container, err := podContainer(pod, start.GetContainer())
	if err != nil {
		return err
	}
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kcl := kubeletv1.NewKubeletStreamsClient(kc)
	open := kcl.Exec
	if attach {
		open = kcl.Attach
	}
	ks, err := open(kctx)
	if err == nil {
		kstart := &kubeletv1.ExecStart{NodeName: kc.node, Namespace: ns, Pod: start.GetName(), PodUid: string(pod.UID),
			Container: container, Command: start.GetCommand(), Stdin: start.GetStdin(), Tty: start.GetTty(), Size: kubeletSize(start.GetSize())}
		err = ks.Send(&kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Start{Start: kstart}})
	}
	if err != nil {
		return kc.kubeletError(ctx, err)
	}
	return relay(ctx, cancel, kc, stream, ks, execInput, execOutput)
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

// relay copies the caller's messages to the kubelet, in a goroutine (the caller's end
// of sending half-closes the kubelet's stream, its failure cancels it), and the
// kubelet's to the caller, until the kubelet's stream ends. in and out convert a
// message, or return nil to drop it.
func relay[CIn, COut, KIn, KOut any](ctx context.Context, cancel context.CancelFunc, kc *kubeletConn,
	caller grpc.BidiStreamingServer[CIn, COut], kubelet grpc.BidiStreamingClient[KIn, KOut],
	in func(*CIn) *KIn, out func(*KOut) *COut) error {
	go func() {
		for {
			m, err := caller.Recv()
			if errors.Is(err, io.EOF) {
				_ = kubelet.CloseSend()
				return
			}
			if err != nil {
				cancel()
				return
			}
			if km := in(m); km != nil {
				if err := kubelet.Send(km); err != nil {
					return // the kubelet's end says why, to Recv below
				}
			}
		}
	}()
	for {
		m, err := kubelet.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return kc.kubeletError(ctx, err)
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
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return badRequest("the first message must be start")
	}
	if port := start.GetPort(); port <= 0 || port > 65535 {
		return badRequest("port: Invalid value: %d: must be between 1 and 65535, inclusive", port)
	}
	ns := namespaceFor(kinds.MustLookup(kinds.Pod), start.GetNamespace())
	pod, kc, err := p.dialKubelet(ctx, ns, start.GetName(), "cannot forward its ports")
	if err != nil {
		return err
	}
	defer kc.Close()
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ks, err := kc.portForward(kctx, pod, start.GetPort())
	if err != nil {
		return kc.kubeletError(ctx, err)
	}
	return relay(ctx, cancel, kc, stream, ks, portForwardInput, portForwardOutput)
}

// portForward opens the kubelet's stream to port of pod: the gRPC PortForward call's
// and the REST proxy's way into a pod (rest_proxy.go), which works wherever the API
// server reaches the kubelet, even when it cannot route to the pod network. ctx bounds
// the stream.
func (k *kubeletConn) portForward(ctx context.Context, pod *corev1.Pod, port int32) (kubeletv1.KubeletStreams_PortForwardClient, error) {
	ks, err := kubeletv1.NewKubeletStreamsClient(k).PortForward(ctx)
	if err == nil {
		err = ks.Send(&kubeletv1.PortForwardInput{Msg: &kubeletv1.PortForwardInput_Start{Start: &kubeletv1.PortForwardStart{
			NodeName: k.node, Namespace: pod.Namespace, Pod: pod.Name, PodUid: string(pod.UID), Port: port,
		}}})
	}
	return ks, err
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
