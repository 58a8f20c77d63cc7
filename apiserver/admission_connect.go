package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/kinds"
)

// CONNECT admission. The requests that open a connection rather than write an object
// (pods/exec, pods/attach, pods/portforward, and the proxy subresources of pods,
// services and nodes) are admitted as Kubernetes admits them, before anything is
// connected: the mutating webhooks, then the validating admission policies and
// webhooks, whose rules name CONNECT and the subresource, see an AdmissionReview of
// operation CONNECT whose object is the request's options (v1 PodExecOptions,
// PodAttachOptions, PodPortForwardOptions, PodProxyOptions, ServiceProxyOptions,
// NodeProxyOptions), its kind that kind, its resource the parent's and its name and
// namespace the object's connected to. A refusal refuses the request (before an
// upgrade, the HTTP response) in Kubernetes' words. As in Kubernetes a mutating
// webhook's patch changes the options the connection is made with; the mutating
// admission policies, whose operations cannot be CONNECT, are not applied.

// connectObject is a CONNECT request's options as admission carries them: the
// options, and the name and namespace of the object connected to, which they lack.
// It is encoded (JSON and protobuf) as the options alone.
type connectObject struct {
	metav1.ObjectMeta
	options connectOptions
}

// connectOptions are the options kinds (each a generated API type).
type connectOptions interface {
	runtime.Object
	Size() int
	MarshalTo([]byte) (int, error)
}

var _ kinds.Object = (*connectObject)(nil)

func (c *connectObject) GetObjectKind() schema.ObjectKind { return c.options.GetObjectKind() }

func (c *connectObject) DeepCopyObject() runtime.Object {
	return &connectObject{ObjectMeta: *c.ObjectMeta.DeepCopy(), options: c.options.DeepCopyObject().(connectOptions)}
}

func (c *connectObject) Size() int                       { return c.options.Size() }
func (c *connectObject) MarshalTo(b []byte) (int, error) { return c.options.MarshalTo(b) }
func (c *connectObject) MarshalJSON() ([]byte, error)    { return json.Marshal(c.options) }

// decoded is c with its options read from js, strictly (a field the kind does not
// have is an error), its kind cleared as the options' kinds are kept.
func (c *connectObject) decoded(js []byte) (*connectObject, error) {
	opts := reflect.New(reflect.TypeOf(c.options).Elem()).Interface().(connectOptions)
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	if err := d.Decode(opts); err != nil {
		return nil, fmt.Errorf("decode %T: %w", c.options, err)
	}
	opts.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return &connectObject{ObjectMeta: *c.ObjectMeta.DeepCopy(), options: opts}, nil
}

// admitConnect admits a CONNECT to the object namespace/name of info's kind through
// subresource sub, with opts (one of the options kinds, whose v1 kind is the
// AdmissionReview's); it returns the options as the mutating webhooks made them (opts
// itself when nothing is configured). Nothing is read or called while no webhook and
// no policy is configured.
func (r *resources) admitConnect(ctx context.Context, info *kinds.Info, sub, namespace, name string, opts connectOptions) (connectOptions, error) {
	if !r.admitsSubresources(ctx, info) {
		return opts, nil
	}
	kind := corev1.SchemeGroupVersion.WithKind(reflect.TypeOf(opts).Elem().Name())
	obj := &connectObject{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, options: opts}
	op := &webhookOp{operation: admissionv1.Connect, info: info, subresource: sub, subKind: kind, obj: obj}
	var err error
	if op.obj, _, _, err = r.webhooks.mutate(ctx, op); err != nil {
		return nil, err
	}
	if err := r.admitPolicies(ctx, op); err != nil {
		return nil, err
	}
	if err := r.webhooks.validate(ctx, op); err != nil {
		return nil, err
	}
	return op.obj.(*connectObject).options, nil
}

// admitExec admits an exec or attach (CONNECT pods/exec, pods/attach) of e, which
// takes the options the mutating webhooks made.
func (p *pods) admitExec(ctx context.Context, e *execRequest, attach bool) error {
	info := kinds.MustLookup(kinds.Pod)
	ns, name := namespaceFor(info, e.start.GetNamespace()), e.start.GetName()
	if attach {
		opts := &corev1.PodAttachOptions{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr, TTY: e.start.GetTty(), Container: e.start.GetContainer()}
		got, err := p.resources.admitConnect(ctx, info, "attach", ns, name, opts)
		if err != nil || got == connectOptions(opts) {
			return err
		}
		o := got.(*corev1.PodAttachOptions)
		e.setStreams(o.Stdin, o.Stdout, o.Stderr, o.TTY, o.Container, nil)
		return e.check()
	}
	opts := &corev1.PodExecOptions{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr, TTY: e.start.GetTty(), Container: e.start.GetContainer(),
		Command: e.start.GetCommand()}
	got, err := p.resources.admitConnect(ctx, info, "exec", ns, name, opts)
	if err != nil || got == connectOptions(opts) {
		return err
	}
	o := got.(*corev1.PodExecOptions)
	e.setStreams(o.Stdin, o.Stdout, o.Stderr, o.TTY, o.Container, o.Command)
	return e.check()
}

// setStreams sets e's options (a mutating webhook's).
func (e *execRequest) setStreams(stdin, stdout, stderr, tty bool, container string, command []string) {
	e.stdin, e.stdout, e.stderr = stdin, stdout, stderr
	e.start.Stdin, e.start.Tty, e.start.Container, e.start.Command = stdin, tty, container, command
}

// check refuses options without a stream, as execRequestOf does, and keeps one
// stream with a terminal.
func (e *execRequest) check() error {
	if !e.stdin && !e.stdout && !e.stderr {
		return badRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	if e.start.GetTty() && e.stderr {
		e.stderr = false
	}
	return nil
}

// admitPortForward admits a port forward (CONNECT pods/portforward) to ports of pod
// namespace/name, and returns the ports the mutating webhooks left.
func (p *pods) admitPortForward(ctx context.Context, namespace, name string, ports []int32) ([]int32, error) {
	info := kinds.MustLookup(kinds.Pod)
	opts := &corev1.PodPortForwardOptions{Ports: ports}
	got, err := p.resources.admitConnect(ctx, info, "portforward", namespaceFor(info, namespace), name, opts)
	if err != nil {
		return nil, err
	}
	ports = got.(*corev1.PodPortForwardOptions).Ports
	for _, port := range ports {
		if err := checkPort(port); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// admitProxy admits a proxy request (CONNECT pods/proxy, services/proxy, nodes/proxy)
// and sets its path to the one the mutating webhooks left.
func (a *restAPI) admitProxy(ctx context.Context, req *restRequest) error {
	var opts connectOptions
	switch req.info.Kind {
	case kinds.Pod:
		opts = &corev1.PodProxyOptions{Path: req.proxy.path}
	case kinds.Service:
		opts = &corev1.ServiceProxyOptions{Path: req.proxy.path}
	case kinds.Node:
		opts = &corev1.NodeProxyOptions{Path: req.proxy.path}
	default:
		return nil
	}
	got, err := a.res.admitConnect(ctx, req.info, "proxy", req.namespace, req.name, opts)
	if err != nil {
		return err
	}
	switch o := got.(type) {
	case *corev1.PodProxyOptions:
		req.proxy.path = o.Path
	case *corev1.ServiceProxyOptions:
		req.proxy.path = o.Path
	case *corev1.NodeProxyOptions:
		req.proxy.path = o.Path
	}
	return nil
}
