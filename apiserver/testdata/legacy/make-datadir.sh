#!/usr/bin/env bash
# Makes datadir.tar.gz: the data directory of a one-member cluster of Skiff at commit
# b8f2c40 (the last version with Skiff's own object model) holding objects.yaml. Run from
# a clone with that commit; the test reads the archive, not this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
commit=b8f2c40
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$here" worktree add --detach "$work/src" "$commit" >/dev/null
(cd "$work/src" && go build -o "$work/skiff" ./cmd/skiff && go build -o "$work/skiffctl" ./cmd/skiffctl)
git -C "$here" worktree remove --force "$work/src"
"$work/skiff" apiserver --name n1 --data-dir "$work/n1" --listen 127.0.0.1:17901 --raft-listen 127.0.0.1:17911 \
	--initial-cluster n1=127.0.0.1:17911 --insecure >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do "$work/skiffctl" --server 127.0.0.1:17901 cluster status >/dev/null 2>&1 && break; sleep 0.1; done
"$work/skiffctl" --server 127.0.0.1:17901 apply -f "$here/objects.yaml"
"$work/skiffctl" --server 127.0.0.1:17901 get pods,deployments,configmaps,nodes,namespaces -A -o json >"$here/objects.json" 2>/dev/null ||
	for k in pods deployments configmaps nodes namespaces; do "$work/skiffctl" --server 127.0.0.1:17901 get "$k" -A -o json; done >"$here/objects.json"
kill "$pid"
wait "$pid" || true
tar -C "$work" -czf "$here/datadir.tar.gz" --sparse n1/raft.db
