package apiserver_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestBadInputCorpus sends the outside probe's bad input (issue 27) through the gRPC API,
// raw and through the client library: each is refused with the code and words that name
// the problem, and nothing of it is stored. (The manifest side of the corpus — alias bombs,
// deep nesting, duplicate keys — is skiffctl/manifest's TestBadInputCorpus.)
func TestBadInputCorpus(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc, _ := dial(t, c.Addr(0))
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)

	cm := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: data}
	}
	labelled := cm("labelled", nil)
	labelled.Labels = map[string]string{"app": "\xff"}
	longLabel := cm("long-label", nil)
	longLabel.Labels = map[string]string{"app": strings.Repeat("a", 64)}
	event := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "default"},
		Reason:         "Probe", Message: strings.Repeat("m", 4096), Type: corev1.EventTypeNormal}

	for _, tc := range []struct {
		name string
		obj  kinds.Object
		code codes.Code
		want []string
	}{
		{"over the request limit", cm("big", map[string]string{"k": strings.Repeat("x", 3<<20)}), codes.InvalidArgument,
			[]string{"exceeds the API server's 2 MiB limit (--max-request-bytes)"}},
		{"invalid UTF-8 in data", cm("utf8", map[string]string{"k": "a\xffb"}), codes.InvalidArgument,
			[]string{"data[k]", "must be valid UTF-8"}},
		{"invalid UTF-8 in a label", labelled, codes.InvalidArgument, []string{"metadata.labels", "UTF-8"}},
		{"a name that is not DNS", cm("Not_A_Name", nil), codes.InvalidArgument, []string{"metadata.name: Invalid value: \"Not_A_Name\""}},
		{"a name too long", cm(strings.Repeat("n", 254), nil), codes.InvalidArgument, []string{"metadata.name", "must be no more than 253 characters"}},
		{"a label value too long", longLabel, codes.InvalidArgument, []string{"metadata.labels", "must be no more than 63 bytes"}},
		{"an event message over 1 KiB", event, codes.InvalidArgument, []string{"message", "1024"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch o := tc.obj.(type) {
			case *corev1.ConfigMap:
				_, err = cs.ConfigMaps.Create(ctx, o)
			case *corev1.Event:
				_, err = cs.Events.Create(ctx, o)
			}
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	// Raw envelopes the client library would never send.
	for _, tc := range []struct {
		name string
		obj  *apiv1.Object
		want string
	}{
		{"bytes that are not an object", &apiv1.Object{ApiVersion: "v1", Kind: "ConfigMap", Raw: []byte("\x00\xffjunk")}, ""},
		{"no kind", &apiv1.Object{Raw: wrap(t, cm("a", nil)).GetRaw()}, ""},
		{"a kind Skiff does not serve", &apiv1.Object{ApiVersion: "v1", Kind: "ComponentStatus", Raw: unknownKind(t, "ComponentStatus")}, "ComponentStatus"},
		{"an envelope that says one kind and carries another", &apiv1.Object{ApiVersion: "v1", Kind: "Secret", Raw: wrap(t, cm("a", nil)).GetRaw()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rc.Create(ctx, &apiv1.CreateRequest{Object: tc.obj})
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.NotFound {
				t.Fatalf("got %v, want InvalidArgument or NotFound", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}

	// Nothing of it was stored.
	l, err := cs.ConfigMaps.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range l.Items {
		if item.Name != "kube-root-ca.crt" {
			t.Errorf("stored: %s", item.Name)
		}
	}
}

// unknownKind is Kubernetes' protobuf encoding of an empty object of kind.
func unknownKind(t *testing.T, kind string) []byte {
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "v1", Kind: kind}, Raw: []byte{}}
	b, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{}, kinds.Magic...), b...)
}
