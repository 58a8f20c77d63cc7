package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// batchBindServer binds the pods named in the request, refusing those in forbidden, and answers
// BindBatch with batch (nil: each binding as Bind answers it).
type batchBindServer struct {
	apiv1.UnimplementedResourcesServer
	forbidden map[string]bool
	batch     error

	mu                sync.Mutex
	binds, batchCalls int
}

func (s *batchBindServer) bindOne(req *apiv1.BindRequest) (*apiv1.Object, error) {
	if s.forbidden[req.GetName()] {
		return nil, status.Errorf(codes.PermissionDenied, "cannot create pods/binding %q", req.GetName())
	}
	return kinds.Wrap(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: req.GetNamespace(), Name: req.GetName()},
		Spec: corev1.PodSpec{NodeName: req.GetNodeName()}})
}

func (s *batchBindServer) Bind(_ context.Context, req *apiv1.BindRequest) (*apiv1.Object, error) {
	s.mu.Lock()
	s.binds++
	s.mu.Unlock()
	return s.bindOne(req)
}

func (s *batchBindServer) BindBatch(_ context.Context, req *apiv1.BindBatchRequest) (*apiv1.BindBatchResponse, error) {
	s.mu.Lock()
	s.batchCalls++
	s.mu.Unlock()
	if s.batch != nil {
		return nil, s.batch
	}
	res := &apiv1.BindBatchResponse{}
	for _, b := range req.GetBindings() {
		obj, err := s.bindOne(b)
		r := &apiv1.CreateBatchResult{Object: obj}
		if err != nil {
			r.Error, _ = proto.Marshal(status.Convert(err).Proto())
		}
		res.Results = append(res.Results, r)
	}
	return res, nil
}

// TestBindEach: several bindings go in one BindBatch, each with its own outcome; a
// server without the call gets one Bind each (and is not asked again); a refused batch
// is bound one by one, so that each binding says whether it was the one refused.
func TestBindEach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs := []client.Binding{{Namespace: "default", Name: "a", Node: "w1"}, {Namespace: "default", Name: "secret", Node: "w1"},
		{Namespace: "default", Name: "c", Node: "w2"}}
	for _, tc := range []struct {
		name              string
		batch             error
		binds, batchCalls int // after two BindEach calls
	}{
		{"batched", nil, 0, 2},
		{"server without BindBatch", status.Error(codes.Unimplemented, "unknown method BindBatch"), 6, 1},
		{"batch refused", status.Error(codes.PermissionDenied, `bindings[1]: cannot create pods/binding "secret"`), 6, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &batchBindServer{forbidden: map[string]bool{"secret": true}, batch: tc.batch}
			conn, _ := client.Dial([]string{startFake(t, s)}, client.Options{BackoffBase: time.Millisecond})
			defer conn.Close()
			for range 2 {
				out, errs := conn.BindEach(ctx, bs)
				for i, b := range bs {
					if b.Name == "secret" {
						if status.Code(errs[i]) != codes.PermissionDenied {
							t.Errorf("binding %s: %v, want PermissionDenied", b.Name, errs[i])
						}
						continue
					}
					if errs[i] != nil || out[i].Name != b.Name || out[i].Spec.NodeName != b.Node {
						t.Errorf("binding %s: %v, %v; want bound to %s", b.Name, out[i], errs[i], b.Node)
					}
				}
			}
			if s.binds != tc.binds || s.batchCalls != tc.batchCalls {
				t.Errorf("server saw %d Binds and %d BindBatch calls, want %d and %d", s.binds, s.batchCalls, tc.binds, tc.batchCalls)
			}
		})
	}
}
