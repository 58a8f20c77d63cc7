package client

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTooLarge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (3145793 vs. 2097152)"),
			"request of 3145793 bytes exceeds the API server's 2 MiB limit (--max-request-bytes)"},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (3145793 vs. 3000000)"),
			"request of 3145793 bytes exceeds the API server's 3000000-byte limit (--max-request-bytes)"},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (5000 vs. 4096)"),
			"request of 5000 bytes exceeds this client's limit of 4 KiB"},
		{status.Error(codes.ResourceExhausted, "too many requests"), ""},
		{status.Error(codes.Internal, "grpc: received message larger than max (1 vs. 0)"), ""},
	} {
		got, ok := tooLarge(tc.err)
		switch {
		case tc.want == "" && ok:
			t.Errorf("%v: rewritten as %v", tc.err, got)
		case tc.want != "" && (!ok || status.Code(got) != codes.InvalidArgument || status.Convert(got).Message() != tc.want):
			t.Errorf("%v: got %v, want InvalidArgument %q", tc.err, got, tc.want)
		}
	}
}

func TestNotUTF8(t *testing.T) {
	got, ok := notUTF8(status.Error(codes.Internal, "grpc: error while marshaling: string field contains invalid UTF-8"))
	if !ok || status.Code(got) != codes.InvalidArgument {
		t.Fatalf("got %v, %v", got, ok)
	}
	if _, ok := notUTF8(status.Error(codes.Internal, "something else")); ok {
		t.Fatal("another Internal error rewritten")
	}
}
