package kubelet

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Network probes against real servers on the loopback: an HTTP server (status codes,
// headers, a named port), a TCP port open and closed, and a gRPC health server whose
// services are serving or not, as Kubernetes' prober reads each.
func TestDialProbe(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && r.URL.Query().Get("verbose") == "1" && r.Header.Get("X-Custom") == "awesome" &&
			strings.HasPrefix(r.UserAgent(), "kube-probe/"):
			w.Write([]byte("ok"))
		case r.URL.Path == "/redirect":
			w.WriteHeader(http.StatusFound)
		default:
			http.Error(w, "unhealthy", http.StatusInternalServerError)
		}
	}))
	defer web.Close()
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	defer srv.Stop()
	grpcPort := int32(ln.Addr().(*net.TCPAddr).Port)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	ctr := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(webPort)}}}
	for _, tc := range []struct {
		name    string
		h       corev1.ProbeHandler
		headers []corev1.HTTPHeader
		ok      bool
		output  string
	}{
		{"http ok by port name", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz?verbose=1", Port: intstr.FromString("http")}},
			[]corev1.HTTPHeader{{Name: "X-Custom", Value: "awesome"}}, true, "ok"},
		{"http 500", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(webPort))}},
			nil, false, "HTTP probe failed with statuscode: 500"},
		{"http redirect is success", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/redirect", Port: intstr.FromInt32(int32(webPort))}},
			nil, true, ""},
		{"tcp open", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(webPort))}}, nil, true, ""},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}},
			nil, false, "connection refused"},
		{"grpc serving", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort}}, nil, true, ""},
		{"grpc service not serving", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort, Service: new("db")}},
			nil, false, `service unhealthy (responded with "NOT_SERVING")`},
		{"grpc unknown service", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort, Service: new("cache")}},
			nil, false, "NotFound"},
		{"grpc nothing listening", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(closedPort)}},
			nil, false, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np, err := networkProbe(pod, ctr, &tc.h, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			ok, out := dialProbe(context.Background(), np, tc.headers, 5*time.Second)
			if ok != tc.ok || !strings.Contains(out, tc.output) {
				t.Errorf("probe %s:%s: ok %v %q, want %v %q", np.Host, strconv.Itoa(np.Port), ok, out, tc.ok, tc.output)
			}
		})
	}

	// A named port the container does not declare.
	if _, err := networkProbe(pod, ctr, &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("metrics")}}, "127.0.0.1"); err == nil ||
		err.Error() != "couldn't find port: metrics in default/web" {
		t.Errorf("unknown port name: %v", err)
	}
}
