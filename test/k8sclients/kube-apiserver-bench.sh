#!/usr/bin/env bash
# http_create_pod_c100 against Kubernetes itself: builds kube-apiserver 1.32 (k8s.io/kubernetes
# cmd/kube-apiserver from the Go module proxy) and etcd 3.5 (go.etcd.io/etcd/server/v3),
# starts a 3-member etcd and one kube-apiserver on loopback, and runs the load of
# BenchmarkHTTPCreatePod (100 client-go callers, QPS unlimited, 20,000 pods over HTTP/2)
# against it: BenchmarkKubeAPIServerCreatePod prints `BENCH kube_apiserver_create_pod_c100`.
# Not part of `make test` or `make bench`: the build takes long. docs/performance.md records
# the figure beside Skiff's.
#
#   test/k8sclients/kube-apiserver-bench.sh          # build (once, into OUT), then run
#   test/k8sclients/kube-apiserver-bench.sh build    # only build OUT/kube-apiserver and OUT/etcd
#
# OUT (bin/kube-apiserver-bench) keeps the binaries; each run's data, certificates and logs
# are in a temporary directory removed at the end (KEEP=1 keeps it).
set -euo pipefail

K8S_VERSION=v1.32.13     # k8s.io/kubernetes
STAGING_VERSION=v0.32.13 # its staging modules (k8s.io/api, apiserver, ...) at the same release
ETCD_VERSION=v3.5.36     # go.etcd.io/etcd/server/v3
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/bin/kube-apiserver-bench}
mkdir -p "$OUT"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}

build_etcd() {
	[ -x "$OUT/etcd" ] && return
	local work
	work=$(mktemp -d)
	(
		cd "$work"
		go mod init skiff.local/etcdbuild >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		echo "building etcd $ETCD_VERSION" >&2
		go build -o "$OUT/etcd" go.etcd.io/etcd/server/v3
	)
	rm -rf "$work"
}

build_kube_apiserver() {
	[ -x "$OUT/kube-apiserver" ] && return
	local work
	work=$(mktemp -d)
	(
		cd "$work"
		go mod init skiff.local/kubeapiserverbuild >/dev/null 2>&1
		go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
		local gomod
		gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
		# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
		# its own directories, which a module requiring it does not see: replace them with
		# their releases (as test/conformance/conformance.sh does).
		local args=()
		for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
			args+=("-replace=$m=$m@$STAGING_VERSION")
		done
		go mod edit -require="k8s.io/kubernetes@$K8S_VERSION" "${args[@]}"
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
		echo "building kube-apiserver $K8S_VERSION (this takes a while)" >&2
		go build -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	)
	rm -rf "$work"
}

build_etcd
build_kube_apiserver
[ "${1:-}" = build ] && exit 0

run=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-}" = 1 ]; then echo "kept $run" >&2; else rm -rf "$run"; fi
}
trap cleanup EXIT

# Free loopback ports: 3 etcd client, 3 etcd peer, 1 kube-apiserver.
read -r -a ports < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)
cluster= clients=
for i in 0 1 2; do
	cluster+="${cluster:+,}e$i=http://127.0.0.1:${ports[3 + i]}"
	clients+="${clients:+,}http://127.0.0.1:${ports[i]}"
done
for i in 0 1 2; do
	"$OUT/etcd" --name "e$i" --data-dir "$run/etcd$i" \
		--listen-client-urls "http://127.0.0.1:${ports[i]}" --advertise-client-urls "http://127.0.0.1:${ports[i]}" \
		--listen-peer-urls "http://127.0.0.1:${ports[3 + i]}" --initial-advertise-peer-urls "http://127.0.0.1:${ports[3 + i]}" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token skiff-bench \
		--quota-backend-bytes 8589934592 >"$run/etcd$i.log" 2>&1 &
	pids+=($!)
done

# The service account signing key and an admin's token (system:masters); the serving
# certificate is the self-signed one kube-apiserver writes into --cert-dir.
openssl genrsa -out "$run/sa.key" 2048 2>/dev/null
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" >"$run/tokens.csv"
port=${ports[6]}
"$OUT/kube-apiserver" --etcd-servers "$clients" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" --cert-dir "$run/certs" \
	--token-auth-file "$run/tokens.csv" --authorization-mode Node,RBAC \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$run/sa.key" --service-account-signing-key-file "$run/sa.key" \
	--service-cluster-ip-range 10.96.0.0/16 >"$run/kube-apiserver.log" 2>&1 &
pids+=($!)

cat >"$run/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube
  cluster: {server: "https://127.0.0.1:$port", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: kube
  context: {cluster: kube, user: admin}
current-context: kube
EOF

for _ in $(seq 300); do
	curl -sfk -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "${pids[3]}" 2>/dev/null || { tail -30 "$run/kube-apiserver.log" >&2; exit 1; }
	sleep 1
done
curl -sfk -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" >/dev/null ||
	{ echo "kube-apiserver not ready after 300 s" >&2; tail -30 "$run/kube-apiserver.log" >&2; exit 1; }

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$root/test/k8sclients"
SKIFF_BENCH=kube_apiserver_create_pod KUBE_APISERVER_BENCH_KUBECONFIG="$run/kubeconfig" \
	go test -run '^$' -bench BenchmarkKubeAPIServerCreatePod -benchtime 1x -timeout 30m . | grep -E '^(BENCH|ok|FAIL|---|\s)'
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
