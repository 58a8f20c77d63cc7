package k8sclients

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// benchPod is apiserver's BenchmarkAPICreatePod's pod: about 1 KiB encoded.
func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "bench", "tier": "web"},
			Annotations: map[string]string{"note": strings.Repeat("x", 700)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "docker.io/library/busybox:1.36",
			Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
}

// BenchmarkHTTPCreatePod is BenchmarkAPICreatePod (apiserver) over the REST API: 100
// concurrent callers of one client-go clientset (QPS unlimited, its default protobuf
// encoding) create 20,000 pods through the leader of 3 members, over one HTTP/2
// connection, in the shipped configuration (TLS, the admin's client certificate,
// authorization, default limits) as api_create_pod_c100 is; the _insecure twin runs
// plain HTTP/2 against --insecure members, as api_create_pod_c100_insecure does.
func BenchmarkHTTPCreatePod(b *testing.B) { benchHTTPCreatePod(b, true) }

func BenchmarkHTTPCreatePodInsecure(b *testing.B) { benchHTTPCreatePod(b, false) }

func benchHTTPCreatePod(b *testing.B, secure bool) {
	name := "http_create_pod_c100"
	if !secure {
		name += "_insecure"
	}
	benchfig.Want(b, name, name+"_p99", name+"_cpu_per_op")
	opts := apicluster.Options{HistorySize: 100_000,
		Configure: func(cfg *apiserver.Config) { cfg.Store.MmapSize = 256 << 20 }}
	if secure {
		opts.Certs = apicluster.Certs(b)
	}
	var c *apicluster.Cluster
	benchfig.Label("apiserver", func() { c = apicluster.Start(b, 3, opts) })
	cfg := &rest.Config{Host: "https://" + c.Addr(c.Leader()), QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CertFile: filepath.Join(opts.Certs, "admin.crt"), KeyFile: filepath.Join(opts.Certs, "admin.key"),
		CAFile: filepath.Join(opts.Certs, pki.CACertFile)}}
	if !secure {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &p}
		b.Cleanup(tr.CloseIdleConnections)
		cfg = &rest.Config{Host: "http://" + c.Addr(c.Leader()), QPS: -1, Transport: tr}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	createPods(b, cs, name)
}

// BenchmarkKubeAPIServerCreatePod is BenchmarkHTTPCreatePod's load against the
// kube-apiserver of KUBE_APISERVER_BENCH_KUBECONFIG (over HTTPS, HTTP/2):
// kube-apiserver-bench.sh starts one on a 3-member etcd and runs it. It skips without.
func BenchmarkKubeAPIServerCreatePod(b *testing.B) {
	benchfig.Want(b, "kube_apiserver_create_pod_c100", "kube_apiserver_create_pod_c100_p99", "kube_apiserver_create_pod_c100_cpu_per_op")
	kubeconfig := os.Getenv("KUBE_APISERVER_BENCH_KUBECONFIG")
	if kubeconfig == "" {
		b.Skip("KUBE_APISERVER_BENCH_KUBECONFIG is not set: test/k8sclients/kube-apiserver-bench.sh runs this benchmark")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// No controller manager runs: the namespace's default ServiceAccount, which
	// kube-apiserver's ServiceAccount admission wants for a pod, is made here.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(context.Background(), sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	createPods(b, cs, "kube_apiserver_create_pod_c100")
}

// createPods has 100 callers of cs create 20,000 pods (benchfig.Calls: name, name_p99,
// name_cpu_per_op). The clientset's connection is made by the first call, so its
// goroutines carry the callers' profile label.
func createPods(b *testing.B, cs *kubernetes.Clientset, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := benchfig.Calls(b, ctx, name, 100, 20_000, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, benchPod(fmt.Sprintf("p-%d", i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
