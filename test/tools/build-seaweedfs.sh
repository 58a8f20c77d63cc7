#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the S3-compatible server the S3 backup tests start; see
# test/s3test) once, from the Go module proxy, into a cache every checkout shares:
#   ${XDG_CACHE_HOME:-~/.cache}/skiff/seaweedfs/VERSION/weed
# A second run finds it there and does nothing. The build runs under `nice`: it takes a
# few minutes of both cores (SeaweedFS is large), and `make test` runs it beside the
# tests. It holds an exclusive lock on the cache's .lock while it builds: a second run
# waits for the first, and test/s3test waits for it before it looks for the binary.
# Print the binary's path with -p.
set -euo pipefail

# The version test/s3test expects (keep the two in step). SeaweedFS tags are not semantic
# versions, so the module proxy serves it as a pseudo-version of a commit.
VERSION=v0.0.0-20261109003541-7506e5f91cd6
GO=${GO:-go}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/skiff/seaweedfs/$VERSION
bin=$cache/weed

if [[ ${1:-} == -p ]]; then
	echo "$bin"
	exit 0
fi
[[ -x $bin ]] && exit 0
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
[[ -x $bin ]] && exit 0 # built by the run we waited for

# SeaweedFS's go.mod has replace directives, so `go install ...@VERSION` refuses it:
# download the module and build in its directory instead.
dir=$($GO mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $dir && -d $dir ]] || {
	echo "build-seaweedfs: could not download github.com/seaweedfs/seaweedfs@$VERSION" >&2
	exit 1
}
echo "build-seaweedfs: building weed $VERSION into $bin (a few minutes)"
start=$SECONDS
(cd "$dir" && GOFLAGS=-mod=mod nice -n 10 $GO build -trimpath -o "$bin.tmp.$$" ./weed)
mv "$bin.tmp.$$" "$bin"
echo "build-seaweedfs: built in $((SECONDS - start))s"
