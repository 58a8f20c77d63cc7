#!/usr/bin/env bash
# Kubernetes' conformance suite against Skiff: builds e2e.test from k8s.io/kubernetes at
# the release Skiff's k8s.io modules pin (its [Conformance] tests, the ones k3s and k0s
# are certified with), builds the images those tests run from source and Debian's
# packages into a loopback registry, starts a `skiff up` of its own (unless KUBECONFIG
# names a cluster), runs the tests and prints how many pass and fail, per area (SIG).
# Not part of `make test`. docs/compatibility.md records the results and how to read them.
#
#   test/conformance/conformance.sh [all]    # build, images, cluster, run, report
#   test/conformance/conformance.sh build    # only bin/conformance/e2e.test and ginkgo
#   test/conformance/conformance.sh images   # only the images (into bin/conformance/registry)
#   test/conformance/conformance.sh test     # cluster, run, report with the images built
#   test/conformance/conformance.sh report   # the table of the last run's report.json
#   test/conformance/conformance.sh clean    # what a run's stopped cluster left (leftovers)
#
# Environment: FOCUS, SKIP (ginkgo regexps; default the [Conformance] tests without
# [Serial] and [Disruptive]), TIMEOUT (the whole run, ginkgo's --timeout; default 60m),
# PROCS (parallel test processes; default 4), KUBECONFIG (a cluster to use instead of
# starting one), REGISTRY (loopback HOST:PORT of the images' registry; default
# 127.0.0.1:5055), API (the API address the script's skiff up listens on; default
# 198.51.100.43:7643, on an interface of the script's own: apiif), NODES (the script's
# cluster's nodes: 2, skiff up's and a second on a network namespace of its own, node2;
# 1, skiff up's alone; default 2), OUT (default bin/conformance). Nothing is sent off the
# machine: the registry is on loopback, the API server on an address of the machine's
# own, the second node on a link of the script's own, the pods' and Services' traffic
# guarded.
set -euo pipefail

K8S_VERSION=v1.37.2 # k8s.io/kubernetes; its staging modules are v0.37.2, as go.mod pins
STAGING_VERSION=v0.37.2
FOCUS=${FOCUS:-'\[Conformance\]'}
SKIP=${SKIP:-'\[Serial\]|\[Disruptive\]'}
TIMEOUT=${TIMEOUT:-60m}
PROCS=${PROCS:-4}
REGISTRY=${REGISTRY:-127.0.0.1:5055}
API=${API:-198.51.100.43:7643}
NODES=${NODES:-2}
case $NODES in 1 | 2) ;; *) echo "conformance: NODES=$NODES: want 1 or 2" >&2 && exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/bin/conformance}
mkdir -p "$OUT"
mod=$OUT/mod # the Go module e2e.test, ginkgo, kubectl and agnhost are built in
# The builds and the tests run at nice's default, 10: at 19, on a machine whose other
# builds run at 0 to 10, the e2e.test build got almost no CPU and never finished.

log() { echo "conformance: $*" >&2; }

# deps installs, from Debian's packages, what the images and the cluster need and a fresh
# machine lacks (docker-registry, busybox-static, containerd, runc, the CNI plugins...).
deps() {
	"$root/test/tools/install-deps.sh" conformance
}

pids=()
ourcluster= # set when the script started a skiff up
ourapiif=   # set when the script made the API address's interface (apiif)
ournode2=   # set when the script made the second node (node2)
cleanup() {
	local p
	# The second node first, while the API server is up: its kubelet stopped, its Node
	# is deleted (its pods with it), as a machine leaving a cluster is.
	if [ -n "$ournode2" ]; then
		node2stop
		"$OUT/kubectl" delete node "$node2name" --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1 || true
	fi
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[ -z "$ourcluster" ] || leftovers
	[ -z "$ournode2" ] || { unnode2 && log "removed the second node $node2name (its processes, containers, cgroups, mounts, network namespaces, veth and directories)"; }
	[ -z "$ourcluster" ] || unguard
	[ -z "$ourapiif" ] || unapiif
}
trap cleanup EXIT

# apiif gives the API server an address pods can reach, as a cluster's API server has,
# that is on no network: the host part of $API on an interface of the script's own,
# $apiifname (a dummy, or an ifb where the kernel has no dummy driver: neither sends what
# is routed to it anywhere), as a /32, so that no route but the address's own (local)
# comes with it. Pods reach it through the kubernetes Service (10.43.0.1:443), whose
# endpoint it is; on loopback (127.0.0.1), the endpoint skiff up lists is the host's
# address, where nothing listens, and a pod's connection is refused. An API host that is
# loopback, or an address of the machine already, is used as it is.
apiifname=skiffconf0
apiif() {
	local host=${API%:*} own
	case $host in 127.* | localhost | '[::1]' | 0.0.0.0) return 0 ;; esac
	own=$(ip -o addr show to "$host/32")
	if [ -n "$(echo "$own" | grep -v " $apiifname ")" ]; then
		return 0 # the machine's own address
	fi
	unapiif
	ourapiif=1
	ip link add "$apiifname" type dummy 2>/dev/null || ip link add "$apiifname" type ifb || {
		log "cannot make interface $apiifname for the API address $host"
		exit 1
	}
	# No IPv6 link-local address (nor its router solicitations) on it: it has one address.
	sysctl -qw "net.ipv6.conf.$apiifname.disable_ipv6=1" 2>/dev/null || true
	ip addr add "$host/32" dev "$apiifname"
	ip link set "$apiifname" up
	log "API address: $host/32 on $apiifname (deleted at the end and by '$0 clean')"
}
unapiif() {
	ip link del "$apiifname" 2>/dev/null || true
}

# guard keeps the cluster's traffic on this machine while the script's cluster runs: an
# nftables table drops every packet to the pods' or the Services' range (skiff up's
# defaults, which the script's cluster uses) that would leave by an interface with a
# default route, after NAT (so a cluster IP's translated packets pass, and one that a
# missing or wrong rule leaves untranslated does not leave the machine); and, when the
# API address is apiif's, every packet to it that would (its interface gone). With the
# second node (NODES=2), also every packet to its link's addresses that would, and
# whatever the host would forward between its link and an outward interface.
guardtable=skiff-conformance-guard
guard() {
	local outward daddrs='10.42.0.0/16, 10.43.0.0/16' forward=
	command -v nft >/dev/null || { log "nft not found: cannot guard the outward interface"; exit 1; }
	outward=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print "\"" $(i+1) "\""}' | sort -u | paste -sd, -)
	[ -n "$outward" ] || return 0 # no default route: nothing can leave by one
	unguard
	[ -z "$ourapiif" ] || daddrs="$daddrs, ${API%:*}"
	if [ "$NODES" = 2 ]; then
		daddrs="$daddrs, $node2net"
		forward="chain forward {
		type filter hook forward priority -400; policy accept;
		iifname \"$node2if\" oifname { $outward } counter drop
		iifname { $outward } oifname \"$node2if\" counter drop
	}"
	fi
	nft -f - <<EOF2
table inet $guardtable {
	chain postrouting {
		type filter hook postrouting priority 300; policy accept;
		oifname { $outward } ip daddr { $daddrs } counter drop
	}
	$forward
}
EOF2
	log "guard: packets to $daddrs leaving by $outward are dropped${forward:+, and forwarded ones between $node2if and $outward} (nft table inet $guardtable)"
}
unguard() {
	nft delete table inet "$guardtable" 2>/dev/null || true
}

# leftovers removes what the script's skiff up (stopped) left of its pods: it stops
# their containers, but leaves their volumes and network, as a kubelet that stops does.
# It goes by the names that cluster used, and touches nothing another made: its data
# directory $OUT/up (whose path's hash names its containerd's state,
# /run/skiff/containerd-HASH, and its pods' network namespaces, /run/skiff/netns-HASH)
# and its pods' CNI results there (their veths and container IDs):
#   - its containers' processes and shims, if any still run (their pids in that state);
#   - the mounts under $OUT/up and those two directories (volumes, network namespaces,
#     root filesystems), and the two directories;
#   - its pods' cgroups (pod<uid>, under the kubelet's cgroup root /skiff);
#   - its pods' veths, and the bridge cni0 once no port is left on it;
#   - the portmap plugin's nat rules and CNI-DN-* chains of its pods (each rule's
#     comment names the pod's container ID), and the plugin's CNI-HOSTPORT-* chains and
#     the jumps to them once no pod's rule is left in them.
leftovers() {
	local up=$OUT/up abs sum st ns d m id chain n
	[ -d "$up" ] && [ "$(id -u)" = 0 ] || return 0
	local -
	set +e +o pipefail # each step on its own: what is gone already is no failure
	abs=$(realpath -s -m "$up") # skiff up hashes the cleaned path as given, links kept
	sum=$(printf %s "$abs" | sha256sum | cut -c1-12)
	st=/run/skiff/containerd-$sum
	ns=/run/skiff/netns-$sum
	shimleftovers "$st"
	findmnt -rn -o TARGET | grep -E "^($abs|$ns|$st)/" | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -rf "$ns"
	pgrep -f -- "--config $st/config.toml" >/dev/null || rm -rf "$st"
	local -A pod=()
	for d in "$up"/kubelet/pods/*/; do
		d=${d%/}
		pod[pod${d##*/}]=1
	done
	if ((${#pod[@]})); then
		find /sys/fs/cgroup -maxdepth 5 -type d -path '*/skiff/*' -name 'pod*' 2>/dev/null | while read -r m; do
			[ -z "${pod[${m##*/}]:-}" ] || find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
	fi
	# The pods' CNI results: "id veth" of each.
	local results=()
	[ -d "$up/cni/cache/results" ] && mapfile -t results < <(python3 - "$up/cni/cache/results" <<'PY'
import json, os, sys
for f in sorted(os.listdir(sys.argv[1])):
    try:
        c = json.load(open(os.path.join(sys.argv[1], f)))
    except (OSError, ValueError):
        continue
    ifs = (c.get("result") or {}).get("interfaces") or []
    veths = [i["name"] for i in ifs[1:] if not i.get("sandbox")]  # the first is the bridge
    print(c.get("containerId", ""), " ".join(veths))
PY
)
	for m in "${results[@]}"; do
		for d in ${m#* }; do
			[ "$d" = "${m%% *}" ] || ip link del "$d" 2>/dev/null || true
		done
	done
	if command -v iptables >/dev/null && iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1; then
		for m in "${results[@]}"; do
			id=${m%% *}
			[ -n "$id" ] || continue
			# Highest rule number first, so the numbers left stay right.
			iptables -t nat -L CNI-HOSTPORT-DNAT -n --line-numbers | grep -F "id: \"$id\"" | sort -rn |
				while read -r n chain _; do
					iptables -t nat -D CNI-HOSTPORT-DNAT "$n"
					iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null || true
				done
		done
		if [ "$(iptables -t nat -S CNI-HOSTPORT-DNAT | wc -l)" = 1 ]; then # only its -N line
			for chain in PREROUTING OUTPUT POSTROUTING; do
				iptables -t nat -L "$chain" -n --line-numbers | awk '$2 ~ /^CNI-HOSTPORT-/ {print $1}' | sort -rn |
					while read -r n; do iptables -t nat -D "$chain" "$n"; done
			done
			for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
				iptables -t nat -F "$chain" 2>/dev/null || true
			done
			for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
				iptables -t nat -X "$chain" 2>/dev/null || true
			done
		fi
	fi
	if ip link show cni0 >/dev/null 2>&1 && [ -z "$(ip -o link show master cni0)" ]; then
		ip link del cni0
	fi
	log "removed what the cluster of $up left (mounts, network namespaces, veths, cni0, portmap's chains)"
}

# shimleftovers ST: when the containerd whose state directory is ST is gone (stopped, or
# killed with the script), kills what its shims still run (a pid is taken only if the
# process is still that container's, by its cgroup, or that shim, by its socket's
# address) and drops the containers' runc state.
shimleftovers() {
	local st=$1 d id pid n
	[ -d "$st" ] && ! pgrep -f -- "--config $st/config.toml" >/dev/null || return 0
	for d in "$st"/io.containerd.runtime.v2.task/*/*/; do
		[ -d "$d" ] || continue
		d=${d%/}
		id=${d##*/}
		pid=$(cat "$d/init.pid" 2>/dev/null) && grep -qF "/$id" "/proc/$pid/cgroup" 2>/dev/null && kill -9 "$pid"
		pid=$(cat "$d/shim.pid" 2>/dev/null) && grep -qF "$st/" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid"
		n=${d%/*}
		rm -rf "/run/containerd/runc/${n##*/}/$id"
	done
	return 0
}

# module makes $mod: a module requiring k8s.io/kubernetes, whose go.mod requires its
# staging modules at v0.0.0 and replaces them with its own directories, which a module
# that requires it does not see: they are replaced with their releases.
module() {
	[ -f "$mod/complete" ] && return # go.sum is written early: an interrupted setup starts over
	rm -rf "$mod" && mkdir -p "$mod"
	(
		cd "$mod"
		go mod init skiff.local/conformance >/dev/null 2>&1
		go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
		local gomod args=()
		gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
		for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
			args+=("-replace=$m=$m@$STAGING_VERSION")
		done
		go mod edit -require="k8s.io/kubernetes@$K8S_VERSION" "${args[@]}"
		# -t: the tests' imports too; agnhost is built here as well.
		go get -t "k8s.io/kubernetes/test/e2e@$K8S_VERSION" "k8s.io/kubernetes/test/images/agnhost@$K8S_VERSION"
		# ginkgo's command runs e2e.test's processes in parallel; its version is e2e.test's.
		go get "github.com/onsi/ginkgo/v2/ginkgo@$(go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)"
		touch complete
	)
}

# The test packages e2e.test is built without: they hold no [Conformance] test but
# sig-storage's CSI, VolumeAttachment and storage-capacity ones (kinds Skiff does not
# serve), DRA's one, and nothing else the suite needs; leaving them (and the cloud
# providers' packages) out leaves out a fifth of e2e.test's 2,800 packages.
LEFT_OUT='storage|storage/csimock|storage/external|dra|windows|autoscaling'

# versionflags are the -ldflags that give a build K8S_VERSION as a release's build has
# it: e2e.test's pod-security fixtures (the restricted level's, of the PodCertificate
# tests) are chosen by its own version, and kubectl prints its.
versionflags() {
	local v
	for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		printf ' -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
			"$v" "$K8S_VERSION" "$v" "$v" "$(echo "$K8S_VERSION" | cut -d. -f2)" "$v"
	done
}

# build builds e2e.test from $mod/e2e: k8s.io/kubernetes/test/e2e's main files (e2e.go,
# e2e_test.go, suites.go, as they are) without the imports of $LEFT_OUT and
# providers.go; ginkgo; and kubectl.
build() {
	module
	if [ ! -x "$OUT/e2e.test" ]; then
		local e2e
		e2e=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/test/e2e
		rm -rf "$mod/e2e" && mkdir "$mod/e2e"
		cp "$e2e/e2e.go" "$e2e/e2e_test.go" "$e2e/suites.go" "$mod/e2e/"
		chmod u+w "$mod/e2e/"*
		sed -i -E "\#^\s*_ \"k8s.io/kubernetes/test/e2e/($LEFT_OUT)\"\$#d" "$mod/e2e/e2e_test.go"
		log "building e2e.test from k8s.io/kubernetes $K8S_VERSION (long: an hour on a busy 2-core machine)"
		(cd "$mod" && nice go test -mod=mod -vet=off -c -ldflags "$(versionflags)" -o "$OUT/e2e.test.tmp" ./e2e)
		mv "$OUT/e2e.test.tmp" "$OUT/e2e.test"
	fi
	if [ ! -x "$OUT/ginkgo" ]; then
		(cd "$mod" && nice go build -o "$OUT/ginkgo" github.com/onsi/ginkgo/v2/ginkgo)
	fi
	# kubectl at the same release, with the version a release carries: the kubectl tests
	# run it (not whatever kubectl is on PATH).
	if [ ! -x "$OUT/kubectl" ]; then
		# -mod=mod: kubectl's kustomize packages are not among e2e.test's, so the module's
		# go.sum lacks them until this build adds them.
		(cd "$mod" && nice go build -mod=mod -ldflags "$(versionflags)" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl)
	fi
}

# registry starts Debian's docker-registry on $REGISTRY (loopback only), its storage in
# $OUT/registry, until the script ends.
registry() {
	case $REGISTRY in 127.*|localhost:*) ;; *) log "REGISTRY must be a loopback address"; exit 1;; esac
	if curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then
		return
	fi
	cat >"$OUT/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $OUT/registry
http:
  addr: $REGISTRY
EOF
	docker-registry serve "$OUT/registry.yml" >"$OUT/registry.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return
		sleep 0.2
	done
	log "the registry did not start: $(cat "$OUT/registry.log")"
	exit 1
}

# busyboxtree DIR lays out Debian's busybox (the package busybox, with the libraries it
# links) with every applet linked at its own path and, as in the busybox image, in /bin
# (the sysctl test runs /bin/sysctl), and the files a base image has. Not the static
# busybox-static: its shell runs its own applets before the programs on PATH
# (FEATURE_SH_STANDALONE), so that `sh -c 'nc -u ...'` in agnhost ran busybox's nc,
# which has no -u, -v nor -z, and not the image's netcat-openbsd; the busybox image's
# shell (and Alpine's) looks PATH up.
busyboxtree() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/sbin" "$d/usr/bin" "$d/usr/sbin" "$d/etc" "$d/root" "$d/tmp" "$d/var/tmp" "$d/home"
	chmod 1777 "$d/tmp" "$d/var/tmp"
	debtree "$d" busybox || { log "no busybox package: the images are not built"; exit 1; }
	[ -z "${bbbin:-}" ] || cp "$bbbin" "$d/bin/busybox"
	sharedlibs "$d" /bin/busybox
	for a in $("$d/bin/busybox" --list-full); do
		[ "$a" = bin/busybox ] || [ -e "$d/$a" ] || ln -s /bin/busybox "$d/$a"
		[ -e "$d/bin/${a##*/}" ] || ln -s busybox "$d/bin/${a##*/}"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$d/etc/group"
	: >"$d/etc/hosts"
	: >"$d/etc/resolv.conf"
}

# busyboxbuild builds Debian's busybox from its source package at the version of the
# package busybox, with that package's configuration and FEATURE_DI_ENV_HACK (the
# option of Debian's installer build), and prints the binary's path; nothing when it
# cannot. Debian reverts upstream's commit 9c143ce5 (busybox 1.28, "ash: retain envvars
# with bad names in initial environment"), so that its ash drops from the environment
# it is given, and so from its commands', the variables whose names are no shell names:
# data-1, a ConfigMap's or Secret's key made a variable, which four tests look for in
# `sh -c env`. The option keeps them, as upstream's busybox (Kubernetes' busybox image,
# Alpine's) does. The source comes through a deb-src list of the script's own in
# $OUT/apt (the machine's apt configuration is left alone); the build is kept in
# $OUT/busybox-src.
busyboxbuild() {
	local b=$OUT/busybox-src
	[ -x "$b/busybox" ] && { echo "$b/busybox"; return; }
	local deb src ver codename opts
	mkdir -p "$OUT/debs" "$OUT/apt/lists/partial"
	ls "$OUT/debs/busybox_"*.deb >/dev/null 2>&1 || (cd "$OUT/debs" && apt-get download busybox >/dev/null 2>&1) || return 0
	deb=$(ls "$OUT/debs/busybox_"*.deb | head -1)
	# The source package's version: a binary rebuilt (+b1) names it in Source.
	src=$(dpkg-deb -f "$deb" Source)
	ver=$(dpkg-deb -f "$deb" Version)
	case $src in *'('*) ver=${src#*(} && ver=${ver%)*} ;; esac
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	printf 'deb-src http://deb.debian.org/debian %s main\ndeb-src http://deb.debian.org/debian %s-updates main\ndeb-src http://deb.debian.org/debian-security %s-security main\n' \
		"$codename" "$codename" "$codename" >"$OUT/apt/sources.list"
	opts=(-o "Dir::Etc::SourceList=$OUT/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$OUT/apt/lists")
	log "building busybox $ver from Debian's source (minutes)"
	rm -rf "$b"
	(cd "$OUT/apt" &&
		apt-get "${opts[@]}" update >/dev/null 2>&1 &&
		apt-get "${opts[@]}" source --download-only "busybox=$ver" >/dev/null 2>&1 &&
		dpkg-source -x "busybox_${ver#*:}.dsc" "$b" >/dev/null 2>&1 &&
		cd "$b" &&
		sed 's/^# CONFIG_FEATURE_DI_ENV_HACK is not set$/CONFIG_FEATURE_DI_ENV_HACK=y/' debian/config/pkg/deb >.config &&
		grep -qx CONFIG_FEATURE_DI_ENV_HACK=y .config &&
		nice make -j2 busybox </dev/null >make.log 2>&1) || { log "busybox was not built from source (log: $b/make.log)"; return 0; }
	[ ! -x "$b/busybox" ] || echo "$b/busybox"
}

# intree DIR CMD runs the shell command CMD in the tree DIR as a container would (its
# /bin/sh, the image's PATH), printing what it prints; as root only (chroot), else it
# prints nothing.
intree() {
	[ "$(id -u)" = 0 ] || return 0
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin chroot "$1" /bin/sh -c "$2" 2>&1 || true
}

# images builds the images the conformance tests run and pushes them to the registry,
# and writes the repo list that points e2e.test at it. What each image is, and how it
# differs from the one Kubernetes publishes, is in docs/compatibility.md.
images() {
	module
	registry
	local img=$OUT/images src
	src=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
	rm -rf "$img" && mkdir -p "$img"
	(cd "$root" && go build -o "$OUT/pushimage" ./test/conformance/pushimage)
	push() { "$OUT/pushimage" -registry "$REGISTRY" "$@"; }

	# busybox: Debian's busybox (its version, 1.35, not 1.37.0), rebuilt as busyboxbuild
	# says: the build fails when its shell drops data-1 from the environment.
	bbbin=$(busyboxbuild)
	[ -n "$bbbin" ] || log "busybox not built from source: the images' sh drops data-1 from the environment"
	busyboxtree "$img/busybox"
	if [ -n "$bbbin" ] && [ "$(id -u)" = 0 ] &&
		! env -i data-1=kept "$(command -v chroot)" "$img/busybox" /bin/sh -c env | grep -qx data-1=kept; then
		log "the busybox image's sh drops data-1 from the environment"
		exit 1
	fi
	push -image e2e-test-images/busybox:1.37.0-2 -rootfs "$img/busybox" -cmd sh

	# agnhost: built from its source at $K8S_VERSION, on the busybox tree instead of
	# Alpine (no dig, curl, iperf, socat, coredns or fake registry inside); with cgo, as
	# e2e.test is, so that the packages they share come from Go's build cache (without,
	# every one is compiled again), and the C libraries it links.
	busyboxtree "$img/agnhost"
	(cd "$mod" && nice go build -o "$img/agnhost/agnhost" k8s.io/kubernetes/test/images/agnhost)
	sharedlibs "$img/agnhost" /agnhost
	ln -s agnhost "$img/agnhost/agnhost-2"
	mkdir -p "$img/agnhost/uploads"
	cp "$src/test/images/agnhost/porter/localhost.crt" "$src/test/images/agnhost/porter/localhost.key" "$img/agnhost/"
	chmod u+w "$img/agnhost/localhost."*
	# The tools of Alpine's the tests run in agnhost: curl (this machine's, as the
	# script's own) and an nc with -v, -u and -z (Debian's netcat-openbsd; busybox's
	# has none of them).
	cp /usr/bin/curl "$img/agnhost/usr/bin/curl"
	sharedlibs "$img/agnhost" /usr/bin/curl
	if debtree "$img/agnhost" netcat-openbsd; then
		rm -f "$img/agnhost/usr/bin/nc" "$img/agnhost/bin/nc"
		ln -s nc.openbsd "$img/agnhost/bin/nc"
		sharedlibs "$img/agnhost" /bin/nc.openbsd
	fi
	# The tests run nc through the shell: it must be netcat-openbsd's (-u, -v, -z), not
	# an applet of the shell's own (whose name is all `command -v` says of it).
	case $(intree "$img/agnhost" 'command -v nc') in
	'' | /bin/nc) ;;
	*) log "agnhost's shell runs its own nc, not netcat-openbsd's /bin/nc: $(intree "$img/agnhost" 'command -v nc')"; exit 1 ;;
	esac
	# The DNS tests' probes run dig and getent in agnhost (Alpine has both).
	dnstools "$img/agnhost"
	echo 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh' >>"$img/agnhost/etc/passwd"
	printf 'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n' >>"$img/agnhost/etc/group"
	# 2.55 (AgnhostPrev) is the same build as 2.66.1: the tests that use it only run it.
	push -image e2e-test-images/agnhost:2.66.1 -tag 2.55 -rootfs "$img/agnhost" -workdir / -entrypoint /agnhost -cmd pause

	# kitten and nautilus (kubectl's Update Demo): agnhost's tree with the picture and
	# data.json of test/images/kitten and nautilus at $K8S_VERSION in /, served by
	# test-webserver, as Kubernetes builds them on agnhost; the tags are the tests'.
	for a in kitten nautilus; do
		cp -al "$img/agnhost" "$img/$a"
		rm -f "$img/$a/$a.jpg" "$img/$a/data.json"
		cp "$src/test/images/$a/html/$a.jpg" "$src/test/images/$a/html/data.json" "$img/$a/"
		chmod u+w "$img/$a/$a.jpg" "$img/$a/data.json"
		push -image "e2e-test-images/$a:1.8" -rootfs "$img/$a" -workdir / -entrypoint /agnhost -cmd test-webserver
	done

	# nonewprivs: test/images/nonewprivs' nnp (it prints its effective uid) at
	# $K8S_VERSION, static, setuid root in /usr/local/bin, on the busybox tree (not Alpine).
	busyboxtree "$img/nonewprivs"
	mkdir -p "$img/nonewprivs/usr/local/bin"
	(cd "$mod" && CGO_ENABLED=0 nice go build -o "$img/nonewprivs/usr/local/bin/nnp" k8s.io/kubernetes/test/images/nonewprivs)
	chmod 4755 "$img/nonewprivs/usr/local/bin/nnp"
	push -image e2e-test-images/nonewprivs:1.4 -rootfs "$img/nonewprivs" -cmd nnp

	# glibc-dns-testing (the DNS tests' other prober, Debian's bookworm-slim with dnsutils
	# in Kubernetes' build): the busybox tree with this machine's dig and getent, which
	# link glibc; without the CoreDNS binary of Kubernetes' image, which no conformance
	# test runs.
	busyboxtree "$img/glibc-dns-testing"
	dnstools "$img/glibc-dns-testing"
	push -image e2e-test-images/glibc-dns-testing:2.1.1 -rootfs "$img/glibc-dns-testing" -cmd sh

	# pause: Kubernetes' build/pause/linux/pause.c, statically linked.
	mkdir -p "$img/pause"
	gcc -Os -static -o "$img/pause/pause" "$src/build/pause/linux/pause.c"
	push -image pause:3.10.2 -rootfs "$img/pause" -entrypoint /pause

	# nginx: Debian's nginx (its version, 1.22, not 1.27/1.28) with the libraries it
	# links, serving /usr/share/nginx/html on port 80 as the nginx image does.
	if nginx_tree "$img/nginx"; then
		push -image e2e-test-images/nginx:1.27.0-2 -tag 1.28.0-2 -rootfs "$img/nginx" \
			-entrypoint /usr/sbin/nginx -cmd -g -cmd 'daemon off;'
	fi

	# The Aggregator test's two: sample-apiserver (e2e-test-images/sample-apiserver:1.29.2
	# in e2e.test's image list; its entrypoint /sample-apiserver, which the test gives
	# only arguments) built from k8s.io/sample-apiserver's main package at the staging
	# version, $STAGING_VERSION (Kubernetes builds an older release, v0.33.7), static,
	# on the busybox tree instead of Alpine; and etcd (etcd:3.7.0-0, which the test runs
	# as /usr/local/bin/etcd): Debian's etcd-server (its version, 3.4, not 3.7) there, on
	# the busybox tree instead of distroless.
	busyboxtree "$img/sample-apiserver"
	(cd "$mod" && CGO_ENABLED=0 nice go build -mod=mod -o "$img/sample-apiserver/sample-apiserver" "k8s.io/sample-apiserver")
	push -image e2e-test-images/sample-apiserver:1.29.2 -rootfs "$img/sample-apiserver" -workdir / -entrypoint /sample-apiserver
	busyboxtree "$img/etcd"
	if debtree "$img/etcd" etcd-server; then
		mkdir -p "$img/etcd/usr/local/bin"
		mv "$img/etcd/usr/bin/etcd" "$img/etcd/usr/local/bin/etcd"
		sharedlibs "$img/etcd" /usr/local/bin/etcd
		push -image etcd:3.7.0-0 -rootfs "$img/etcd" -workdir / -cmd /usr/local/bin/etcd
	else
		log "no etcd-server package: the etcd image is not built"
	fi

	cat >"$OUT/repo-list.yaml" <<EOF
promoterE2eRegistry: $REGISTRY/e2e-test-images
buildImageRegistry: $REGISTRY/build-image
gcEtcdRegistry: $REGISTRY
gcRegistry: $REGISTRY
sigStorageRegistry: $REGISTRY/sig-storage
dockerLibraryRegistry: $REGISTRY/library
cloudProviderGcpRegistry: $REGISTRY/cloud-provider-gcp
EOF
}

# dnstools DIR adds what the DNS tests' probes run besides the shell's applets to the tree
# DIR: dig (Debian's bind9-dnsutils, installed on this machine by install-deps.sh) and
# getent (glibc's), with the libraries they link, and an nsswitch.conf that looks hosts
# up in /etc/hosts before DNS, as Debian's and Alpine's do. It fails when dig or getent
# does not run in the tree.
dnstools() {
	local d=$1 b
	for b in /usr/bin/dig /usr/bin/getent; do
		cp "$b" "$d$b"
		sharedlibs "$d" "$b"
	done
	echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
	[ "$(id -u)" = 0 ] || return 0
	case $(intree "$d" 'dig -v') in
	DiG\ 9.*) ;;
	*) log "dig does not run in ${d##*/}: $(intree "$d" 'dig -v')"; exit 1 ;;
	esac
	case $(intree "$d" 'getent passwd root') in
	root:*) ;;
	*) log "getent does not run in ${d##*/}: $(intree "$d" 'getent passwd root')"; exit 1 ;;
	esac
}

# sharedlibs DIR BIN copies the shared libraries DIR/BIN links (and the loader) from
# this machine into the tree DIR.
sharedlibs() {
	local d=$1 lib
	for lib in $(ldd "$d/$2" | grep -o '/[^ ]*'); do
		mkdir -p "$d/$(dirname "$lib")"
		cp -L "$lib" "$d/$lib"
	done
}

# debtree DIR PKG... unpacks Debian's packages PKG (apt-get download into $OUT/debs
# once, not installed on the machine) into the tree DIR.
debtree() {
	local d=$1 debs=$OUT/debs p
	shift
	mkdir -p "$debs"
	for p in "$@"; do
		if ! ls "$debs/${p}_"*.deb >/dev/null 2>&1; then
			# A fresh machine's apt has no package lists yet: update once and try again.
			(cd "$debs" && { apt-get download "$p" 2>/dev/null || { apt-get update >/dev/null && apt-get download "$p"; }; }) || {
				log "no package $p"
				return 1
			}
		fi
		dpkg-deb -x "$(ls "$debs/${p}_"*.deb | head -1)" "$d"
	done
}

# nginx_tree DIR lays out Debian's nginx from its package with the shared libraries it
# needs from this machine.
nginx_tree() {
	local d=$1
	busyboxtree "$d"
	debtree "$d" nginx nginx-common || {
		log "no nginx package: the nginx image is not built"
		return 1
	}
	rm -rf "$d/etc/nginx/sites-enabled" "$d/etc/nginx/conf.d" "$d/etc/nginx/modules-enabled"
	[ -x "$d/usr/sbin/nginx" ] || { log "the nginx package has no /usr/sbin/nginx"; return 1; }
	sharedlibs "$d" /usr/sbin/nginx
	mkdir -p "$d/usr/share/nginx/html" "$d/var/log/nginx" "$d/var/cache/nginx" "$d/var/lib/nginx" "$d/run"
	printf '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n' >"$d/usr/share/nginx/html/index.html"
	echo 'www-data:x:33:33:www-data:/var/www:/bin/false' >>"$d/etc/passwd"
	echo 'www-data:x:33:' >>"$d/etc/group"
	mkdir -p "$d/etc/nginx"
	cat >"$d/etc/nginx/nginx.conf" <<'EOF'
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	access_log /dev/stdout;
	server {
		listen 80;
		listen [::]:80;
		location / {
			root /usr/share/nginx/html;
			index index.html;
		}
	}
}
EOF
	[ -f "$d/etc/nginx/mime.types" ] || echo 'types { text/html html; }' >"$d/etc/nginx/mime.types"
}

# cluster starts `skiff up` (containerd as root) in $OUT/up, with its own HOME so that it
# leaves the user's ~/.skiff alone, and sets KUBECONFIG to the kubeconfig it writes.
cluster() {
	(cd "$root" && go build -o "$OUT/skiff" ./cmd/skiff)
	apiif
	guard
	rm -f "$OUT/up/kubeconfig"
	mkdir -p "$OUT/home"
	HOME=$OUT/home "$OUT/skiff" up --data-dir "$OUT/up" --listen "$API" --ui-listen "" \
		--runtime containerd >"$OUT/up.log" 2>&1 &
	pids+=($!)
	ourcluster=1
	for _ in $(seq 300); do
		[ -s "$OUT/up/kubeconfig" ] && break
		kill -0 "${pids[-1]}" 2>/dev/null || { log "skiff up exited: $(tail -20 "$OUT/up.log")"; exit 1; }
		sleep 0.2
	done
	export KUBECONFIG=$OUT/up/kubeconfig
	log "skiff up is serving $API (log: $OUT/up.log)"
	if [ "$NODES" = 2 ]; then
		node2
	elif [ -x "$OUT/kubectl" ]; then
		# The second node of an earlier run, kept in the data directory's store: the
		# framework would wait for it to be Ready.
		for _ in $(seq 300); do
			"$OUT/kubectl" delete node "$node2name" --ignore-not-found --request-timeout=5s >/dev/null 2>&1 && break
			sleep 0.2
		done
	fi
}

# node2 is the cluster's second node, made the way a second VM joins a cluster: a
# machine of its own — the network namespace $node2ns, on a link of the script's own to
# the host (the veth $node2if, $node2net: the host $node2hostip, the node $node2ip; on no
# network, and the guard drops whatever the host would forward between it and an outward
# interface) — with its own containerd (its socket, state and root: $node2state and
# $node2dir/containerd; its pods' cgroups under /$node2ctrdns), its own kubelet
# certificates (a client and a serving one of skiff up's CA, asked for with
# CertificateSigningRequests and approved with the admin's credentials, as kubeadm's
# joins are; the keys never leave the node's directory) and `skiff kubelet --runtime
# containerd` with the pod network skiff up's node has (CNI, the service proxy, node
# routes, the cluster DNS on its address). Its routes: the /30; skiff up's node's
# address (its InternalIP) on the link itself, since the other node's pods are routed
# via that address (host gateway), which must be on the link, as two VMs' addresses on
# one LAN are (a permanent neighbour entry, the host's end's MAC: the host answers for
# its own addresses); the API server's address via the host; no default route. Images
# come from a mirror of the registry in the node's namespace, on the same loopback
# address (REGISTRY, which the images' names hold), serving the registry's storage
# read-only. Everything goes at the end (cleanup, or '$0 clean': unnode2).
node2name=skiffconf-node2
node2ns=skiffconf-node2
node2if=skiffconf1
node2net=198.51.100.44/30
node2hostip=198.51.100.45
node2ip=198.51.100.46
node2dir=$OUT/node2
node2state=/run/skiff/conformance-node2
node2ctrdns=skiffconf-node2
node2() {
	local k=$OUT/kubectl apihost=${API%:*} n1ip= mac p
	[ "$(id -u)" = 0 ] || { log "NODES=2 needs root (a network namespace, a veth, containerd): run as root, or with NODES=1"; exit 1; }
	case $apihost in 127.* | localhost | '[::1]' | 0.0.0.0)
		log "NODES=2: the second node cannot reach an API server on $apihost: give API an address off loopback (the default's), or NODES=1"
		exit 1
		;;
	esac
	for p in ip nsenter openssl containerd docker-registry; do
		command -v "$p" >/dev/null || { log "NODES=2 needs $p"; exit 1; }
	done
	[ -x "$k" ] || { log "no $k: run '$0 build' first"; exit 1; }
	unnode2 # what a run killed without its cleanup left
	if [ -n "$(ip -4 -o addr show to "$node2net")" ] || [ -n "$(ip -4 route show to match "$node2ip" | grep -v '^default')" ]; then
		log "NODES=2: $node2net is in use on this machine: $(ip -4 -o addr show to "$node2net") $(ip -4 route show to match "$node2ip" | grep -v '^default')"
		exit 1
	fi
	ournode2=1
	# skiff up's node's address, where the other node's pods are routed.
	for _ in $(seq 300); do
		n1ip=$("$k" get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>/dev/null |
			awk -v n2="$node2name" '$1 != n2 && NF == 2 {print $2; exit}') || true
		[ -n "$n1ip" ] && break
		sleep 0.2
	done
	[ -n "$n1ip" ] || { log "skiff up's node did not register (log: $OUT/up.log)"; exit 1; }

	ip netns add "$node2ns"
	ip -n "$node2ns" link set lo up
	ip link add "$node2if" type veth peer name eth0 netns "$node2ns"
	ip addr add "$node2hostip/${node2net#*/}" dev "$node2if"
	ip link set "$node2if" up
	ip -n "$node2ns" addr add "$node2ip/${node2net#*/}" dev eth0
	ip -n "$node2ns" link set eth0 up
	mac=$(cat "/sys/class/net/$node2if/address")
	ip -n "$node2ns" route add "$n1ip/32" dev eth0
	ip -n "$node2ns" neigh replace "$n1ip" lladdr "$mac" dev eth0 nud permanent
	[ "$apihost" = "$n1ip" ] || ip -n "$node2ns" route add "$apihost/32" via "$node2hostip"
	# Forwarding (its pods' traffic), and bridged traffic through netfilter, as skiff up
	# sets on its node (both knobs are the namespace's own).
	[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter
	ip netns exec "$node2ns" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

	mkdir -p "$node2dir/pki" "$node2state"
	cp "$OUT/up/pki/ca.crt" "$node2dir/pki/ca.crt"
	node2cert kubelet kubernetes.io/kube-apiserver-client-kubelet 'digital signature, client auth' ''
	node2cert kubelet-serving kubernetes.io/kubelet-serving 'digital signature, server auth' "IP:$node2ip,DNS:$node2name"

	cat >"$node2state/config.toml" <<EOF
version = 2
root = "$node2dir/containerd"
state = "$node2state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$node2state/containerd.sock"
[ttrpc]
  address = "$node2state/containerd.sock.ttrpc"
[debug]
  address = "$node2state/debug.sock"
EOF
	nsenter --net="/run/netns/$node2ns" -- containerd --config "$node2state/config.toml" >"$OUT/node2-containerd.log" 2>&1 &
	pids+=($!)
	cat >"$node2dir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $OUT/registry
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: true
http:
  addr: $REGISTRY
EOF
	nsenter --net="/run/netns/$node2ns" -- docker-registry serve "$node2dir/registry.yml" >"$OUT/node2-registry.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 150); do
		[ -S "$node2state/containerd.sock" ] && break
		sleep 0.2
	done
	[ -S "$node2state/containerd.sock" ] || { log "the second node's containerd did not start: $(tail -5 "$OUT/node2-containerd.log")"; exit 1; }

	nsenter --net="/run/netns/$node2ns" -- "$OUT/skiff" kubelet --server "$API" --ca-file "$node2dir/pki/ca.crt" \
		--cert-file "$node2dir/pki/kubelet.crt" --key-file "$node2dir/pki/kubelet.key" \
		--tls-cert-file "$node2dir/pki/kubelet-serving.crt" --tls-private-key-file "$node2dir/pki/kubelet-serving.key" \
		--node-name "$node2name" --node-ip "$node2ip" --kubelet-listen "$node2ip:10250" \
		--runtime containerd --containerd-address "$node2state/containerd.sock" --containerd-namespace "$node2ctrdns" \
		--root-dir "$node2dir/kubelet" --container-log-dir "$node2dir/logs" --local-path-root "$node2dir/local-path" \
		--cni --cni-state-dir "$node2dir/cni" --service-proxy --node-routes \
		--cluster-dns-listen "$node2ip:53" --cluster-dns 10.43.0.10 >"$OUT/node2.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 600); do
		[ "$(node2ready)" = True ] && break
		kill -0 "${pids[-1]}" 2>/dev/null || { log "the second node's kubelet exited: $(tail -20 "$OUT/node2.log")"; exit 1; }
		sleep 0.2
	done
	[ "$(node2ready)" = True ] || { log "the second node $node2name is not Ready after 2 minutes (log: $OUT/node2.log)"; exit 1; }
	log "second node $node2name Ready at $node2ip (namespace $node2ns; logs: $OUT/node2.log, $OUT/node2-containerd.log)"
}

# node2ready prints the status of the second node's Ready condition.
node2ready() {
	"$OUT/kubectl" get node "$node2name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true
}

# node2cert NAME SIGNER USAGES SAN makes the second node's key $node2dir/pki/NAME.key
# and has its certificate, NAME.crt, signed through a CertificateSigningRequest of
# SIGNER with USAGES (and the subjectAltName SAN, if any) for system:node:$node2name in
# Skiff's group of nodes, approved with the admin's credentials.
node2cert() {
	local name=$1 signer=$2 usages=$3 san=$4 k=$OUT/kubectl csr=$node2name-$1 crt=
	local key=$node2dir/pki/$name.key req=$node2dir/pki/$name.csr
	openssl ecparam -name prime256v1 -genkey -noout -out "$key" 2>/dev/null
	openssl req -new -key "$key" -subj "/O=skiff:nodes/CN=system:node:$node2name" ${san:+-addext "subjectAltName=$san"} -out "$req"
	"$k" delete csr "$csr" --ignore-not-found >/dev/null
	"$k" create -f - >/dev/null <<EOF
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: $csr
spec:
  request: $(base64 -w0 <"$req")
  signerName: $signer
  usages: [$usages]
EOF
	"$k" certificate approve "$csr" >/dev/null
	for _ in $(seq 300); do
		crt=$("$k" get csr "$csr" -o jsonpath='{.status.certificate}')
		[ -n "$crt" ] && break
		sleep 0.2
	done
	[ -n "$crt" ] || { log "the CertificateSigningRequest $csr was not signed: $("$k" get csr "$csr" -o jsonpath='{.status.conditions}')"; exit 1; }
	echo "$crt" | base64 -d >"$node2dir/pki/$name.crt"
	"$k" delete csr "$csr" >/dev/null
	rm -f "$req"
}

# node2stop stops the second node's processes by their ids: every process of its
# namespace — its kubelet first, then its containerd, the shims containerd started and
# the registry's mirror — with SIGTERM, then SIGKILL what is left after 15 s.
node2stop() {
	local - p
	set +e +o pipefail
	[ -e "/run/netns/$node2ns" ] || return 0
	node2kubelet() {
		local p
		for p in $(ip netns pids "$node2ns" 2>/dev/null); do
			grep -qF -- "$node2dir/kubelet" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
		done
	}
	for p in $(node2kubelet); do kill "$p"; done
	for _ in $(seq 75); do
		[ -z "$(node2kubelet)" ] && break
		sleep 0.2
	done
	for p in $(ip netns pids "$node2ns" 2>/dev/null); do kill "$p"; done
	for _ in $(seq 75); do
		[ -z "$(ip netns pids "$node2ns" 2>/dev/null)" ] && break
		sleep 0.2
	done
	for p in $(ip netns pids "$node2ns" 2>/dev/null); do kill -9 "$p"; done
	return 0
}

# unnode2 removes the second node (node2): its processes (node2stop); its containers
# (what its shims still ran, shimleftovers, then every process left in its pods'
# cgroups, /$node2ctrdns, by id) and the cgroups; the mounts under its directory and
# its containerd's state and its pods' network namespaces (by their records in its
# CNI state); its namespace and veth (its pods' veths and bridge with them); the
# directories.
unnode2() {
	local - d m p cg uids=()
	set +e +o pipefail # each step on its own: what is gone already is no failure
	[ "$(id -u)" = 0 ] || return 0
	node2stop
	shimleftovers "$node2state"
	for _ in $(seq 50); do
		cg=$(find /sys/fs/cgroup -maxdepth 3 -type d -name "$node2ctrdns" 2>/dev/null)
		[ -n "$cg" ] || break
		p=$(find $cg -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
		[ -n "$p" ] || break
		kill -9 $p 2>/dev/null
		sleep 0.2
	done
	for d in $(find /sys/fs/cgroup -maxdepth 3 -type d -name "$node2ctrdns" 2>/dev/null); do
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	for d in "$node2dir"/cni/pods/*; do
		[ -e "$d" ] && uids+=("/run/netns/skiff-${d##*/}")
	done
	{
		findmnt -rn -o TARGET | grep -E "^($node2dir|$node2state)/"
		for d in "${uids[@]}"; do findmnt -rn -o TARGET "$d"; done
	} | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done
	rm -f "${uids[@]}"
	ip netns del "$node2ns" 2>/dev/null
	ip link del "$node2if" 2>/dev/null
	rm -rf "$node2state" "/run/containerd/runc/$node2ctrdns" "$node2dir"
	return 0
}

run() {
	local repolist=$OUT/repo-list.yaml
	[ -f "$repolist" ] || { log "no $repolist: run '$0 images' first"; exit 1; }
	rm -f "$OUT/report.json"
	log "running '$FOCUS' without '$SKIP' for at most $TIMEOUT on $PROCS processes (log: $OUT/e2e.log)"
	# The framework waits up to 10 minutes for every node to be schedulable.
	# -v: every test's name and result in e2e.log. When TIMEOUT runs out while a test
	# that ignores its context (the proxy tests' polls) still runs, ginkgo gives up
	# waiting for its process and writes an empty report.json; the log is then the
	# record.
	KUBE_TEST_REPO_LIST=$repolist nice "$OUT/ginkgo" -v --procs="$PROCS" \
		--focus="$FOCUS" --skip="$SKIP" --timeout="$TIMEOUT" --no-color \
		--json-report=report.json --output-dir="$OUT" \
		"$OUT/e2e.test" -- --kubeconfig="$KUBECONFIG" --provider=local --kubectl-path="$OUT/kubectl" \
		--report-dir="$OUT" --node-schedulable-timeout=2m >"$OUT/e2e.log" 2>&1 || true
}

# report prints, per area (the [sig-...] label of a test's name), how many of the
# selected tests (FOCUS without SKIP: ginkgo's report lists every test of e2e.test, those
# it filtered out as skipped) passed, failed and were not run, and the failures' first lines.
report() {
	FOCUS=$FOCUS SKIP=$SKIP python3 - "$OUT/report.json" <<'PY'
import json, os, re, sys, collections
suites = json.load(open(sys.argv[1]))
if not suites:
    sys.exit("report.json is empty (ginkgo timed out waiting for a test process): read e2e.log")
focus, skip = re.compile(os.environ["FOCUS"]), re.compile(os.environ["SKIP"])
area = collections.defaultdict(collections.Counter)
failures = []
for suite in suites:
    for spec in suite.get("SpecReports") or []:
        if spec.get("LeafNodeType") != "It":
            continue
        name = " ".join((spec.get("ContainerHierarchyTexts") or []) + [spec.get("LeafNodeText", "")])
        if not focus.search(name) or skip.search(name):
            continue
        m = re.search(r"\[sig-([a-z-]+)\]", name)
        a = m.group(1) if m else "other"
        state = spec["State"]
        # interrupted: still running when the run's TIMEOUT ran out (or on Ctrl-C), not
        # a failure of its own.
        if state in ("failed", "timedout", "panicked", "aborted"):
            state = "failed"
            msg = (spec.get("Failure") or {}).get("Message", "").strip().splitlines()
            failures.append("%s\t%s\t%s" % (a, name, msg[0][:300] if msg else ""))
        elif state != "passed":
            state = "not run"
        area[a][state] += 1
total = collections.Counter()
print("%-20s %7s %7s %7s" % ("area", "passed", "failed", "not run"))
for a in sorted(area):
    c = area[a]
    total.update(c)
    print("%-20s %7d %7d %7d" % (a, c["passed"], c["failed"], c["not run"]))
print("%-20s %7d %7d %7d" % ("total", total["passed"], total["failed"], total["not run"]))
for suite in suites:
    print("run: %s to %s (%.0f s)" % (suite.get("StartTime"), suite.get("EndTime"), suite.get("RunTime", 0) / 1e9))
with open(sys.argv[1].replace("report.json", "failures.tsv"), "w") as f:
    f.write("\n".join(sorted(failures)) + "\n")
PY
	log "failures: $OUT/failures.tsv (area, test, first line); logs: $OUT/e2e.log, $OUT/report.json"
}

case ${1:-all} in
build) build ;;
images)
	deps
	images
	;;
report) report ;;
clean)
	# What the cluster of an earlier run left, if it was stopped without the script's
	# own cleanup (killed with the script, or the script's older versions).
	leftovers
	unnode2
	unguard
	unapiif
	;;
test)
	# Another run with the images of an earlier 'images' (kept in the registry's
	# storage): the registry again, a cluster, the run.
	deps
	registry
	[ -n "${KUBECONFIG:-}" ] || cluster
	run
	report
	;;
all)
	deps
	build
	images
	[ -n "${KUBECONFIG:-}" ] || cluster
	run
	report
	;;
*)
	echo "usage: $0 [all|build|images|test|report|clean]" >&2
	exit 2
	;;
esac
