package kubelet

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kubelet/crilog"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
)

func TestLogOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		req  *kubeletv1.ContainerLogsRequest
		want crilog.Options
		err  string
	}{
		{"none", &kubeletv1.ContainerLogsRequest{}, crilog.Options{}, ""},
		{"timestamps", &kubeletv1.ContainerLogsRequest{Timestamps: true}, crilog.Options{Timestamps: true}, ""},
		{"since seconds", &kubeletv1.ContainerLogsRequest{SinceSeconds: ptr.To[int64](60)}, crilog.Options{Since: now.Add(-time.Minute)}, ""},
		{"since time", &kubeletv1.ContainerLogsRequest{SinceTime: timestamppb.New(at)}, crilog.Options{Since: at}, ""},
		{"limit", &kubeletv1.ContainerLogsRequest{LimitBytes: ptr.To[int64](10)}, crilog.Options{LimitBytes: 10}, ""},
		{"both sinces", &kubeletv1.ContainerLogsRequest{SinceSeconds: ptr.To[int64](1), SinceTime: timestamppb.New(at)}, crilog.Options{},
			"at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"since zero", &kubeletv1.ContainerLogsRequest{SinceSeconds: ptr.To[int64](0)}, crilog.Options{}, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{"limit negative", &kubeletv1.ContainerLogsRequest{LimitBytes: ptr.To[int64](-1)}, crilog.Options{}, "limitBytes: Invalid value: -1: must be greater than 0"},
		{"bad time", &kubeletv1.ContainerLogsRequest{SinceTime: &timestamppb.Timestamp{Nanos: -1}}, crilog.Options{}, "sinceTime: Invalid value"},
	} {
		got, err := logOptions(tc.req, now)
		switch {
		case tc.err != "":
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want InvalidArgument with %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case got != tc.want:
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestSkipWriter(t *testing.T) {
	var b bytes.Buffer
	w := &skipWriter{w: &b, skip: 5}
	for _, p := range []string{"ab", "cd", "efg", "h"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if b.String() != "fgh" {
		t.Fatalf("skipped 5 of abcdefgh: %q", b.String())
	}
}
