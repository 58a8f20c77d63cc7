#!/usr/bin/env bash
# Installs what Skiff's builds and tests need, from Debian's packages, when it is missing.
#   install-deps.sh protoc     protoc and the well-known .proto files
#   install-deps.sh all        protoc, containerd, runc, busybox-static, docker-registry, iptables,
#                              containernetworking-plugins (the CNI pod network), nftables (nft, to
#                              inspect the proxy's rules), chromium
#   install-deps.sh chromium   the headless browser of skiffctl ui's tests
#   install-deps.sh conformance what test/conformance/conformance.sh needs: containerd, runc,
#                              busybox-static, docker-registry, iptables, the CNI plugins, a C
#                              compiler with static libc (the pause image), curl, dig, make
#                              and dpkg-source (busybox built from Debian's source)
# Needs root for apt-get; without root it says what is missing and exits non-zero.
set -euo pipefail

want=()
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || want+=("$2")
}
# The well-known types (google/protobuf/*.proto) come with libprotobuf-dev, which
# protobuf-compiler only recommends.
wkt() {
	[[ -f /usr/include/google/protobuf/timestamp.proto ]] || want+=(libprotobuf-dev)
}

case "${1:-all}" in
protoc)
	need protoc protobuf-compiler
	wkt
	;;
all)
	need protoc protobuf-compiler
	wkt
	need containerd containerd
	need runc runc
	[[ -x /bin/busybox ]] || want+=(busybox-static)
	need docker-registry docker-registry
	need iptables iptables
	[[ -x /usr/lib/cni/bridge ]] || want+=(containernetworking-plugins)
	need nft nftables
	need chromium chromium
	;;
chromium)
	need chromium chromium
	;;
conformance)
	need containerd containerd
	need runc runc
	[[ -x /bin/busybox ]] || want+=(busybox-static)
	need docker-registry docker-registry
	need iptables iptables
	[[ -x /usr/lib/cni/bridge ]] || want+=(containernetworking-plugins)
	need gcc gcc
	dpkg -s libc6-dev >/dev/null 2>&1 || want+=(libc6-dev)
	need curl curl
	need dig bind9-dnsutils
	need make make
	need dpkg-source dpkg-dev
	;;
*)
	echo "usage: $0 protoc|all|chromium|conformance" >&2
	exit 2
	;;
esac

((${#want[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing ${want[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "install-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${want[@]}" >/tmp/skiff-apt.log 2>&1 || {
	apt-get update >>/tmp/skiff-apt.log 2>&1
	apt-get install -y --no-install-recommends "${want[@]}" >>/tmp/skiff-apt.log 2>&1 || {
		tail -20 /tmp/skiff-apt.log >&2
		exit 1
	}
}
