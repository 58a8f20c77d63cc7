package apiserver

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/ptr"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// TestValidateLogOptions: a logs request is checked as Kubernetes checks PodLogOptions,
// before the kubelet is called.
func TestValidateLogOptions(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		name string
		req  *apiv1.PodLogsRequest
		err  string
	}{
		{"none", &apiv1.PodLogsRequest{Name: "web"}, ""},
		{"all good", &apiv1.PodLogsRequest{Name: "web", Timestamps: true, SinceSeconds: ptr.To[int64](5), LimitBytes: ptr.To[int64](1), TailLines: ptr.To[int64](0)}, ""},
		{"since time", &apiv1.PodLogsRequest{Name: "web", SinceTime: at}, ""},
		{"both sinces", &apiv1.PodLogsRequest{Name: "web", SinceSeconds: ptr.To[int64](5), SinceTime: at},
			"PodLogOptions \"web\" is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"since zero", &apiv1.PodLogsRequest{Name: "web", SinceSeconds: ptr.To[int64](0)}, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{"bad since time", &apiv1.PodLogsRequest{Name: "web", SinceTime: &timestamppb.Timestamp{Nanos: 2e9}}, "sinceTime: Invalid value"},
		{"limit zero", &apiv1.PodLogsRequest{Name: "web", LimitBytes: ptr.To[int64](0)}, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"tail negative", &apiv1.PodLogsRequest{Name: "web", TailLines: ptr.To[int64](-1)}, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
	} {
		err := validateLogOptions(tc.req)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.err)):
			t.Errorf("%s: %v, want InvalidArgument with %q", tc.name, err, tc.err)
		}
	}
}
